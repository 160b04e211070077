"""Deep plain networks: 8 to 40 weighted layers, no normalization, optional skips; vectors or images.

The space where initialization decides whether a network trains at all: no
BatchNormalization or LayerNormalization rescues a badly scaled signal, and
depth compounds every error (deep sigmoid/tanh stacks vanish, deep residual
sums explode). It sits beside the normalized spaces in the init study.

Hyperparameters, registered in this order:

- ``depth`` (Int 8-40): weighted layers in all, the ``logits`` layer included.
- ``width`` (Choice 16 ... 128): units (vectors) or filters (images) of every
  hidden layer.
- ``skip`` (Boolean): residual connections, ``h = h + f(h)``, around every
  hidden layer after the first (whose width may differ from the input's).
- ``activation`` (Choice of ``ACTIVATIONS``): after every hidden layer.
- ``learning_rate`` (Float 1e-4 to 1e-1, log).

Inputs of rank 3 (height, width, channels) go through ``depth - 1`` Conv2D
layers (3x3, "same", stride 1) and global average pooling; any other input is
flattened and goes through ``depth - 1`` Dense layers. No dropout.

Example:
    >>> import keras_tuner
    >>> hp = keras_tuner.HyperParameters()
    >>> model = space((40,), 10)(hp)
    >>> weighted_layers(model), hp.values["activation"]
    (8, 'relu')
"""

import keras

from search_spaces.base import SearchSpace, classifier

ACTIVATIONS = ("relu", "selu", "tanh", "gelu", "swish", "sigmoid")
WIDTHS = (16, 32, 64, 128)
DEPTH = (8, 40)


def space(input_shape, num_classes, compile=True):
    """The deep-plain space for ``input_shape`` (images of rank 3, anything else flattened)."""
    return SearchSpace("deep-plain", build, input_shape, num_classes, compile=compile)


def build(hp, input_shape, num_classes, compile=True):
    """One candidate of the deep-plain space; see the module docstring."""
    depth = hp.Int("depth", *DEPTH)
    width = hp.Choice("width", list(WIDTHS))
    skip = hp.Boolean("skip")
    activation = hp.Choice("activation", list(ACTIVATIONS))
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")

    inputs = keras.Input(tuple(input_shape))
    image = len(input_shape) == 3
    hidden = inputs if image or len(input_shape) == 1 else keras.layers.Flatten()(inputs)
    for _ in range(depth - 1):
        if image:
            layer = keras.layers.Conv2D(width, 3, padding="same")
        else:
            layer = keras.layers.Dense(width)
        branch = keras.layers.Activation(activation)(layer(hidden))
        hidden = keras.layers.Add()([hidden, branch]) if skip and hidden.shape[-1] == width else branch
    if image:
        hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    return classifier(inputs, hidden, num_classes, learning_rate, compile, "deep_plain")


def weighted_layers(model):
    """Dense and convolution layers of ``model`` (what ``depth`` counts).

    Example:
        >>> import keras_tuner
        >>> hp = keras_tuner.HyperParameters()
        >>> hp.Fixed("depth", 12)
        12
        >>> weighted_layers(space((8, 8, 1), 3)(hp))
        12
    """
    return sum(isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)) for layer in model.layers)


def describe(values):
    """{"depth": weighted layers, "activations": the activation} of a candidate's hyperparameter values.

    Example:
        >>> describe({"depth": 20, "activation": "tanh"})
        {'depth': 20, 'activations': 'tanh'}
    """
    return {"depth": int(values.get("depth", DEPTH[0])), "activations": values.get("activation", ACTIVATIONS[0])}
