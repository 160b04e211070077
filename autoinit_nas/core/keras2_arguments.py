"""What became of each tf.keras 2 layer argument in Keras 3, and the conversion of one layer config.

The table was derived once by serializing every built-in tf.keras 2.21 layer
class (a default instance, plus the arguments tf.keras 2 writes only when set)
and checking each argument against Keras 3's constructors
(``tests/data/keras2_generate.py`` writes those configs; ``tests/core/test_legacy.py``
checks that every argument in them is either accepted by the installed Keras 3
or listed here). Each entry says what the argument meant and whether dropping
it changes behaviour:

* ``drop``: no behavioural effect in Keras 3 (an implementation switch, a
  build shape, or an argument tf.keras 2 itself ignored);
* ``drop_if``: harmless only at the listed values; any other value is refused,
  because Keras 3 cannot express it;
* ``rename``: the same meaning under a new name;
* ``unlist``: the same meaning written as an int instead of a one-item list.

Activation names whose function changed (``hard_sigmoid``) are replaced by a
registered function that computes what tf.keras 2's did.

Example:
    >>> convert_layer("LeakyReLU", {"name": "act", "alpha": 0.2}, {})
    ('LeakyReLU', {'name': 'act', 'negative_slope': 0.2})
"""

import collections

import keras
import numpy as np

Rule = collections.namedtuple("Rule", "action values target reason")


def drop(reason):
    return Rule("drop", (), None, reason)


def drop_if(values, reason):
    return Rule("drop_if", tuple(values), None, reason)


def rename(target):
    return Rule("rename", (), target, f"renamed `{target}` in Keras 3")


def unlist():
    return Rule("unlist", (), None, "Keras 3 takes one axis as an int where tf.keras 2 wrote a list")


_TIME_MAJOR = drop_if((False, None), "Keras 3 recurrent layers read (batch, time, ...) only; "
                      "transpose the inputs and set time_major=False")
_IMPLEMENTATION = drop("chose tf.keras 2's kernel layout (1 or 2); the maths is the same")
_GROUPS = drop_if((1, None), "this Keras 3 layer has no grouped form (groups=1)")
_SEPARABLE_KERNEL = drop("tf.keras 2 ignored it too: a separable convolution draws its "
                         "depthwise_ and pointwise_ kernels")
_RNG_TYPE = drop("chose tf.keras 2's random-number generator; only the random stream differs")
_NO_WEIGHTS = drop("the Keras 3 layer has no weights to freeze")
_BUILD_SHAPE = drop("the shape tf.keras 2 built the layer with; Keras 3 builds from the inputs")
_VOCABULARY_SIZE = drop("informational: Keras 3 derives it from the vocabulary")
_CAUSAL = drop_if((False, None), "Keras 3 takes use_causal_mask=True when the layer is called, "
                  "which a config cannot carry")

RNN_CLASSES = ("RNN", "SimpleRNN", "GRU", "LSTM", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
ARGUMENTS = {
    **{name: {"time_major": _TIME_MAJOR} for name in RNN_CLASSES},
    "GRU": {"time_major": _TIME_MAJOR, "implementation": _IMPLEMENTATION},
    "LSTM": {"time_major": _TIME_MAJOR, "implementation": _IMPLEMENTATION},
    "GRUCell": {"implementation": _IMPLEMENTATION},
    "LSTMCell": {"implementation": _IMPLEMENTATION},
    **{name: {"groups": _GROUPS} for name in (
        "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D")},
    **{name: {"groups": _GROUPS, "kernel_initializer": _SEPARABLE_KERNEL,
              "kernel_regularizer": _SEPARABLE_KERNEL, "kernel_constraint": _SEPARABLE_KERNEL}
       for name in ("SeparableConv1D", "SeparableConv2D")},
    **{name: {"noise_shape": drop("tf.keras 2 ignored it too: spatial dropout always drops "
                                  "whole channels, noise shape (batch, 1, ..., channels)"),
              "trainable": _NO_WEIGHTS}
       for name in ("SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")},
    "Discretization": {"trainable": _NO_WEIGHTS},
    "Embedding": {"input_length": drop("Keras 3 takes the sequence length from the Input")},
    "LeakyReLU": {"alpha": rename("negative_slope")},
    "MultiHeadAttention": {
        "query_shape": _BUILD_SHAPE, "key_shape": _BUILD_SHAPE, "value_shape": _BUILD_SHAPE,
        "softmax_robust_masking": drop_if((False, None), "Keras 3's attention softmax has no "
                                          "robust-masking switch"),
    },
    "Softmax": {"robust_masking": drop_if((False, None), "Keras 3's Softmax has no robust-masking "
                                          "switch (masked entries get -1e9 there)")},
    **{name: {"rng_type": _RNG_TYPE} for name in (
        "RandomBrightness", "RandomContrast", "RandomCrop", "RandomFlip", "RandomRotation",
        "RandomTranslation", "RandomZoom")},
    **{name: {"vocabulary_size": _VOCABULARY_SIZE} for name in (
        "IntegerLookup", "StringLookup", "TextVectorization")},
    "BatchNormalization": {
        "axis": unlist(),
        "fused": drop("chose tf.keras 2's fused kernel; the maths is the same"),
        "virtual_batch_size": drop_if((None,), "Keras 3 normalizes over the whole batch; ghost "
                                      "batch normalization has no Keras 3 form"),
        "adjustment": drop_if((None,), "Keras 3 has no adjustment function"),
    },
    "Attention": {"causal": _CAUSAL},
    "AdditiveAttention": {"causal": _CAUSAL},
    "InputLayer": {"batch_input_shape": rename("batch_shape")},
}

# tf.keras 2 classes with no Keras 3 class of the same name.
REMOVED_CLASSES = {
    "LocallyConnected1D": "Keras 3 has no locally connected layer (unshared convolution weights)",
    "LocallyConnected2D": "Keras 3 has no locally connected layer (unshared convolution weights)",
    "RandomHeight": "Keras 3 has no RandomHeight; it resized the height at random while training",
    "RandomWidth": "Keras 3 has no RandomWidth; it resized the width at random while training",
    "DenseFeatures": "Keras 3 has no feature columns",
    "TFOpLambda": "it replays a TensorFlow function recorded by tf.keras 2, which Keras 3 cannot "
                  "load; rebuild that step with keras.ops or a layer",
    "SlicingOpLambda": "it replays a TensorFlow slice recorded by tf.keras 2, which Keras 3 cannot "
                       "load; rebuild that step with keras.ops or a layer",
}
# tf.keras 2 classes this module converts or refuses (no Keras 3 class of that name).
REPLACED_CLASSES = frozenset(REMOVED_CLASSES) | {"ThresholdedReLU"}


@keras.saving.register_keras_serializable(package="autoinit_nas")
def keras2_hard_sigmoid(x):
    """tf.keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1); Keras 3's has slope 1/6.

    Example:
        >>> float(keras2_hard_sigmoid(np.float64(1.0)))
        0.7
    """
    if isinstance(x, (np.ndarray, np.floating, float)):
        return np.clip(0.2 * x + 0.5, 0.0, 1.0)
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


# Its numpy branch is exact in float64: AutoInit evaluates it there.
keras2_hard_sigmoid.numpy_float64 = True
# Activation names whose function changed between tf.keras 2 and Keras 3, and
# the Keras 3 function that computes what tf.keras 2's did.
CHANGED_ACTIVATIONS = {"hard_sigmoid": keras2_hard_sigmoid}


class Keras2ConversionError(ValueError):
    """A tf.keras 2 layer config that Keras 3 cannot reproduce."""


def refuse(class_name, config, message):
    name = config.get("name", "?")
    raise Keras2ConversionError(
        f"tf.keras 2 layer '{name}' ({class_name}) cannot be converted to Keras 3: {message}."
    )


def convert_layer(class_name, config, dropped):
    """Keras 3 (class_name, config) for one tf.keras 2 layer config.

    ``dropped`` counts each argument dropped, as ``"Class.argument"``.
    Arguments not in ``ARGUMENTS`` are left for the caller to check.
    Raises ``Keras2ConversionError`` where Keras 3 would compute something else.

    Example:
        >>> convert_layer("GRU", {"name": "g", "units": 3, "time_major": False}, {})
        ('GRU', {'name': 'g', 'units': 3})
    """
    if class_name in REMOVED_CLASSES:
        refuse(class_name, config, REMOVED_CLASSES[class_name])
    if class_name == "ThresholdedReLU":
        # x if x > theta else 0: Keras 3's ReLU with a threshold (they differ only at x == theta).
        class_name, config = "ReLU", {**{k: v for k, v in config.items() if k != "theta"},
                                      "threshold": config.get("theta", 1.0)}
    config = dict(config)
    _convert_activations(config)
    if isinstance(config.get("dtype"), dict) and config["dtype"].get("class_name") == "Policy":
        config["dtype"] = config["dtype"].get("config", {}).get("name", "float32")
    for argument, rule in ARGUMENTS.get(class_name, {}).items():
        if argument not in config:
            continue
        value = config.pop(argument)
        if rule.action == "rename":
            config[rule.target] = value
            continue
        if rule.action == "unlist":
            config[argument] = value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value
            continue
        if rule.action == "drop_if" and not any(_same(value, kept) for kept in rule.values):
            refuse(class_name, config, f"`{argument}={value!r}`: {rule.reason}. Keras 3 expects "
                   + " or ".join(f"{argument}={kept!r}" for kept in rule.values))
        key = f"{class_name}.{argument}"
        dropped[key] = dropped.get(key, 0) + 1
    return class_name, config


def _same(value, kept):
    return value is kept if kept is None or isinstance(kept, bool) else value == kept


def _convert_activations(config):
    for argument, value in list(config.items()):
        if argument.endswith("activation") and isinstance(value, str) and value in CHANGED_ACTIVATIONS:
            config[argument] = keras.saving.serialize_keras_object(CHANGED_ACTIVATIONS[value])


def reason(key):
    """Why the argument ``"Class.argument"`` was dropped, or '' if it is not in the table."""
    class_name, _, argument = key.partition(".")
    rule = ARGUMENTS.get(class_name, {}).get(argument)
    if rule is None:
        return ""
    if rule.action == "drop_if":
        kept = " or ".join(repr(value) for value in rule.values)
        return f"only {kept}, what Keras 3 does, was dropped (other values: {rule.reason})"
    return rule.reason
