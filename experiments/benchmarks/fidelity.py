"""How well AutoInit's predicted variances match what a model does to noise.

Run with ``python -m experiments.benchmarks.fidelity`` (``--help`` for the
options). For every model of a zoo of MLPs, CNNs, ResNets, RNNs, transformers
and merges (``ZOO``), in one fresh (spawned) process:

1. the model is built with ``keras.utils.set_random_seed(seed)`` (Keras's
   default initializers) and fed a batch of N(0, 1) noise (``--batch``,
   default 512; token models get uniform random token ids); every layer's
   output moments are read with ``autoinit_nas.core.measure.measure_moments``
   (training mode, as AutoInit predicts);
2. ``AutoInit(weight_init_config={"seed": seed}).initialize_model(model,
   return_estimates=True)`` initializes it and predicts every layer's output
   moments; the same batch is fed again and measured;
3. per layer (every entry of the estimates except input layers) the error is
   ``|log2(measured variance / predicted variance)|``; the model's median and
   max of it, and the layer where the max occurs (with the signed error:
   positive means the layer measured more variance than predicted).

Every model ends in a linear ``Dense(64, name="head")`` (64 units; tiny: 16),
so the final variance is read over batch x 64 units (``MATH-NOTES.md``,
"Measuring fidelity"); it is reported under AutoInit and under Keras's default
initialization of the same seeded build.

Targets: median <= 0.1 and max <= 0.5. ``verdict`` is PASS, or MISS with the
reason. ``documented`` lists the approximations the README documents (and
``MATH-NOTES.md`` measures) that the model exercises: pooling after ReLU,
global pooling, finite width at depth, gelu/swish fixed points, stacked RNNs.
A MISS on a model with none of them is a miss outside the documented
approximations. The zoo is not tuned to pass: the known-hard cases are in it
on purpose.

Writes ``fidelity.csv``, ``fidelity_layers.csv`` (every layer of every model)
and ``fidelity.md`` under ``--out`` (default ``out/benchmarks``).
"""

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from experiments.benchmarks import _common  # noqa: E402

DEFAULT_BATCH = 512
TINY_BATCH = 64
DEFAULT_SEED = 1
TARGET_MEDIAN = 0.1
TARGET_MAX = 0.5
HEAD_UNITS = 64
TINY_HEAD_UNITS = 16

# Documented approximations (README "Supported layers", MATH-NOTES "Where scalar
# propagation breaks").
POOL_AFTER_RELU = "pooling after ReLU"
GLOBAL_POOL = "global pooling"
DEPTH = "finite width at depth"
FIXED_POINT = "gelu/swish fixed point"
STACKED_RNN = "stacked RNNs"


class Size:
    """Model dimensions for a full or a tiny run."""

    def __init__(self, tiny):
        self.tiny = tiny
        self.width = 16 if tiny else 256
        self.head = TINY_HEAD_UNITS if tiny else HEAD_UNITS
        self.image = 12 if tiny else 32
        self.filters = 4 if tiny else 32
        self.steps = 6 if tiny else 30
        self.features = 4 if tiny else 32
        self.units = 8 if tiny else 64
        self.tokens = 8 if tiny else 32
        self.model_width = 16 if tiny else 64

    def depth(self, full):
        return min(full, 3) if self.tiny else full


# The zoo. Each builder takes a Size and returns a functional model whose
# output is a linear Dense(size.head, name="head").


def _layers():
    import keras

    return keras.layers


def _head(x, size):
    return _layers().Dense(size.head, name="head")(x)


def _model(inputs, x, size, name):
    import keras

    return keras.Model(inputs, _head(x, size), name=name)


def mlp(activation, depth, normalization=None, dropout=0.0):
    def build(size):
        L = _layers()
        inputs = L.Input((size.width,))
        x = inputs
        for index in range(size.depth(depth)):
            if normalization is None:
                x = L.Dense(size.width, activation=activation)(x)
            else:
                x = L.Dense(size.width)(x)
                x = (L.BatchNormalization() if normalization == "batch" else L.LayerNormalization())(x)
                x = L.Activation(activation)(x)
            if dropout and index % 2 == 1:
                x = L.Dropout(dropout)(x)
        return _model(inputs, x, size, "mlp")

    return build


def residual_mlp(size):
    """Pre-activation residual blocks: x + Dense(relu(Dense(relu(x))))."""
    L = _layers()
    inputs = L.Input((size.width,))
    x = L.Dense(size.width)(inputs)
    for _ in range(size.depth(8)):
        y = L.Activation("relu")(x)
        y = L.Dense(size.width, activation="relu")(y)
        y = L.Dense(size.width)(y)
        x = L.Add()([x, y])
    return _model(inputs, x, size, "residual_mlp")


def branches_concat(size):
    """Inception-style: three branches (relu, tanh, selu) concatenated, twice, then an Average merge."""
    L = _layers()
    inputs = L.Input((size.width,))
    x = inputs
    for _ in range(2):
        branches = [L.Dense(size.width // 4, activation=a)(x) for a in ("relu", "tanh", "selu")]
        x = L.Concatenate()(branches)
    a = L.Dense(size.width, activation="elu")(x)
    b = L.Dense(size.width, activation="tanh")(x)
    return _model(inputs, L.Average()([a, b]), size, "branches_concat")


def gated_multiply(size):
    """Gated units (tanh(xW) * sigmoid(xV)), three in a row, Multiply merges."""
    L = _layers()
    inputs = L.Input((size.width,))
    x = inputs
    for _ in range(3):
        gate = L.Dense(size.width, activation="sigmoid")(x)
        value = L.Dense(size.width, activation="tanh")(x)
        x = L.Multiply()([value, gate])
    return _model(inputs, x, size, "gated_multiply")


def nested_shared(size):
    """A nested two-layer block model called three times (shared weights)."""
    import keras

    L = _layers()
    block_in = L.Input((size.width,))
    block_out = L.Dense(size.width, activation="tanh")(L.Dense(size.width, activation="relu")(block_in))
    block = keras.Model(block_in, block_out, name="block")
    inputs = L.Input((size.width,))
    x = inputs
    for _ in range(3):
        x = block(x)
    return _model(inputs, x, size, "nested_shared")


def _image_input(size, channels=3):
    return _layers().Input((size.image, size.image, channels))


def cnn_plain(size):
    """Four 3x3 valid ReLU convolutions, Flatten, Dense."""
    L = _layers()
    inputs = _image_input(size)
    x = inputs
    for _ in range(4):
        x = L.Conv2D(size.filters, 3, activation="relu")(x)
    return _model(inputs, L.Flatten()(x), size, "cnn_plain")


def cnn_maxpool(size):
    """3 stages of 2 x [Conv2D relu] + MaxPooling2D(2), then GlobalAveragePooling2D."""
    L = _layers()
    inputs = _image_input(size)
    x = inputs
    for _ in range(size.depth(3) if not size.tiny else 2):
        for _ in range(2):
            x = L.Conv2D(size.filters, 3, padding="same", activation="relu")(x)
        x = L.MaxPooling2D(2)(x)
    return _model(inputs, L.GlobalAveragePooling2D()(x), size, "cnn_maxpool")


def cnn_tanh_gap(size):
    """Four 3x3 same tanh convolutions, then GlobalAveragePooling2D."""
    L = _layers()
    inputs = _image_input(size)
    x = inputs
    for _ in range(4):
        x = L.Conv2D(size.filters, 3, padding="same", activation="tanh")(x)
    return _model(inputs, L.GlobalAveragePooling2D()(x), size, "cnn_tanh_gap")


def cnn_bn_avgpool(size):
    """2 x [Conv2D, BatchNormalization, ReLU, AveragePooling2D(2)], Dropout, Flatten."""
    L = _layers()
    inputs = _image_input(size)
    x = inputs
    for _ in range(2):
        x = L.Conv2D(size.filters, 3, padding="same")(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
        x = L.AveragePooling2D(2)(x)
    x = L.SpatialDropout2D(0.1)(x)
    return _model(inputs, L.Flatten()(x), size, "cnn_bn_avgpool")


def resnet(normalization):
    def build(size):
        L = _layers()
        inputs = _image_input(size)
        x = L.Conv2D(size.filters, 3, padding="same")(inputs)
        for _ in range(size.depth(6)):
            y = x
            for _ in range(2):
                y = L.Conv2D(size.filters, 3, padding="same")(y)
                if normalization:
                    y = L.BatchNormalization()(y)
                y = L.ReLU()(y)
            x = L.Add()([x, y])
        return _model(inputs, L.GlobalAveragePooling2D()(x), size, "resnet")

    return build


def mobilenet(size):
    """Depthwise-separable blocks: DepthwiseConv2D, BN, ReLU6, 1x1 Conv, BN, ReLU6;
    a SeparableConv2D; GlobalAveragePooling2D."""
    L = _layers()
    inputs = _image_input(size)
    x = L.Conv2D(size.filters, 3, strides=2, padding="same")(inputs)
    for _ in range(size.depth(3)):
        x = L.DepthwiseConv2D(3, padding="same")(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU(6.0)(x)
        x = L.Conv2D(size.filters, 1)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU(6.0)(x)
    x = L.SeparableConv2D(size.filters, 3, padding="same", activation="relu")(x)
    return _model(inputs, L.GlobalAveragePooling2D()(x), size, "mobilenet")


def _sequence_input(size):
    return _layers().Input((size.steps, size.features))


def rnn_stack(kind, count):
    def build(size):
        L = _layers()
        layer = {"gru": L.GRU, "lstm": L.LSTM, "simple": L.SimpleRNN}[kind]
        inputs = _sequence_input(size)
        x = inputs
        for index in range(count):
            x = layer(size.units, return_sequences=index < count - 1)(x)
        return _model(inputs, x, size, f"{kind}_x{count}")

    return build


def bidirectional_lstm(size):
    L = _layers()
    inputs = _sequence_input(size)
    x = L.Bidirectional(L.LSTM(size.units))(inputs)
    return _model(inputs, x, size, "bidirectional_lstm")


def conv1d_pool_gru(size):
    """Like the toxicity anchor: Conv1D relu, MaxPooling1D, GRU."""
    L = _layers()
    inputs = _sequence_input(size)
    x = L.Conv1D(size.units, 3, padding="same", activation="relu")(inputs)
    x = L.MaxPooling1D(2)(x)
    x = L.GRU(size.units)(x)
    return _model(inputs, x, size, "conv1d_pool_gru")


def transformer_tokens(size):
    """Token Embedding, 2 pre-LN encoder blocks (MultiHeadAttention, gelu
    feed-forward, residual adds), final LayerNorm."""
    L = _layers()
    tokens = L.Input((size.tokens,), dtype="int32")
    x = L.Embedding(1000, size.model_width)(tokens)
    for _ in range(2):
        y = L.LayerNormalization()(x)
        x = L.Add()([x, L.MultiHeadAttention(4, size.model_width // 4)(y, y)])
        y = L.LayerNormalization()(x)
        y = L.Dense(4 * size.model_width, activation="gelu")(y)
        x = L.Add()([x, L.Dense(size.model_width)(y)])
    x = L.LayerNormalization()(x)
    return _model(tokens, x, size, "transformer_tokens")


def transformer_post_ln(size):
    """Continuous inputs: Dense projection, 2 post-LN blocks (attention, relu
    feed-forward, Dropout), GlobalAveragePooling1D."""
    L = _layers()
    inputs = _sequence_input(size)
    x = L.Dense(size.model_width)(inputs)
    for _ in range(2):
        x = L.LayerNormalization()(L.Add()([x, L.MultiHeadAttention(2, size.model_width // 2)(x, x)]))
        y = L.Dense(2 * size.model_width, activation="relu")(x)
        y = L.Dropout(0.1)(L.Dense(size.model_width)(y))
        x = L.LayerNormalization()(L.Add()([x, y]))
    return _model(inputs, L.GlobalAveragePooling1D()(x), size, "transformer_post_ln")


# name: (family, builder, input kind, documented approximations it exercises)
ZOO = {
    "mlp_relu_d10": ("MLP", mlp("relu", 10), "dense", ()),
    "mlp_tanh_d10": ("MLP", mlp("tanh", 10), "dense", ()),
    "mlp_selu_d10": ("MLP", mlp("selu", 10), "dense", ()),
    "mlp_sigmoid_d10": ("MLP", mlp("sigmoid", 10), "dense", ()),
    "mlp_elu_d10": ("MLP", mlp("elu", 10), "dense", ()),
    "mlp_relu_d50": ("MLP", mlp("relu", 50), "dense", (DEPTH,)),
    "mlp_gelu_d30": ("MLP", mlp("gelu", 30), "dense", (FIXED_POINT, DEPTH)),
    "mlp_swish_d30": ("MLP", mlp("swish", 30), "dense", (FIXED_POINT, DEPTH)),
    "mlp_relu_batchnorm_d10": ("MLP", mlp("relu", 10, "batch"), "dense", ()),
    "mlp_gelu_layernorm_d10": ("MLP", mlp("gelu", 10, "layer"), "dense", ()),
    "mlp_selu_dropout_d10": ("MLP", mlp("selu", 10, dropout=0.2), "dense", ()),
    "residual_mlp": ("MLP", residual_mlp, "dense", ()),
    "branches_concat": ("merge", branches_concat, "dense", ()),
    "gated_multiply": ("merge", gated_multiply, "dense", ()),
    "nested_shared": ("nested", nested_shared, "dense", ()),
    "cnn_plain": ("CNN", cnn_plain, "image", ()),
    "cnn_maxpool_gap": ("CNN", cnn_maxpool, "image", (POOL_AFTER_RELU, GLOBAL_POOL)),
    "cnn_tanh_gap": ("CNN", cnn_tanh_gap, "image", (GLOBAL_POOL,)),
    "cnn_bn_avgpool": ("CNN", cnn_bn_avgpool, "image", ()),
    "resnet_bn": ("ResNet", resnet(True), "image", (GLOBAL_POOL,)),
    "resnet_plain": ("ResNet", resnet(False), "image", (GLOBAL_POOL,)),
    "mobilenet": ("CNN", mobilenet, "image", (GLOBAL_POOL,)),
    "simple_rnn": ("RNN", rnn_stack("simple", 1), "sequence", ()),
    "gru_x3": ("RNN", rnn_stack("gru", 3), "sequence", (STACKED_RNN,)),
    "lstm_x2": ("RNN", rnn_stack("lstm", 2), "sequence", (STACKED_RNN,)),
    "bidirectional_lstm": ("RNN", bidirectional_lstm, "sequence", ()),
    "conv1d_pool_gru": ("RNN", conv1d_pool_gru, "sequence", (POOL_AFTER_RELU,)),
    "transformer_tokens": ("transformer", transformer_tokens, "tokens", ()),
    "transformer_post_ln": ("transformer", transformer_post_ln, "sequence", (GLOBAL_POOL,)),
}

TABLE = _common.Table(
    columns=(
        "model", "family", "parameters", "layers", "median_abs_log2", "max_abs_log2", "worst_layer",
        "worst_signed_log2", "final_var_autoinit", "final_var_default", "predicted_final_var",
        "verdict", "documented", "reason", "seconds",
    ),
    headers={
        "model": "model",
        "family": "family",
        "parameters": "parameters",
        "layers": "layers",
        "median_abs_log2": "median |log2|",
        "max_abs_log2": "max |log2|",
        "worst_layer": "max at",
        "worst_signed_log2": "signed",
        "final_var_autoinit": "final var AutoInit",
        "final_var_default": "final var default",
        "predicted_final_var": "predicted",
        "verdict": "verdict",
        "documented": "documented approximations",
        "reason": "reason",
        "seconds": "s",
    },
    formats={
        "parameters": _common.thousands,
        "median_abs_log2": _common.fixed(3),
        "max_abs_log2": _common.fixed(3),
        "worst_signed_log2": lambda value: f"{value:+.2f}",
        "final_var_autoinit": _common.general(3),
        "final_var_default": _common.general(3),
        "predicted_final_var": _common.general(3),
        "seconds": _common.fixed(1),
    },
    text_columns=("model", "family", "worst_layer", "verdict", "documented", "reason"),
)
PRINTED_COLUMNS = (
    "model", "layers", "median_abs_log2", "max_abs_log2", "worst_layer", "worst_signed_log2",
    "final_var_autoinit", "final_var_default", "verdict", "documented",
)
LAYER_TABLE = _common.Table(
    columns=("model", "layer", "predicted_mean", "predicted_var", "measured_mean", "measured_var",
             "signed_log2", "abs_log2"),
)


def make_inputs(model, kind, batch, seed):
    """A batch of N(0, 1) noise per input (token ids for int inputs)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = (batch,) + tuple(tensor.shape[1:])
        if "int" in str(tensor.dtype):
            arrays.append(rng.integers(0, 1000, size=shape).astype("int32"))
        else:
            arrays.append(rng.standard_normal(shape).astype("float32"))
    return arrays if len(arrays) > 1 else arrays[0]


def _input_layer_names(model):
    import keras

    return {
        layer.name
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.InputLayer)
    }


def _measure(model, inputs):
    """measure_moments, but int inputs are passed as ints (measure_moments casts to float32)."""
    import keras
    import numpy as np

    from autoinit_nas.core import graph
    from autoinit_nas.core.measure import measure_moments

    batch = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    if not any(np.issubdtype(np.asarray(a).dtype, np.integer) for a in batch):
        return measure_moments(model, inputs)
    # Token ids: same walk as measure_moments, with the ids kept as int32.
    values = [keras.ops.convert_to_tensor(np.asarray(a)) for a in batch]

    def visit(node, key, values_in):
        mapping = {id(t): v for t, v in zip(node.input_tensors, values_in)}
        args, kwargs = node.arguments.fill_in(mapping)
        operation = node.operation
        if isinstance(operation, keras.layers.Layer):
            kwargs = dict(kwargs, training=True)
        outputs = operation(*args, **kwargs)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    _, entries = graph.walk(model, values, visit)
    result = {}
    for key, value in entries.items():
        array = np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)
        result[key] = (float(array.mean()), float(array.var()))
    return result


def _log2_ratio(measured, predicted):
    if measured <= 1e-30 and predicted <= 1e-30:
        return 0.0
    if measured <= 1e-30 or predicted <= 1e-30:
        return math.copysign(math.inf, measured - predicted)
    return math.log2(measured / predicted)


def evaluate_model(name, tiny=False, batch=DEFAULT_BATCH, seed=DEFAULT_SEED):
    """Build, measure under default init, AutoInit, measure again; one result row plus layer rows."""
    import warnings

    import keras

    from autoinit_nas import AutoInit

    family, builder, kind, documented = ZOO[name]
    size = Size(tiny)
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model = builder(size)
    inputs = make_inputs(model, kind, batch, seed + 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = _measure(model, inputs)
        config = {"seed": seed}
        if tiny:
            config.update(monte_carlo_samples=100_000, recurrent_monte_carlo_samples=500)
        model, estimates = AutoInit(weight_init_config=config).initialize_model(
            model, return_estimates=True
        )
        measured = _measure(model, inputs)
    skip = _input_layer_names(model)
    layer_rows = []
    for key, (mean_pred, var_pred) in estimates.items():
        if key.split("/")[-1].split("@")[0] in skip or key not in measured:
            continue
        mean_meas, var_meas = measured[key]
        signed = _log2_ratio(var_meas, var_pred)
        layer_rows.append({
            "model": name, "layer": key, "predicted_mean": mean_pred, "predicted_var": var_pred,
            "measured_mean": mean_meas, "measured_var": var_meas,
            "signed_log2": signed, "abs_log2": abs(signed),
        })
    errors = [row["abs_log2"] for row in layer_rows]
    worst = max(layer_rows, key=lambda row: row["abs_log2"])
    median = statistics.median(errors)
    reasons = []
    if median > TARGET_MEDIAN:
        reasons.append(f"median {median:.2f} > {TARGET_MEDIAN}")
    if worst["abs_log2"] > TARGET_MAX:
        reasons.append(
            f"max {worst['abs_log2']:.2f} > {TARGET_MAX} at {worst['layer']} (measured var "
            f"{worst['measured_var']:.3g}, predicted {worst['predicted_var']:.3g})"
        )
    verdict = "PASS" if not reasons else ("MISS (documented)" if documented else "MISS")
    row = {
        "model": name,
        "family": family,
        "parameters": int(model.count_params()),
        "layers": len(layer_rows),
        "median_abs_log2": median,
        "max_abs_log2": worst["abs_log2"],
        "worst_layer": worst["layer"],
        "worst_signed_log2": worst["signed_log2"],
        "final_var_autoinit": measured["head"][1],
        "final_var_default": default["head"][1],
        "predicted_final_var": estimates["head"][1],
        "verdict": verdict,
        "documented": ", ".join(documented),
        "reason": "; ".join(reasons),
        "seconds": time.perf_counter() - start,
    }
    return row, layer_rows


def _error_row(name, error):
    row = {column: math.nan for column in TABLE.columns}
    row.update(
        model=name, family=ZOO[name][0], parameters=0, layers=0, worst_layer="",
        verdict="ERROR", documented=", ".join(ZOO[name][3]),
        reason=f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300],
    )
    return row


def evaluate_zoo(names, tiny=False, batch=DEFAULT_BATCH, seed=DEFAULT_SEED):
    """``evaluate_model`` for each name, printing progress; returns (rows, layer rows)."""
    import autoinit_nas  # noqa: F401

    rows, layers = [], []
    for name in names:
        try:
            row, layer_rows = evaluate_model(name, tiny, batch, seed)
        except Exception as error:  # noqa: BLE001 - report it, keep measuring the others
            row, layer_rows = _error_row(name, error), []
            rows.append(row)
            print(f"  {name}: ERROR {row['reason']}", flush=True)
            continue
        rows.append(row)
        layers += layer_rows
        print(
            f"  {name}: median {row['median_abs_log2']:.3f}, max {row['max_abs_log2']:.3f} at "
            f"{row['worst_layer']}, final var {row['final_var_autoinit']:.3g} "
            f"(default {row['final_var_default']:.3g}), {row['verdict']} ({row['seconds']:.1f}s)",
            flush=True,
        )
    return rows, layers


def summary_lines(rows):
    """Counts of PASS / MISS, and which misses fall outside the documented approximations."""
    passed = [row["model"] for row in rows if row["verdict"] == "PASS"]
    documented = [row["model"] for row in rows if row["verdict"] == "MISS (documented)"]
    outside = [row["model"] for row in rows if row["verdict"] == "MISS"]
    errors = [row["model"] for row in rows if row["verdict"] == "ERROR"]
    rows = [row for row in rows if row["verdict"] != "ERROR"]
    finals = [abs(math.log2(row["final_var_autoinit"])) for row in rows if row["final_var_autoinit"] > 0]
    defaults = [abs(math.log2(row["final_var_default"])) for row in rows if row["final_var_default"] > 0]
    lines = [
        f"{len(rows)} models: {len(passed)} PASS, {len(documented)} MISS on models exercising a "
        f"documented approximation, {len(outside)} MISS outside them"
        + (f" ({', '.join(outside)})" if outside else "")
        + (f", {len(errors)} ERROR ({', '.join(errors)})" if errors else ""),
    ]
    if finals and defaults:
        lines.append(
            f"final-layer variance, median |log2(var / 1)|: AutoInit {statistics.median(finals):.2f}, "
            f"Keras default {statistics.median(defaults):.2f}"
        )
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.fidelity",
        description="Predicted vs measured variance, layer by layer, over a zoo of architectures.",
    )
    parser.add_argument(
        "--models", nargs="+", default=None, metavar="MODEL",
        help=f"zoo models to run (space- or comma-separated), from {', '.join(ZOO)}; default all",
    )
    parser.add_argument("--batch", type=int, default=None,
                        help=f"noise batch size (default {DEFAULT_BATCH}; {TINY_BATCH} with --tiny)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="build and AutoInit seed")
    parser.add_argument("--tiny", action="store_true", help="tiny models and batch: a smoke run")
    parser.add_argument("--out", type=Path, default=_common.DEFAULT_OUT,
                        help=f"directory for the CSV and Markdown (default {_common.DEFAULT_OUT})")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 on a miss outside the documented approximations")
    args = parser.parse_args(argv)
    names = []
    for item in args.models or list(ZOO):
        names += [name.strip() for name in item.split(",") if name.strip()]
    unknown = [name for name in names if name not in ZOO]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(ZOO)}")
    args.models = list(dict.fromkeys(names))
    if args.batch is None:
        args.batch = TINY_BATCH if args.tiny else DEFAULT_BATCH
    if args.batch < 2:
        parser.error("--batch must be at least 2")
    return args


def main(argv=None):
    """Run the benchmark; returns the exit status (0 unless --strict and a miss outside documented)."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    header = _common.machine_info() + [
        f"{len(args.models)} models{' (tiny)' if args.tiny else ''}, N(0,1) noise batch {args.batch}, "
        f"seed {args.seed}, training-mode measurement; targets: median |log2(measured/predicted "
        f"variance)| <= {TARGET_MEDIAN}, max <= {TARGET_MAX}; final variance over batch x "
        f"{TINY_HEAD_UNITS if args.tiny else HEAD_UNITS} head units",
    ]
    for text in header:
        print(text, flush=True)
    rows, layers = _common.run_spawned(evaluate_zoo, args.models, args.tiny, args.batch, args.seed)
    printed = _common.Table(
        PRINTED_COLUMNS, TABLE.headers, TABLE.formats, TABLE.text_columns,
    )
    summary = summary_lines(rows)
    print()
    print(printed.text(rows))
    print()
    for line in summary:
        print(line)
    misses = [row for row in rows if row["reason"]]
    if misses:
        print("\nmisses:")
        for row in misses:
            where = f"documented: {row['documented']}" if row["documented"] else "outside documented"
            print(f"  {row['model']}: {row['reason']} [{where}]")

    csv_path = args.out / "fidelity.csv"
    layers_path = args.out / "fidelity_layers.csv"
    md_path = args.out / "fidelity.md"
    TABLE.write_csv(rows, csv_path)
    LAYER_TABLE.write_csv(layers, layers_path)
    miss_text = "\n".join(
        f"- **{row['model']}** ({row['verdict']}): {row['reason']}" for row in misses
    ) or "none"
    md_path.write_text(_common.markdown_document(
        "AutoInit fidelity: predicted vs measured variance",
        header + summary,
        [("Per model", TABLE.markdown(rows)), ("Misses", miss_text)],
    ))
    print(f"\nwrote {csv_path}, {layers_path}, {md_path}")
    outside = [row for row in rows if row["verdict"] in ("MISS", "ERROR")]
    return 1 if (args.strict and outside) else 0


if __name__ == "__main__":
    sys.exit(main())
