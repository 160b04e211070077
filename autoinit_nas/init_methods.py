"""Initialization methods as arms of a study: default, he, lecun, lsuv, autoinit-scalar, autoinit.

One function, ``initialize(model, method, ...)``, puts a built model into the
initial state an arm prescribes, in place: it is the one place that applies an
arm (``autoinit_nas.trials.arms`` only records what it did), so every engine
and every study compares arms on the same footing. Arms are independent of
order: the first time any arm touches a model, the initializers and
constraints it declares are kept (``declared_initializers``, in
``autoinit_nas.declared``); every arm first puts them back and re-draws each
declared weight from them under a seed derived from ``seed`` (the "default"
arm stops there), then replaces the weights it owns. A model that arrives
already initialized (a clone, or AutoInit run directly) declares what the
arm left: he / lecun / lsuv initializers carry the declared one through
clones; AutoInit's give way to the layer class's defaults, with a warning.

- he / lecun: kernels of Dense, EinsumDense and every convolution ~ N(0, g / fan_in)
  (g = 2 or 1), biases zero;
- lsuv (Mishkin & Matas 2016): orthonormal kernels, then in graph order each
  layer's kernel is rescaled until its pre-activation output on ``data`` has
  variance within ``tolerance`` of 1;
- autoinit-scalar / autoinit: ``AutoInit`` with scalar or probe propagation.

Example:
    >>> import keras, numpy as np
    >>> x = keras.Input((8,))
    >>> model = keras.Model(x, keras.layers.Dense(4, activation="relu")(x))
    >>> model = initialize(model, "lsuv", data=np.random.randn(64, 8), seed=0)
    >>> sorted(METHODS)
    ['autoinit', 'autoinit-scalar', 'default', 'he', 'lecun', 'lsuv']
"""

import copy
import math
import random
import time

import keras
import numpy as np

from autoinit_nas.core import graph
from autoinit_nas.core.autoinit import AutoInit
from autoinit_nas.declared import declared_initializers, layer_variable, layers_of, restore_declared, traced
from autoinit_nas.estimators.values import to_numpy

# The registry of arms; its order is the order tables and command lines list them in.
METHODS = {
    "autoinit": "AutoInit with probe propagation, the default (no data)",
    "default": "the initializers the model declares, re-drawn from a seed",
    "he": "He-normal N(0, 2/fan_in) for Dense/EinsumDense/convolution kernels, zero biases",
    "lecun": "LeCun-normal N(0, 1/fan_in) for Dense/EinsumDense/convolution kernels, zero biases",
    "lsuv": "orthonormal kernels rescaled layer by layer to unit pre-activation variance on data",
    "autoinit-scalar": "AutoInit with the paper's scalar propagation (no data)",
}
# The arm comparisons pair the others against unless told otherwise (Keras's own initializers).
DEFAULT_BASELINE = "default"
# Arms that measure the model on a batch of real training inputs (``data``).
DATA_METHODS = ("lsuv",)
# Arms run by AutoInit (their details carry its estimates).
AUTOINIT_METHODS = ("autoinit", "autoinit-scalar")

LSUV_OPTIONS = {"tolerance": 0.1, "max_iterations": 10, "training": True}

# Initializer attributes whose weight is not named after them.
_WEIGHT_ALIASES = {
    "depthwise": ("depthwise_kernel", "kernel"),
    "pointwise": ("pointwise_kernel",),
    "recurrent": ("recurrent_kernel",),
}

# Seed streams, so the default re-draw and an arm's own draws never share seeds.
_DECLARED_STREAM, _ARM_STREAM = 0, 1

_CONVOLUTIONS = (
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
)
_TRANSPOSED = (
    keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose,
)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)


def initialize(model, method, data=None, seed=None, autoinit=None, probe_batch=None, redraw=True,
               return_details=False, **options):
    """Initialize ``model`` in place by the arm ``method``; returns the model.

    The result depends only on the model's declared initializers and
    constraints, ``method``, ``seed`` (and ``data`` for "lsuv"), never on arms
    applied before. Declared is what the model holds when the first arm
    touches it, except arm traces: an he / lecun / lsuv initializer (a clone
    of such a model) stands for the initializer it replaced, and AutoInit's
    ``AutoInitInitializer`` / ``CenteredUnitNorm`` (a clone, or AutoInit run
    directly) for the layer class's own default (``glorot_uniform`` for a
    Dense kernel), with a warning (``autoinit_nas.declared``).

    Example:
        >>> import keras
        >>> x = keras.Input((16,))
        >>> model = keras.Model(x, keras.layers.Dense(8)(x))
        >>> kernel = initialize(model, "he", seed=0).layers[1].kernel
        >>> tuple(kernel.shape)
        (16, 8)

    Args:
        model: a built keras.Model (Functional or Sequential; "lsuv" needs
            one with a graph, the others take any built model AutoInit takes).
        method: a key of ``METHODS``.
        data: for "lsuv": a batch of real training inputs (an array, or a
            list with one array per model input); a few hundred examples are
            enough. Ignored by the other methods.
        seed: an int fixes every weight; None draws a fresh seed.
        autoinit: an ``AutoInit`` whose options the autoinit arms take (its
            own seed is replaced by ``seed`` when ``seed`` is given).
        probe_batch: the autoinit arms' probe batch: the training batch size (None: AutoInit's own).
        redraw: True: restore the declared initializers and re-draw the declared weights from ``seed``
            first; False: keep the weights the model holds (only for a model fresh from its build).
        return_details: also return {``seconds`` (the arm's own work), ``seed``, ``autoinit`` (the
            AutoInit copy used, or None), ``estimates`` ({layer: (mean, var)}, or None)}.
        **options: for "lsuv": ``tolerance`` (0.1), ``max_iterations`` (10),
            ``training`` (True: measure in training mode, as AutoInit predicts).

    Raises:
        ValueError: unknown method or option, or "lsuv" without ``data``.
    """
    _check(model, method, data, options)
    given_seed = seed
    seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    declared_initializers(model)  # the first arm to touch the model keeps what it declares
    if redraw:
        redraw_declared(model, seed)
    details = {"seconds": 0.0, "seed": seed, "autoinit": None, "estimates": None}
    start = time.perf_counter()
    if method in ("he", "lecun"):
        fan_in_normal(model, 2.0 if method == "he" else 1.0, seed)
    elif method in DATA_METHODS:
        lsuv(model, data, seed, **dict(LSUV_OPTIONS, **options))
    elif method in AUTOINIT_METHODS:
        details["autoinit"], details["estimates"] = _autoinit(model, method, given_seed, autoinit, probe_batch)
    details["seconds"] = time.perf_counter() - start
    return (model, details) if return_details else model


def _check(model, method, data, options):
    if method not in METHODS:
        raise ValueError(
            f"Unknown initialization method {method!r}. Expected one of: {', '.join(METHODS)}."
        )
    valid_options = LSUV_OPTIONS if method in DATA_METHODS else {}
    unknown = sorted(set(options) - set(valid_options))
    if unknown:
        raise ValueError(
            f"Method {method!r} takes no option(s) {unknown}; its options are "
            f"{sorted(valid_options) or 'none'}. Received: {options!r}"
        )
    if method in DATA_METHODS and data is None:
        raise ValueError(
            f"Method {method!r} measures each layer's output on real inputs: pass `data`, a batch of "
            f"training inputs (e.g. initialize(model, {method!r}, data=x_train[:512])). Received: data=None"
        )
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(
            f"`model` must be a built keras.Model. Received: {model!r} of type {type(model).__name__}"
        )


def _seeds(seed, stream, count):
    states = np.random.SeedSequence([seed, stream]).generate_state(max(count, 1))
    return [int(value) & 0x7FFFFFFF for value in states[:count]]


def declared_weights(model):
    """[(layer, initializer attribute, variable)] of every weight with a declared initializer.

    A layer's ``<name>_initializer`` attribute initializes its weight
    ``<name>`` (``depthwise``/``pointwise``/``recurrent`` name ``*_kernel``
    weights); weights nobody declares an initializer for are not listed.
    Each variable is listed once, in the order of ``model``'s layers.

    Example:
        >>> import keras
        >>> x = keras.Input((3,))
        >>> model = keras.Model(x, keras.layers.Dense(2, name="d")(x))
        >>> [(layer.name, attribute) for layer, attribute, _ in declared_weights(model)]
        [('d', 'kernel_initializer'), ('d', 'bias_initializer')]
    """
    found, seen = [], set()
    for layer in layers_of(model):
        for attribute, initializer in list(vars(layer).items()):
            if not (attribute.endswith("_initializer") and isinstance(initializer, keras.initializers.Initializer)):
                continue
            base = attribute[: -len("_initializer")].lstrip("_")
            for name in (base,) + _WEIGHT_ALIASES.get(base, ()):
                variable = layer_variable(layer, name)
                if variable is not None and id(variable) not in seen:
                    seen.add(id(variable))
                    found.append((layer, attribute, variable))
                    break
    return found


def redraw_declared(model, seed):
    """Re-draw every declared weight from its declared initializer, seeded; the "default" arm.

    The declared initializers are restored first (``restore_declared``), so
    what earlier arms left on the layers does not matter. A random initializer (anything whose config has a ``seed``) is rebuilt
    with a seed derived from ``seed`` and the weight's position, drawn, and
    left on the layer, so the same seed gives the same weights and
    ``clone_model`` redraws them. Constant initializers (zeros, ones) are
    drawn as they are (an LSTM's unit forget bias included), so a model
    trained before starts afresh; an initializer without a ``seed`` in its
    config is called as it is (not reproducible). Weights with no declared
    initializer keep their values.

    Example:
        >>> import keras
        >>> x = keras.Input((4,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> redraw_declared(model, seed=0)
        >>> model.layers[1].kernel_initializer.get_config()["seed"] is not None
        True
    """
    restore_declared(model)
    entries = declared_weights(model)
    for (layer, attribute, variable), weight_seed in zip(entries, _seeds(seed, _DECLARED_STREAM, len(entries))):
        initializer = getattr(layer, attribute)
        config = initializer.get_config()
        if "seed" in config:
            initializer = type(initializer).from_config(dict(config, seed=weight_seed))
            setattr(layer, attribute, initializer)
        variable.assign(_declared_value(layer, attribute, initializer, variable))


def _declared_value(layer, attribute, initializer, variable):
    value = initializer(tuple(variable.shape), dtype=variable.dtype)
    if attribute == "bias_initializer" and getattr(layer, "unit_forget_bias", False):
        # LSTM cells add 1 to the forget gate's bias (gates i, f, c, o) at build time.
        units = int(layer.units)
        value = keras.ops.concatenate(
            [value[:units], value[units: 2 * units] + 1.0, value[2 * units:]], axis=0
        )
    return value


def kernel_fan_ins(layer):
    """{weight name: fan-in} of the kernels the fan-in arms own in ``layer`` ({} for other layers).

    Dense: rows of the kernel; EinsumDense: the product of the kernel axes the
    equation contracts; Conv1D/2D/3D: window size x input channels per group;
    transposed convolutions: window size x input channels / strides (the
    average number of terms per output); depthwise: the window size (one
    input channel per filter); separable: the depthwise window, then the
    pointwise input channels. Embedding, recurrent and normalization layers
    are not owned (their declared initializers stay).

    Example:
        >>> import keras
        >>> layer = keras.layers.Conv2D(4, 3)
        >>> layer.build((None, 8, 8, 5))
        >>> kernel_fan_ins(layer)
        {'kernel': 45}
    """
    if isinstance(layer, keras.layers.Dense):
        return {"kernel": int(layer.kernel.shape[0])}
    if isinstance(layer, keras.layers.EinsumDense):
        inputs, output = layer.equation.split("->")
        kernel_axes = inputs.split(",")[1]
        shape = layer.kernel.shape
        return {"kernel": math.prod(int(shape[i]) for i, axis in enumerate(kernel_axes) if axis not in output)}
    if isinstance(layer, _CONVOLUTIONS):
        return {"kernel": math.prod(int(d) for d in layer.kernel.shape[:-1])}
    if isinstance(layer, _TRANSPOSED):
        shape = layer.kernel.shape
        terms = math.prod(int(d) for d in shape[:-2]) * int(shape[-1]) / math.prod(layer.strides)
        return {"kernel": max(int(round(terms)), 1)}
    if isinstance(layer, _DEPTHWISE):
        return {"kernel": math.prod(int(d) for d in layer.kernel.shape[:-2])}
    if isinstance(layer, _SEPARABLE):
        return {
            "depthwise_kernel": math.prod(int(d) for d in layer.depthwise_kernel.shape[:-2]),
            "pointwise_kernel": math.prod(int(d) for d in layer.pointwise_kernel.shape[:-1]),
        }
    return {}


def _initializer_attribute(layer, weight):
    if weight == "kernel" and isinstance(layer, _DEPTHWISE):
        return "depthwise_initializer"
    return {"depthwise_kernel": "depthwise_initializer", "pointwise_kernel": "pointwise_initializer"}.get(
        weight, weight + "_initializer"
    )


def _leave(layer, attribute, initializer):
    """Leave an arm's ``initializer`` on ``layer``, traced (what the layer declared survives clones)."""
    setattr(layer, attribute, traced(layer, attribute, initializer))


def _set_weight(layer, weight, initializer):
    """Draw ``weight`` from ``initializer``, leave the initializer on the layer, zero the bias."""
    variable = layer_variable(layer, weight)
    variable.assign(initializer(tuple(variable.shape), dtype=variable.dtype))
    _leave(layer, _initializer_attribute(layer, weight), initializer)
    bias = layer_variable(layer, "bias")
    if bias is not None:
        bias.assign(keras.ops.zeros(bias.shape, dtype=bias.dtype))
        _leave(layer, "bias_initializer", keras.initializers.Zeros())


def _owned_kernels(model):
    return [(layer, weight, fan_in) for layer in layers_of(model) for weight, fan_in in kernel_fan_ins(layer).items()]


def fan_in_normal(model, gain, seed):
    """Kernels ~ N(0, gain / fan_in) (He: gain 2, LeCun: gain 1), biases zero; see ``kernel_fan_ins``.

    Example:
        >>> import keras
        >>> x = keras.Input((50,))
        >>> model = keras.Model(x, keras.layers.Dense(400)(x))
        >>> fan_in_normal(model, gain=2.0, seed=0)
        >>> round(float(keras.ops.var(model.layers[1].kernel)) * 50, 1)
        2.0
    """
    owned = _owned_kernels(model)
    for (layer, weight, fan_in), weight_seed in zip(owned, _seeds(seed, _ARM_STREAM, len(owned))):
        stddev = math.sqrt(gain / fan_in)
        _set_weight(layer, weight, keras.initializers.RandomNormal(0.0, stddev, seed=weight_seed))


def _as_inputs(data):
    arrays = data if isinstance(data, (list, tuple)) else [data]
    converted = []
    for array in arrays:
        array = np.asarray(array)
        # Token ids stay integers; everything else is float32.
        converted.append(array if np.issubdtype(array.dtype, np.integer) else array.astype("float32"))
    return [keras.ops.convert_to_tensor(array) for array in converted]


def _pre_activation(layer, args, kwargs):
    """``layer``'s output with its own activation bypassed (the linear map plus bias)."""
    activation = getattr(layer, "activation", None)
    if activation is None:
        return layer(*args, **kwargs)
    layer.activation = keras.activations.linear
    try:
        return layer(*args, **kwargs)
    finally:
        layer.activation = activation


def lsuv(model, data, seed, tolerance=0.1, max_iterations=10, training=True):
    """Layer-sequential unit-variance initialization (Mishkin & Matas 2016), in place.

    Every owned kernel (``kernel_fan_ins``) is drawn orthonormal (Keras's
    ``Orthogonal``, gain 1; biases zero). Then, walking the graph from the
    inputs with ``data``, each owned layer's pre-activation output (its call
    with ``activation`` bypassed) is measured and the layer's kernels are
    divided by its standard deviation until the variance over all output
    elements is within ``tolerance`` of 1, at most ``max_iterations`` times;
    later layers see the adjusted outputs. The final scale is left on the
    layer as ``Orthogonal(gain=...)`` with the same seed. Layers inside
    other layers (attention projections, recurrent cells) are drawn
    orthonormal but not rescaled: the walk sees them as one call.

    Example:
        >>> import keras, numpy as np
        >>> x = keras.Input((8,))
        >>> model = keras.Model(x, keras.layers.Dense(16, activation="tanh")(x))
        >>> batch = 5 * np.random.default_rng(0).standard_normal((256, 8)).astype("float32")
        >>> model = lsuv(model, batch, seed=0)
        >>> kernel = keras.ops.convert_to_numpy(model.layers[1].kernel)
        >>> abs(float(np.var(batch @ kernel)) - 1) < 0.1  # the pre-activation variance
        True
    """
    owned = _owned_kernels(model)
    gains = {}
    for (layer, weight, _), weight_seed in zip(owned, _seeds(seed, _ARM_STREAM, len(owned))):
        _set_weight(layer, weight, keras.initializers.Orthogonal(gain=1.0, seed=weight_seed))
        gains[(id(layer), weight)] = (1.0, weight_seed)
    owners = {id(layer) for layer, _, _ in owned}
    walkable = model if graph.is_graph_model(model) else None
    if walkable is None:
        raise ValueError(
            f"Method 'lsuv' walks the model's layer graph; model '{model.name}' "
            f"({type(model).__name__}) has none. Build it functionally or as a built Sequential."
        )

    def visit(node, key, values_in):
        mapping = {id(t): v for t, v in zip(graph.signal_tensors(node), values_in)}
        args, kwargs = node.arguments.fill_in(mapping)
        layer = node.operation
        if isinstance(layer, keras.layers.Layer):
            kwargs = dict(kwargs, training=training)
        if id(layer) in owners:
            _rescale(layer, args, kwargs, gains, tolerance, max_iterations)
        outputs = layer(*args, **kwargs)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    graph.walk(walkable, _as_inputs(data), visit)
    for layer, weight, _ in owned:
        gain, weight_seed = gains[(id(layer), weight)]
        _leave(layer, _initializer_attribute(layer, weight), keras.initializers.Orthogonal(gain, weight_seed))
    return model


def _rescale(layer, args, kwargs, gains, tolerance, max_iterations):
    """Divide ``layer``'s kernels by its pre-activation std until the variance is within tolerance of 1."""
    names = list(kernel_fan_ins(layer))
    # A separable convolution is one linear map: scale only its pointwise kernel.
    names = names[-1:]
    for _ in range(int(max_iterations)):
        output = to_numpy(_pre_activation(layer, args, kwargs), np.float64)
        variance = float(output.var())
        if not math.isfinite(variance) or variance <= 0.0 or abs(variance - 1.0) < tolerance:
            return
        factor = 1.0 / math.sqrt(variance)
        for name in names:
            variable = layer_variable(layer, name)
            variable.assign(variable * factor)
            gain, weight_seed = gains[(id(layer), name)]
            gains[(id(layer), name)] = (gain * factor, weight_seed)


def _autoinit(model, method, seed, template, probe_batch=None):
    """AutoInit with ``template``'s options, ``seed`` (None: the template's), scalar for "autoinit-scalar".

    Returns (the AutoInit copy used, its estimates {layer: (mean, var)}).
    """
    if template is not None and not isinstance(template, AutoInit):
        raise TypeError(
            f"`autoinit` must be an AutoInit instance or None. Received: {template!r} "
            f"of type {type(template).__name__}"
        )
    instance = copy.copy(template) if template is not None else AutoInit()
    if seed is not None or template is None:
        instance.weight_init_config = dict(instance.weight_init_config, seed=seed)
    if method == "autoinit-scalar":
        instance.propagation = "scalar"
    elif template is None:
        instance.propagation = "probe"
    _, estimates = instance.initialize_model(model, return_estimates=True, probe_batch=probe_batch)
    return instance, estimates
