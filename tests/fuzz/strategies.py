"""Hypothesis strategies: random valid Keras 3 architectures and AutoInit options.

``architectures()`` draws a random DAG over the layers AutoInit supports, one
step at a time: each step picks a tensor already built (recent ones first) and
an operation that is valid for its shape (dense, convolutions, pooling,
normalization, noise, activations, reshaping, recurrent layers, attention,
``keras.ops`` nodes, merges with compatible tensors, nested Functional,
Sequential and subclassed blocks called once or twice). Every step is
written as a line of Python and executed, so a drawn case carries the exact
source that rebuilds it: a failing example prints a ready regression test.

A graph is kept only if Keras builds it and runs it on a small batch in
training mode (``RUN_BATCH`` examples): valid means runnable. Widths, lengths
and spatial sizes stay small (at most ``MAX_ELEMENTS`` elements per sample and
tensor), so a case builds in milliseconds.

Example:
    >>> from hypothesis import given
    >>> @given(architectures(max_steps=5))
    ... def test(case):
    ...     case.model.summary()
"""

import inspect
import math
import warnings

import keras
import numpy as np
from hypothesis import reject
from hypothesis import strategies as st

# Graphs Keras itself refuses to build, or builds but cannot run on a small
# batch, are rejected (not valid models); the reasons are counted here. Known:
# Keras 3.15 marks ``x * 2.0`` as sparse, and a subclassed model then fails to
# trace a later call on it.
REJECTED = {}
# Examples per batch of the runnability check: valid means Keras runs it.
RUN_BATCH = 2

# Largest number of elements (per sample) of any tensor a case builds.
MAX_ELEMENTS = 256
MAX_CHANNELS = 16
MAX_LENGTH = 12
MAX_NESTING = 2


def _single_argument_activations():
    names = []
    for name in dir(keras.activations):
        function = getattr(keras.activations, name)
        if name.startswith("_") or name in ("get", "serialize", "deserialize") or not callable(function):
            continue
        parameters = list(inspect.signature(function).parameters.values())[1:]
        if all(p.default is not inspect.Parameter.empty for p in parameters):
            names.append(name)
    return sorted(names)


# Every Keras activation callable as ``activation="name"`` (all but threshold,
# which needs its arguments).
ACTIVATIONS = _single_argument_activations()
ELEMENTWISE_OPS = (
    "tanh", "sigmoid", "relu", "abs", "square", "exp", "gelu", "silu", "softplus", "erf",
    "sin", "negative", "relu6", "leaky_relu", "hard_sigmoid", "elu", "selu", "softsign",
    "log_sigmoid", "sign", "cos", "arctan",
)
CONSTANTS = (2.0, 0.5, -1.0, 1e-3, 10.0, 3.0)


@keras.saving.register_keras_serializable(package="fuzz")
class FuzzBlock(keras.Model):
    """A subclassed block: two Dense layers and keras.ops in ``call``."""

    def __init__(self, units=4, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = activation
        self.inner = keras.layers.Dense(units, activation=activation)
        self.outer = keras.layers.Dense(units)

    def call(self, x):
        hidden = self.inner(x)
        return 0.5 * self.outer(hidden) + keras.ops.mean(hidden, axis=-1, keepdims=True)

    def get_config(self):
        return {"units": self.units, "activation": self.activation, "name": self.name}


NAMESPACE = {"keras": keras, "layers": keras.layers, "ops": keras.ops, "np": np, "FuzzBlock": FuzzBlock}
HEADER = (
    "import keras\nimport numpy as np\nfrom keras import layers, ops\n"
    "from tests.fuzz.strategies import FuzzBlock\n"
)


class FuzzCase:
    """A drawn model and the source that rebuilds it (its repr)."""

    def __init__(self, model, source, inputs):
        self.model = model
        self.source = source
        self.inputs = inputs

    def rebuild(self):
        """A fresh copy of the model, built from ``source``."""
        namespace = dict(NAMESPACE)
        exec(self.source, namespace)  # noqa: S102 - our own generated test code
        return namespace["model"]

    def __repr__(self):
        return "FuzzCase(source=\n" + HEADER + self.source + ")"


class _Tensor:
    def __init__(self, name, shape, dtype="float"):
        self.name = name
        self.shape = tuple(shape)
        self.dtype = dtype
        self.consumed = False
        self.vocabulary = None  # token inputs: ids the Embedding reading them accepts

    @property
    def rank(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)


def _size(shape):
    return math.prod(shape)


def _reject(error, stage=""):
    """Count why Keras refused a drawn graph, and reject the example."""
    lines = str(error).splitlines() or [""]
    reason = f"{stage}{type(error).__name__}: {lines[0][:200]}"
    REJECTED[reason] = REJECTED.get(reason, 0) + 1
    reject()


def run_inputs(inputs, batch=RUN_BATCH, seed=0):
    """A small batch for ``inputs`` (``_Tensor``s): N(0, 1) floats, token ids below each vocabulary."""
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in inputs:
        shape = (batch,) + tensor.shape
        if tensor.dtype == "int":
            arrays.append(rng.integers(0, tensor.vocabulary, size=shape).astype("int32"))
        else:
            arrays.append(rng.standard_normal(shape).astype("float32"))
    return arrays


class _Builder:
    """Draws and executes one graph (the model, or a nested block)."""

    def __init__(self, draw, root=None, depth=0):
        self.draw = draw
        self.root = root or self
        self.depth = depth
        self.pool = []
        if root is None:
            self.lines = []
            self.namespace = dict(NAMESPACE)
            self.counters = {}

    # Small helpers around draw.

    def pick(self, options):
        return self.draw(st.sampled_from(list(options)))

    def integer(self, low, high):
        return self.draw(st.integers(low, max(low, high)))

    def flag(self):
        return self.draw(st.booleans())

    def fresh(self, stem):
        counters = self.root.counters
        counters[stem] = counters.get(stem, 0) + 1
        return f"{stem}{counters[stem]}"

    def run(self, targets, expression, inputs, dtype="float"):
        """Execute ``targets = expression``; add the results to the pool."""
        line = f"{', '.join(targets)} = {expression}"
        self.execute(line)
        for tensor in inputs:
            tensor.consumed = True
        made = []
        for name in targets:
            value = self.root.namespace[name]
            made.append(_Tensor(name, value.shape[1:], dtype))
        self.pool.extend(made)
        return made

    def execute(self, line):
        self.root.lines.append(line)
        with warnings.catch_warnings():
            # Keras's notes on masks it drops and deprecated arguments.
            warnings.simplefilter("ignore")
            try:
                exec(line, self.root.namespace)  # noqa: S102 - our own generated test code
            except Exception as error:  # Keras itself cannot build this graph: not a valid model
                _reject(error)

    def emit(self, expression, inputs, outputs=1):
        targets = [self.fresh("t") for _ in range(outputs)]
        return self.run(targets, expression, inputs)

    # Drawing the graph.

    def add_input(self):
        kind = self.pick(["vector", "sequence", "image", "tokens"])
        name = self.fresh("x")
        if kind == "vector":
            shape = (self.integer(1, 8),)
        elif kind == "sequence":
            shape = (self.integer(1, 8), self.integer(1, 6))
        elif kind == "image":
            shape = (self.integer(1, 6), self.integer(1, 6), self.integer(1, 3))
        else:
            shape = (self.integer(1, 8),)
        dtype = ', dtype="int32"' if kind == "tokens" else ""
        tensor = self.run([name], f"keras.Input(shape={shape}{dtype})", [], "int" if kind == "tokens" else "float")[0]
        if kind == "tokens":
            vocabulary = tensor.vocabulary = self.integer(2, 20)
            mask = ", mask_zero=True" if self.flag() else ""
            self.emit(f"layers.Embedding({vocabulary}, {self.integer(1, 6)}{mask})({name})", [tensor])
        return tensor

    def choose_tensor(self):
        floats = [t for t in self.pool if t.dtype == "float"]
        back = self.integer(0, len(floats) - 1)
        return floats[-1 - back]

    def step(self):
        tensor = self.choose_tensor()
        operations = self.operations_for(tensor)
        operation = self.pick(operations)
        if operation(tensor) is False:
            self.dense(tensor)

    def operations_for(self, tensor):
        common = [
            self.dense, self.dense, self.activation, self.activation, self.relu_family,
            self.normalization, self.noise, self.elementwise_op, self.constant_op, self.einsum_dense,
            self.reduction_op, self.residual, self.merge_existing, self.concatenate,
            self.matmul_constant, self.softmax,
        ]
        if self.depth < MAX_NESTING:
            common += [self.functional_block, self.sequential_block, self.subclassed_block]
        by_rank = {
            1: [self.vector_reshape, self.repeat_vector, self.unit_normalization],
            2: [self.conv1d, self.conv1d, self.depthwise1d, self.separable1d, self.conv1d_transpose,
                self.pool1d, self.global_pool, self.spatial_dropout, self.recurrent, self.recurrent,
                self.bidirectional, self.attention, self.attention, self.flatten, self.pad_crop_up1d,
                self.time_distributed,
                self.permute, self.matmul_tensors, self.reduce_time, self.sequence_to_image],
            3: [self.conv2d, self.conv2d, self.depthwise2d, self.separable2d, self.conv2d_transpose,
                self.pool2d, self.global_pool, self.spatial_dropout, self.flatten, self.pad_crop_up2d,
                self.image_to_sequence],
        }
        return common + by_rank.get(tensor.rank, [])

    # Core layers.

    def dense(self, tensor):
        units = self.integer(1, 8)
        activation = self.pick([None] + ACTIVATIONS)
        if activation == "glu" and units % 2:
            units += 1
        bias = self.flag()
        self.emit(f"layers.Dense({units}, activation={activation!r}, use_bias={bias})({tensor.name})", [tensor])

    def einsum_dense(self, tensor):
        units = self.integer(1, 6)
        letters = "bcdefg"[: tensor.rank]
        equation = f"a{letters},{letters[-1]}z->a{letters[:-1]}z"
        output_shape = tensor.shape[:-1] + (units,)
        activation = self.pick([None, "relu", "tanh"])
        self.emit(
            f"layers.EinsumDense({equation!r}, output_shape={output_shape}, activation={activation!r})"
            f"({tensor.name})",
            [tensor],
        )

    def time_distributed(self, tensor):
        activation = self.pick([None, "relu", "sigmoid"])
        self.emit(
            f"layers.TimeDistributed(layers.Dense({self.integer(1, 6)}, activation={activation!r}))({tensor.name})",
            [tensor],
        )

    def activation(self, tensor):
        options = [a for a in ACTIVATIONS if a != "glu" or tensor.shape[-1] % 2 == 0]
        self.emit(f"layers.Activation({self.pick(options)!r})({tensor.name})", [tensor])

    def relu_family(self, tensor):
        kind = self.pick(["relu", "leaky", "prelu", "elu"])
        if kind == "relu":
            max_value = self.pick([None, 6.0, 1.0])
            slope = self.pick([0.0, 0.1])
            threshold = self.pick([0.0, 0.5])
            layer = f"layers.ReLU(max_value={max_value}, negative_slope={slope}, threshold={threshold})"
        elif kind == "leaky":
            layer = f"layers.LeakyReLU(negative_slope={self.pick([0.01, 0.3, 1.0])})"
        elif kind == "prelu":
            alpha = self.pick([0.0, 0.25])
            layer = f"layers.PReLU(alpha_initializer=keras.initializers.Constant({alpha}))"
        else:
            layer = f"layers.ELU(alpha={self.pick([1.0, 0.5])})"
        self.emit(f"{layer}({tensor.name})", [tensor])

    def softmax(self, tensor):
        axis = self.pick([-1] + list(range(1, tensor.rank)))
        self.emit(f"layers.Softmax(axis={axis})({tensor.name})", [tensor])

    def normalization(self, tensor):
        kind = self.pick(["batch", "layer", "group", "rms"])
        channels = tensor.shape[-1]
        if kind == "batch":
            layer = f"layers.BatchNormalization(center={self.flag()}, scale={self.flag()})"
        elif kind == "layer":
            layer = "layers.LayerNormalization()"
        elif kind == "rms":
            layer = "layers.LayerNormalization(rms_scaling=True)"
        else:
            groups = self.pick([g for g in range(1, channels + 1) if channels % g == 0])
            layer = f"layers.GroupNormalization(groups={groups})"
        self.emit(f"{layer}({tensor.name})", [tensor])

    def noise(self, tensor):
        kind = self.pick(["dropout", "gaussian_noise", "alpha_dropout", "gaussian_dropout"])
        if kind == "dropout":
            layer = f"layers.Dropout({self.pick([0.0, 0.1, 0.5, 0.9])})"
        elif kind == "gaussian_noise":
            layer = f"layers.GaussianNoise({self.pick([0.0, 0.1, 1.0])})"
        elif kind == "alpha_dropout":
            layer = f"layers.AlphaDropout({self.pick([0.0, 0.1, 0.5])})"
        else:
            layer = f"layers.GaussianDropout({self.pick([0.1, 0.5])})"
        self.emit(f"{layer}({tensor.name})", [tensor])

    def spatial_dropout(self, tensor):
        layer = "SpatialDropout1D" if tensor.rank == 2 else "SpatialDropout2D"
        self.emit(f"layers.{layer}({self.pick([0.1, 0.5])})({tensor.name})", [tensor])

    def unit_normalization(self, tensor):
        self.emit(f"layers.UnitNormalization()({tensor.name})", [tensor])

    # keras.ops nodes.

    def elementwise_op(self, tensor):
        kind = self.pick(list(ELEMENTWISE_OPS) + ["log1p_abs", "sqrt_abs", "clip", "maximum"])
        x = tensor.name
        expression = {
            "log1p_abs": f"ops.log1p(ops.abs({x}))",
            "sqrt_abs": f"ops.sqrt(ops.abs({x}))",
            "clip": f"ops.clip({x}, -1.0, 1.0)",
            "maximum": f"ops.maximum({x}, 0.5)",
        }.get(kind, f"ops.{kind}({x})")
        self.emit(expression, [tensor])

    def constant_op(self, tensor):
        c = self.pick(CONSTANTS)
        x = tensor.name
        expression = self.pick([f"{x} * {c}", f"{x} + {c}", f"{c} - {x}", f"{x} / {c}", f"{c} * {x}"])
        self.emit(expression, [tensor])

    def reduction_op(self, tensor):
        kind = self.pick(["mean", "sum", "max", "min"])
        keepdims = True if tensor.rank == 1 else self.flag()
        self.emit(f"ops.{kind}({tensor.name}, axis=-1, keepdims={keepdims})", [tensor])

    def matmul_constant(self, tensor):
        width = self.integer(1, 6)
        seed = self.integer(0, 9)
        constant = f"np.random.default_rng({seed}).standard_normal(({tensor.shape[-1]}, {width})).astype('float32')"
        self.emit(f"ops.matmul({tensor.name}, {constant})", [tensor])

    def matmul_tensors(self, tensor):
        partners = [t for t in self.pool if t.dtype == "float" and t.rank == 2 and t.shape[-1] == tensor.shape[-1]]
        other = self.pick(partners)
        if tensor.shape[0] * other.shape[0] > MAX_ELEMENTS:
            return False
        self.emit(f"ops.matmul({tensor.name}, ops.transpose({other.name}, (0, 2, 1)))", [tensor, other])

    def reduce_time(self, tensor):
        self.emit(f"ops.mean({tensor.name}, axis=1)", [tensor])

    # Merges.

    def merge(self, tensors):
        names = ", ".join(t.name for t in tensors)
        pair = len(tensors) == 2
        kinds = ["Add", "Multiply", "Average", "Maximum", "Minimum"] + (["Subtract", "plus", "times"] if pair else [])
        kind = self.pick(kinds)
        if kind == "plus":
            expression = f"{tensors[0].name} + {tensors[1].name}"
        elif kind == "times":
            expression = f"ops.multiply({tensors[0].name}, {tensors[1].name})"
        else:
            expression = f"layers.{kind}()([{names}])"
        self.emit(expression, tensors)

    def residual(self, tensor):
        """A shape-preserving branch merged back with its input."""
        branch = tensor
        for _ in range(self.integer(1, 2)):
            kind = self.pick(["dense", "activation", "normalization", "noise", "conv"])
            if kind == "dense":
                activation = self.pick([None, "relu", "tanh", "gelu"])
                self.emit(f"layers.Dense({branch.shape[-1]}, activation={activation!r})({branch.name})", [branch])
            elif kind == "conv" and branch.rank in (2, 3):
                layer = "Conv1D" if branch.rank == 2 else "Conv2D"
                self.emit(f"layers.{layer}({branch.shape[-1]}, 3, padding='same')({branch.name})", [branch])
            elif kind == "normalization":
                self.emit(f"layers.LayerNormalization()({branch.name})", [branch])
            elif kind == "noise":
                self.emit(f"layers.Dropout(0.2)({branch.name})", [branch])
            else:
                self.emit(f"layers.Activation({self.pick(['relu', 'swish', 'sigmoid'])!r})({branch.name})", [branch])
            branch = self.pool[-1]
        self.merge([tensor, branch])

    def merge_existing(self, tensor):
        partners = [t for t in self.pool if t is not tensor and t.dtype == "float" and t.shape == tensor.shape]
        if not partners:
            return self.residual(tensor)
        count = self.integer(1, min(3, len(partners)))
        chosen = [partners[-1 - self.integer(0, len(partners) - 1)] for _ in range(count)]
        self.merge([tensor] + chosen)

    def concatenate(self, tensor):
        partners = [
            t for t in self.pool
            if t.dtype == "float" and t.rank == tensor.rank and t.shape[:-1] == tensor.shape[:-1]
        ]
        other = self.pick(partners)
        if tensor.size + other.size > MAX_ELEMENTS:
            return False
        if self.flag():
            self.emit(f"layers.Concatenate()([{tensor.name}, {other.name}])", [tensor, other])
        else:
            self.emit(f"ops.concatenate([{tensor.name}, {other.name}], axis=-1)", [tensor, other])

    # Reshaping.

    def vector_reshape(self, tensor):
        features = tensor.shape[0]
        rows = self.pick([d for d in range(1, features + 1) if features % d == 0])
        self.emit(f"layers.Reshape(({rows}, {features // rows}))({tensor.name})", [tensor])

    def repeat_vector(self, tensor):
        times = self.integer(1, 4)
        if times * tensor.size > MAX_ELEMENTS:
            return False
        self.emit(f"layers.RepeatVector({times})({tensor.name})", [tensor])

    def flatten(self, tensor):
        if self.flag():
            self.emit(f"layers.Flatten()({tensor.name})", [tensor])
        else:
            self.emit(f"layers.Reshape(({tensor.size},))({tensor.name})", [tensor])

    def permute(self, tensor):
        self.emit(f"layers.Permute((2, 1))({tensor.name})", [tensor])

    def sequence_to_image(self, tensor):
        steps, channels = tensor.shape
        self.emit(f"layers.Reshape(({steps}, {channels}, 1))({tensor.name})", [tensor])

    def image_to_sequence(self, tensor):
        height, width, channels = tensor.shape
        self.emit(f"layers.Reshape(({height * width}, {channels}))({tensor.name})", [tensor])

    def pad_crop_up1d(self, tensor):
        steps = tensor.shape[0]
        kind = self.pick(["pad", "crop", "up"])
        if kind == "pad":
            left, right = self.integer(0, 2), self.integer(0, 2)
            if (steps + left + right) * tensor.shape[1] > MAX_ELEMENTS:
                return False
            self.emit(f"layers.ZeroPadding1D(({left}, {right}))({tensor.name})", [tensor])
        elif kind == "crop":
            if steps < 2:
                return False
            left = self.integer(0, steps - 1)
            right = self.integer(0, steps - 1 - left)
            self.emit(f"layers.Cropping1D(({left}, {right}))({tensor.name})", [tensor])
        else:
            size = self.integer(1, 3)
            if size * tensor.size > MAX_ELEMENTS:
                return False
            self.emit(f"layers.UpSampling1D({size})({tensor.name})", [tensor])

    def pad_crop_up2d(self, tensor):
        height, width, channels = tensor.shape
        kind = self.pick(["pad", "crop", "up"])
        if kind == "pad":
            pad = self.integer(0, 2)
            if (height + 2 * pad) * (width + 2 * pad) * channels > MAX_ELEMENTS:
                return False
            self.emit(f"layers.ZeroPadding2D({pad})({tensor.name})", [tensor])
        elif kind == "crop":
            if height < 2 or width < 2:
                return False
            top = self.integer(0, height - 1)
            left = self.integer(0, width - 1)
            self.emit(f"layers.Cropping2D(((0, {top}), ({left}, 0)))({tensor.name})", [tensor])
        else:
            size = self.integer(1, 2)
            interpolation = self.pick(["nearest", "bilinear"])
            if size * size * tensor.size > MAX_ELEMENTS:
                return False
            self.emit(f"layers.UpSampling2D({size}, interpolation={interpolation!r})({tensor.name})", [tensor])

    # Convolutions and pooling.

    def _conv_geometry(self, sizes, causal=False):
        """(kernel, strides, dilation, padding) valid for spatial ``sizes``."""
        padding = self.pick(["valid", "same"] + (["causal"] if causal else []))
        kernel = self.integer(1, 3)
        strides = self.integer(1, 2)
        dilation = 1 if strides > 1 else self.integer(1, 2)
        if padding == "valid" and (kernel - 1) * dilation + 1 > min(sizes):
            kernel, dilation = 1, 1
        return kernel, strides, dilation, padding

    def conv1d(self, tensor):
        kernel, strides, dilation, padding = self._conv_geometry(tensor.shape[:1], causal=True)
        channels = tensor.shape[-1]
        groups = self.pick([g for g in (1, 2) if channels % g == 0])
        filters = self.integer(1, 4) * groups
        activation = self.pick([None, "relu", "tanh", "selu"])
        self.emit(
            f"layers.Conv1D({filters}, {kernel}, strides={strides}, dilation_rate={dilation}, "
            f"padding={padding!r}, groups={groups}, activation={activation!r})({tensor.name})",
            [tensor],
        )

    def conv2d(self, tensor):
        kernel, strides, dilation, padding = self._conv_geometry(tensor.shape[:2])
        activation = self.pick([None, "relu", "elu", "swish"])
        self.emit(
            f"layers.Conv2D({self.integer(1, 4)}, {kernel}, strides={strides}, dilation_rate={dilation}, "
            f"padding={padding!r}, activation={activation!r})({tensor.name})",
            [tensor],
        )

    def depthwise1d(self, tensor):
        kernel, strides, dilation, padding = self._conv_geometry(tensor.shape[:1])
        multiplier = self.integer(1, 2)
        if multiplier * tensor.size > MAX_ELEMENTS:
            multiplier = 1
        self.emit(
            f"layers.DepthwiseConv1D({kernel}, strides={strides}, dilation_rate={dilation}, "
            f"padding={padding!r}, depth_multiplier={multiplier})({tensor.name})",
            [tensor],
        )

    def depthwise2d(self, tensor):
        kernel, strides, dilation, padding = self._conv_geometry(tensor.shape[:2])
        multiplier = self.integer(1, 2)
        if multiplier * tensor.size > MAX_ELEMENTS:
            multiplier = 1
        activation = self.pick([None, "relu"])
        self.emit(
            f"layers.DepthwiseConv2D({kernel}, strides={strides}, dilation_rate={dilation}, "
            f"padding={padding!r}, depth_multiplier={multiplier}, activation={activation!r})({tensor.name})",
            [tensor],
        )

    def separable1d(self, tensor):
        kernel, strides, dilation, padding = self._conv_geometry(tensor.shape[:1])
        self.emit(
            f"layers.SeparableConv1D({self.integer(1, 4)}, {kernel}, strides={strides}, "
            f"dilation_rate={dilation}, padding={padding!r}, depth_multiplier={self.integer(1, 2)}, "
            f"activation={self.pick([None, 'relu'])!r})({tensor.name})",
            [tensor],
        )

    def separable2d(self, tensor):
        kernel, strides, dilation, padding = self._conv_geometry(tensor.shape[:2])
        self.emit(
            f"layers.SeparableConv2D({self.integer(1, 4)}, {kernel}, strides={strides}, "
            f"dilation_rate={dilation}, padding={padding!r}, depth_multiplier={self.integer(1, 2)})({tensor.name})",
            [tensor],
        )

    def _transpose_geometry(self, sizes):
        kernel = self.integer(1, 3)
        strides = self.integer(1, 2)
        padding = self.pick(["valid", "same"])
        grown = [(s - 1) * strides + kernel if padding == "valid" else s * strides for s in sizes]
        return kernel, strides, padding, grown

    def conv1d_transpose(self, tensor):
        kernel, strides, padding, grown = self._transpose_geometry(tensor.shape[:1])
        filters = self.integer(1, 4)
        if grown[0] > MAX_LENGTH or grown[0] * filters > MAX_ELEMENTS:
            return False
        self.emit(
            f"layers.Conv1DTranspose({filters}, {kernel}, strides={strides}, padding={padding!r})({tensor.name})",
            [tensor],
        )

    def conv2d_transpose(self, tensor):
        kernel, strides, padding, grown = self._transpose_geometry(tensor.shape[:2])
        filters = self.integer(1, 3)
        if max(grown) > MAX_LENGTH or _size(grown) * filters > MAX_ELEMENTS:
            return False
        self.emit(
            f"layers.Conv2DTranspose({filters}, {kernel}, strides={strides}, padding={padding!r}, "
            f"activation={self.pick([None, 'relu'])!r})({tensor.name})",
            [tensor],
        )

    def _pool_geometry(self, sizes):
        padding = self.pick(["valid", "same"])
        pool = self.integer(1, 3)
        strides = self.pick([None, 1, 2])
        if padding == "valid" and pool > min(sizes):
            pool = 1
        return pool, strides, padding

    def pool1d(self, tensor):
        pool, strides, padding = self._pool_geometry(tensor.shape[:1])
        kind = self.pick(["MaxPooling1D", "AveragePooling1D"])
        self.emit(f"layers.{kind}({pool}, strides={strides}, padding={padding!r})({tensor.name})", [tensor])

    def pool2d(self, tensor):
        pool, strides, padding = self._pool_geometry(tensor.shape[:2])
        kind = self.pick(["MaxPooling2D", "AveragePooling2D"])
        self.emit(f"layers.{kind}({pool}, strides={strides}, padding={padding!r})({tensor.name})", [tensor])

    def global_pool(self, tensor):
        dims = "1D" if tensor.rank == 2 else "2D"
        kind = self.pick(["Max", "Average"])
        keepdims = self.flag()
        self.emit(f"layers.Global{kind}Pooling{dims}(keepdims={keepdims})({tensor.name})", [tensor])

    # Recurrent layers and attention (sequences).

    def _recurrent_layer(self, return_sequences):
        kind = self.pick(["SimpleRNN", "GRU", "LSTM"])
        units = self.integer(1, 5)
        options = f"return_sequences={return_sequences}"
        if kind == "GRU":
            options += f", reset_after={self.flag()}"
        if kind == "LSTM":
            options += f", unit_forget_bias={self.flag()}"
        if kind == "SimpleRNN":
            options += f", activation={self.pick(['tanh', 'relu'])!r}"
        return kind, units, options

    def recurrent(self, tensor):
        kind, units, options = self._recurrent_layer(self.flag())
        if self.integer(0, 3) == 0:
            states = 2 if kind == "LSTM" else 1
            self.emit(f"layers.{kind}({units}, {options}, return_state=True)({tensor.name})", [tensor],
                      outputs=1 + states)
        else:
            self.emit(f"layers.{kind}({units}, {options})({tensor.name})", [tensor])

    def bidirectional(self, tensor):
        kind, units, options = self._recurrent_layer(self.flag())
        merge_mode = self.pick(["concat", "sum", "ave", "mul", None])
        self.emit(
            f"layers.Bidirectional(layers.{kind}({units}, {options}), merge_mode={merge_mode!r})({tensor.name})",
            [tensor], outputs=2 if merge_mode is None else 1,
        )

    def attention(self, tensor):
        sequences = [t for t in self.pool if t.dtype == "float" and t.rank == 2]
        value = tensor if self.flag() else self.pick(sequences)
        heads = self.integer(1, 2)
        key_dim = self.integer(1, 4)
        arguments = f"{tensor.name}, {value.name}"
        if value is not tensor and self.flag():
            arguments += f", key={value.name}"
        causal = self.flag()
        dropout = self.pick([0.0, 0.1])
        self.emit(
            f"layers.MultiHeadAttention({heads}, {key_dim}, dropout={dropout})({arguments}, "
            f"use_causal_mask={causal})",
            [tensor, value],
        )

    # Nested models.

    def functional_block(self, tensor):
        inner = _Builder(self.draw, self.root, self.depth + 1)
        block_input = self.fresh("b")
        inner.run([block_input], f"keras.Input(shape={tensor.shape})", [])
        for _ in range(self.integer(1, 5)):
            inner.step()
        output = inner.pool[-1]
        name = self.fresh("block")
        self.execute(f"{name} = keras.Model({block_input}, {output.name}, name={name!r})")
        self.call_block(name, tensor, output.shape)

    def sequential_block(self, tensor):
        layers = []
        for _ in range(self.integer(1, 3)):
            kind = self.pick(["dense", "activation", "dropout", "batch", "layer"])
            if kind == "dense":
                layers.append(f"layers.Dense({self.integer(1, 6)}, activation={self.pick([None, 'relu', 'tanh'])!r})")
            elif kind == "activation":
                layers.append(f"layers.Activation({self.pick(['relu', 'sigmoid', 'gelu'])!r})")
            elif kind == "dropout":
                layers.append("layers.Dropout(0.3)")
            elif kind == "batch":
                layers.append("layers.BatchNormalization()")
            else:
                layers.append("layers.LayerNormalization()")
        name = self.fresh("sequential")
        self.execute(f"{name} = keras.Sequential([{', '.join(layers)}], name={name!r})")
        made = self.emit(f"{name}({tensor.name})", [tensor])[0]
        self.call_again(name, tensor, made)

    def subclassed_block(self, tensor):
        name = self.fresh("subclassed")
        activation = self.pick(["relu", "tanh", "sigmoid"])
        self.execute(f"{name} = FuzzBlock({self.integer(1, 6)}, {activation!r}, name={name!r})")
        made = self.emit(f"{name}({tensor.name})", [tensor])[0]
        self.call_again(name, tensor, made)

    def call_block(self, name, tensor, output_shape):
        made = self.emit(f"{name}({tensor.name})", [tensor])[0]
        self.call_again(name, tensor, made)

    def call_again(self, name, tensor, made):
        """Call a block a second time (on its own output, a twin tensor, or the same input)."""
        if not self.flag():
            return
        options = [t for t in self.pool if t.dtype == "float" and t.shape == tensor.shape and t is not made]
        if made.shape == tensor.shape:
            options.append(made)
        other = self.pick(options)
        self.emit(f"{name}({other.name})", [other])

    # Finishing.

    def finish(self):
        inputs = [t for t in self.pool if t.name.startswith("x")]
        outputs = [t for t in self.pool if not t.consumed and t.dtype == "float"]
        line = (
            f"model = keras.Model([{', '.join(t.name for t in inputs)}], "
            f"[{', '.join(t.name for t in outputs)}])"
        )
        self.execute(line)
        model = self.namespace["model"]
        # Symbolic building is not enough: some graphs Keras builds fail
        # when run (the probe would then fall back for a reason that is
        # Keras's, not AutoInit's). Valid means runnable, in training mode
        # as the probe runs it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                outputs = model(run_inputs(inputs), training=True)
            except Exception as error:  # noqa: BLE001 - Keras cannot run it: not a valid model
                _reject(error, "runs: ")
        # Keras's Activation("glu") declares its input's shape but halves the
        # last axis when run: a graph whose run contradicts its own shapes is
        # not a valid model either.
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for symbolic, value in zip(model.outputs, outputs):
            if tuple(symbolic.shape[1:]) != tuple(value.shape[1:]):
                _reject(ValueError(f"output {symbolic.shape} runs as {tuple(value.shape)}"), "runs: ")
        return FuzzCase(model, "\n".join(self.lines) + "\n", inputs)


@st.composite
def architectures(draw, max_steps=60, max_inputs=3):
    """A ``FuzzCase``: a random valid Keras 3 model of 1..``max_steps`` steps."""
    builder = _Builder(draw)
    for _ in range(draw(st.integers(1, max_inputs))):
        builder.add_input()
    # Mostly small graphs (fast), one in four up to max_steps.
    small = min(10, max_steps)
    steps = draw(st.one_of(st.integers(1, small), st.integers(1, small), st.integers(1, small),
                           st.integers(1, max_steps)))
    for _ in range(steps):
        builder.step()
    return builder.finish()


@st.composite
def autoinit_options(draw, cheap=True, inputs=1):
    """Keyword arguments for ``AutoInit``: both propagations, every distribution, odd input moments.

    ``cheap`` keeps the Monte Carlo sample counts small (a fuzz example
    checks robustness, not accuracy). With ``inputs`` > 1 the input moments
    are sometimes given per input.
    """
    samples = (64, 256, 1000) if cheap else (10_000, 100_000)
    chains = (16, 32, 64) if cheap else (1000,)
    return {
        "weight_init_config": {
            "distribution": draw(st.sampled_from(["truncated_normal", "untruncated_normal", "uniform", "orthogonal"])),
            "constrain_weights": draw(st.booleans()),
            "monte_carlo_samples": draw(st.sampled_from(samples)),
            "recurrent_monte_carlo_samples": draw(st.sampled_from(chains)),
            "seed": draw(st.integers(0, 2**31 - 1)),
        },
        "input_data_mean": draw(_moments([0.0, 0.0, 0.5, -3.0, 1e3], inputs)),
        "input_data_var": draw(_moments([1.0, 1.0, 0.0, 1e-8, 4.0, 1e6], inputs)),
        "signal_variance": draw(st.sampled_from([1.0, 1.0, 0.5, 2.0, 1e-4, 1e4])),
        "propagation": draw(st.sampled_from(["probe", "probe", "scalar"])),
    }


def _moments(values, inputs):
    single = st.sampled_from(values)
    if inputs == 1:
        return single
    return st.one_of(single, st.lists(single, min_size=inputs, max_size=inputs))


@st.composite
def fuzz_examples(draw, max_steps=60):
    """(case, options): an architecture and AutoInit options that fit its inputs."""
    case = draw(architectures(max_steps=max_steps))
    return case, draw(autoinit_options(inputs=len(case.inputs)))
