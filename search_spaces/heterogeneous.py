"""Heterogeneous networks (CoDeepNEAT-like): each block picks its own width, activation, merge and more.

Candidates mix activations and layer kinds within one network, so the right initial scale differs
from block to block. Inputs: signals (length,), sequences (length, channels) and images. Every
hyperparameter and space option: docs/search_spaces.md.
"""

import keras

from search_spaces.base import ACTIVATIONS, NORMALIZATIONS, SearchSpace, classifier, dropout, normalize
from search_spaces.cnn import head_features

UNITS = (8, 16, 32, 64, 128)
MERGES = ("none", "add", "concatenate")
POOLINGS = ("none", "max", "average")
LAYER_TYPES = ("conv", "dense")
HEADS = ("global_average", "global_max", "flatten")
MAX_BLOCKS = 6
BLOCK_CHOICES = {"activations": ACTIVATIONS, "normalizations": NORMALIZATIONS, "merges": MERGES,
                 "poolings": POOLINGS, "units": UNITS}


def space(input_shape, num_classes, compile=True, max_blocks=MAX_BLOCKS, **choices):
    """The heterogeneous space for signals (length,), sequences (length, channels) or images (h, w, c).

    ``choices``: any of ``activations``, ``normalizations``, ``merges``,
    ``poolings``, each a non-empty subset of the module's tuple of the same
    name (upper case), and ``units`` (positive ints), narrowing every
    block's choice.

    Example:
        >>> space((8, 8, 1), 10, normalizations=["batch"]).options["normalizations"]
        ('batch',)
    """
    if len(tuple(input_shape)) not in (1, 2, 3):
        raise ValueError(
            "The heterogeneous space expects an input_shape of rank 1 (length,), 2 (length, "
            f"channels) or 3 (height, width, channels). Received: input_shape={tuple(input_shape)}"
        )
    if isinstance(max_blocks, bool) or not isinstance(max_blocks, int) or max_blocks < 1:
        raise ValueError(f"`max_blocks` must be an int >= 1. Received: max_blocks={max_blocks!r}")
    options = {"max_blocks": max_blocks}
    for name, values in choices.items():
        options[name] = _validate_choices(name, values)
    return SearchSpace("heterogeneous", build, input_shape, num_classes, compile=compile, **options)


def _validate_choices(name, values):
    if name not in BLOCK_CHOICES:
        raise TypeError(
            f"The heterogeneous space has no option `{name}`. Expected some of: "
            f"{', '.join(sorted(BLOCK_CHOICES))}, max_blocks."
        )
    values = [values] if isinstance(values, (str, int)) else list(values)
    if name == "units":
        unknown = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v < 1]
        if not values or unknown:
            raise ValueError(f"`units` must be a non-empty list of positive ints. Received: units={values!r}")
        return tuple(values)
    unknown = [value for value in values if value not in BLOCK_CHOICES[name]]
    if not values or unknown:
        raise ValueError(
            f"`{name}` must be a non-empty list of values from {list(BLOCK_CHOICES[name])}. "
            f"Received: {name}={values!r}"
        )
    return tuple(values)


def build(hp, input_shape, num_classes, compile=True, max_blocks=MAX_BLOCKS, activations=ACTIVATIONS,
          normalizations=NORMALIZATIONS, merges=MERGES, poolings=POOLINGS, units=UNITS):
    """One candidate of the heterogeneous space (its hyperparameters: docs/search_spaces.md).

    Example:
        >>> import keras_tuner
        >>> hp = keras_tuner.HyperParameters()
        >>> hp.Fixed("blocks", 2), hp.Fixed("block_1_merge", "concatenate")
        (2, 'concatenate')
        >>> space((40,), 10)(hp).output_shape
        (None, 10)
        >>> describe(hp.values)["merges"]
        'concatenate+none'
    """
    blocks = hp.Int("blocks", 1, max_blocks, default=min(3, max_blocks))
    layer_type = hp.Choice("layer_type", list(LAYER_TYPES))
    kernel_size = hp.Choice("kernel_size", [3, 5])
    head = hp.Choice("head", list(HEADS))
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-1, sampling="log", default=1e-3)
    choices = dict(activations=activations, normalizations=normalizations, merges=merges,
                   poolings=poolings, units=units)
    settings = [_block_hyperparameters(hp, index, **choices) for index in range(max_blocks)]

    inputs = keras.Input(tuple(input_shape))
    hidden = _stem(inputs, layer_type)
    for block in settings[:blocks]:
        hidden = _block(hidden, block, layer_type, kernel_size)
    if layer_type == "conv":
        hidden = _head(hidden, head)
    return classifier(inputs, hidden, num_classes, learning_rate, compile, "heterogeneous")


def _block_hyperparameters(hp, index, activations, normalizations, merges, poolings, units):
    prefix = f"block_{index}_"
    return {
        "units": hp.Choice(prefix + "units", list(units), default=32 if 32 in units else units[0]),
        "layers": hp.Int(prefix + "layers", 1, 3),
        "activation": hp.Choice(prefix + "activation", list(activations)),
        "normalization": hp.Choice(prefix + "normalization", list(normalizations)),
        "dropout": hp.Float(prefix + "dropout", 0.0, 0.5, step=0.1),
        "merge": hp.Choice(prefix + "merge", list(merges)),
        "pooling": hp.Choice(prefix + "pooling", list(poolings)),
    }


def _stem(inputs, layer_type):
    """Inputs as the blocks take them: flat for dense, with a channel axis for conv."""
    if layer_type == "dense":
        return keras.layers.Flatten()(inputs) if len(inputs.shape) > 2 else inputs
    if len(inputs.shape) == 2:
        return keras.layers.Reshape((inputs.shape[1], 1))(inputs)
    return inputs


def _linear(tensor, units, layer_type, kernel_size):
    if layer_type == "dense":
        return keras.layers.Dense(units)(tensor)
    convolution = keras.layers.Conv1D if len(tensor.shape) == 3 else keras.layers.Conv2D
    return convolution(units, kernel_size, padding="same")(tensor)


def _block(tensor, block, layer_type, kernel_size):
    """Layers, dropout, merge with the block's input, then pooling."""
    branch = tensor
    for _ in range(block["layers"]):
        branch = _linear(branch, block["units"], layer_type, kernel_size)
        branch = normalize(branch, block["normalization"])
        branch = keras.layers.Activation(block["activation"])(branch)
    branch = dropout(branch, block["dropout"])
    if block["merge"] == "add":
        shortcut = tensor
        if shortcut.shape[-1] != block["units"]:
            shortcut = _linear(shortcut, block["units"], layer_type, 1)
        branch = keras.layers.Add()([shortcut, branch])
    elif block["merge"] == "concatenate":
        branch = keras.layers.Concatenate()([tensor, branch])
    spatial = branch.shape[1:-1]
    if layer_type == "conv" and block["pooling"] != "none" and min(spatial) > 1:
        pooling = {
            ("max", 1): keras.layers.MaxPooling1D, ("average", 1): keras.layers.AveragePooling1D,
            ("max", 2): keras.layers.MaxPooling2D, ("average", 2): keras.layers.AveragePooling2D,
        }[(block["pooling"], len(spatial))]
        branch = pooling(2, padding="same")(branch)
    return branch


def _head(tensor, head):
    if len(tensor.shape) == 4:
        return head_features(tensor, head)
    if head == "global_average":
        return keras.layers.GlobalAveragePooling1D()(tensor)
    if head == "global_max":
        return keras.layers.GlobalMaxPooling1D()(tensor)
    return keras.layers.Flatten()(tensor)


def describe(values):
    """Split labels of one candidate from its hyperparameter values, for study tables.

    Returns ``depth`` (weighted layers in the blocks), and ``activations``,
    ``normalizations``, ``merges``, ``poolings``: the sorted distinct
    choices of the blocks used, joined by "+" (e.g. "relu+tanh").

    Example:
        >>> describe({"blocks": 1, "block_0_layers": 2, "block_0_activation": "tanh"})["depth"]
        2
    """
    blocks = int(values.get("blocks", 1))
    used = range(blocks)

    def distinct(field, default):
        return "+".join(sorted({str(values.get(f"block_{i}_{field}", default)) for i in used}))

    return {
        "depth": sum(int(values.get(f"block_{i}_layers", 1)) for i in used),
        "activations": distinct("activation", ACTIVATIONS[0]),
        "normalizations": distinct("normalization", NORMALIZATIONS[0]),
        "merges": distinct("merge", MERGES[0]),
        "poolings": distinct("pooling", POOLINGS[0]),
    }
