"""Plain convolutional networks: 1 to 50 Conv2D layers with optional pooling and skips.

Hyperparameters, registered in this order:

- ``depth`` (Int 1-50): Conv2D layers ("same" padding, stride 1).
- ``filters`` (Choice 8 ... 128): channels of every convolution.
- ``kernel_size`` (Choice 3, 5).
- ``skip`` (Boolean): residual connections around every convolution whose
  input already has ``filters`` channels.
- ``pooling`` (Choice none, max, average): the downsampling layer.
- ``downsamples`` (Int 0-3): pooling layers (2x2, "same"), spread evenly
  through the stack; capped by how often the input can be halved and by
  ``depth``; ignored when ``pooling`` is "none".
- ``head`` (Choice global_average, global_max, flatten): from feature map to
  the classifier.
- ``activation``, ``normalization``, ``dropout``, ``learning_rate``: see
  ``search_spaces.base.shared_hyperparameters``.

Each layer is Conv2D -> normalization -> activation -> dropout.

Example:
    >>> import keras_tuner
    >>> hp = keras_tuner.HyperParameters()
    >>> hp.Fixed("depth", 4), hp.Fixed("pooling", "max"), hp.Fixed("downsamples", 2)
    (4, 'max', 2)
    >>> space((8, 8, 1), 10)(hp).get_layer("logits").input.shape
    (None, 8)
"""

import keras

from search_spaces.base import (
    SearchSpace,
    classifier,
    dropout,
    max_halvings,
    normalize,
    shared_hyperparameters,
)

FILTERS = (8, 16, 32, 64, 128)
POOLING = ("none", "max", "average")
HEADS = ("global_average", "global_max", "flatten")


def space(input_shape, num_classes, compile=True):
    """The cnn space for images of ``input_shape`` (height, width, channels)."""
    return SearchSpace("cnn", build, input_shape, num_classes, compile=compile, input_rank=3)


def build(hp, input_shape, num_classes, compile=True):
    """One candidate of the cnn space; see the module docstring."""
    depth = hp.Int("depth", 1, 50)
    filters = hp.Choice("filters", list(FILTERS))
    kernel_size = hp.Choice("kernel_size", [3, 5])
    skip = hp.Boolean("skip")
    pooling = hp.Choice("pooling", list(POOLING))
    downsamples = hp.Int("downsamples", 0, 3)
    head = hp.Choice("head", list(HEADS))
    shared = shared_hyperparameters(hp)

    count = 0 if pooling == "none" else min(downsamples, max_halvings(input_shape[:2]), depth)
    # Pool after layer round((k + 1) * depth / (count + 1)) - 1, k = 0 .. count-1.
    pool_after = [max(0, round((k + 1) * depth / (count + 1)) - 1) for k in range(count)]

    inputs = keras.Input(tuple(input_shape))
    hidden = inputs
    for index in range(depth):
        branch = keras.layers.Conv2D(filters, kernel_size, padding="same")(hidden)
        branch = normalize(branch, shared["normalization"])
        branch = keras.layers.Activation(shared["activation"])(branch)
        branch = dropout(branch, shared["dropout"])
        if skip and hidden.shape[-1] == filters:
            hidden = keras.layers.Add()([hidden, branch])
        else:
            hidden = branch
        for _ in range(pool_after.count(index)):
            hidden = pool(hidden, pooling)
    return classifier(inputs, head_features(hidden, head), num_classes, shared["learning_rate"], compile, "cnn")


def pool(tensor, kind):
    """2x2 max or average pooling with "same" padding."""
    layer = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
    return layer(2, padding="same")(tensor)


def head_features(tensor, head):
    """Feature map to vector: global average, global max, or flatten."""
    if head == "global_average":
        return keras.layers.GlobalAveragePooling2D()(tensor)
    if head == "global_max":
        return keras.layers.GlobalMaxPooling2D()(tensor)
    return keras.layers.Flatten()(tensor)
