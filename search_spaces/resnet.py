"""Residual networks: stages of basic or pre-activation blocks, with or without shortcuts.

Hyperparameters, registered in this order:

- ``stages`` (Int 1-4): each stage after the first halves the resolution
  (stride-2 first convolution) and doubles the channels; capped by how often
  the input can be halved.
- ``blocks`` (Int 1-8): blocks per stage, two 3x3 convolutions each, so up to
  65 convolutions.
- ``filters`` (Choice 8 ... 64): channels of the stem and the first stage.
- ``block`` (Choice basic, preactivation): conv-norm-act-conv-norm, add, act
  (He et al. 2016a) or norm-act-conv-norm-act-conv, add (He et al. 2016b).
- ``skip`` (Boolean, default True): the shortcuts; False gives the plain
  network of the same shape. A shortcut that changes resolution or channels
  is a 1x1 convolution.
- ``stem_pooling`` (Choice none, max, average): 2x2 pooling after the stem.
- ``head`` (Choice global_average, global_max).
- ``activation``, ``normalization``, ``dropout``, ``learning_rate``: see
  ``search_spaces.base.shared_hyperparameters`` (dropout sits between a
  block's two convolutions).

Unnormalized deep residual stacks are where default initialization explodes
(each shortcut sum adds variance); AutoInit accounts for every sum.

Example:
    >>> import keras_tuner
    >>> hp = keras_tuner.HyperParameters()
    >>> hp.Fixed("stages", 2), hp.Fixed("blocks", 2)
    (2, 2)
    >>> model = space((8, 8, 1), 10)(hp)
    >>> sum(layer.__class__.__name__ == "Add" for layer in model.layers)
    4
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
from search_spaces.cnn import head_features, pool

FILTERS = (8, 16, 32, 64)


def space(input_shape, num_classes, compile=True):
    """The resnet space for images of ``input_shape`` (height, width, channels)."""
    return SearchSpace("resnet", build, input_shape, num_classes, compile=compile, input_rank=3)


def build(hp, input_shape, num_classes, compile=True):
    """One candidate of the resnet space; see the module docstring."""
    stages = hp.Int("stages", 1, 4)
    blocks = hp.Int("blocks", 1, 8)
    filters = hp.Choice("filters", list(FILTERS))
    block = hp.Choice("block", ["basic", "preactivation"])
    skip = hp.Boolean("skip", default=True)
    stem_pooling = hp.Choice("stem_pooling", ["none", "max", "average"])
    head = hp.Choice("head", ["global_average", "global_max"])
    shared = shared_hyperparameters(hp)
    activation, normalization = shared["activation"], shared["normalization"]

    halvings = max_halvings(input_shape[:2])
    inputs = keras.Input(tuple(input_shape))
    hidden = keras.layers.Conv2D(filters, 3, padding="same")(inputs)
    if block == "basic":
        hidden = keras.layers.Activation(activation)(normalize(hidden, normalization))
    if stem_pooling != "none" and halvings > 0:
        hidden = pool(hidden, stem_pooling)
        halvings -= 1
    for stage in range(min(stages, halvings + 1)):
        width = filters * 2**stage
        for index in range(blocks):
            stride = 2 if stage > 0 and index == 0 else 1
            hidden = residual_block(
                hidden, width, stride, block, skip, activation, normalization, shared["dropout"]
            )
    if block == "preactivation":
        hidden = keras.layers.Activation(activation)(normalize(hidden, normalization))
    return classifier(inputs, head_features(hidden, head), num_classes, shared["learning_rate"], compile, "resnet")


def residual_block(tensor, width, stride, block, skip, activation, normalization, rate):
    """One basic or pre-activation block of two 3x3 convolutions."""
    def conv(x, strides=1):
        return keras.layers.Conv2D(width, 3, strides=strides, padding="same")(x)

    def act(x):
        return keras.layers.Activation(activation)(x)

    if block == "basic":
        branch = act(normalize(conv(tensor, stride), normalization))
        branch = normalize(conv(dropout(branch, rate)), normalization)
    else:
        branch = conv(act(normalize(tensor, normalization)), stride)
        branch = conv(dropout(act(normalize(branch, normalization)), rate))
    if skip:
        shortcut = tensor
        if stride != 1 or tensor.shape[-1] != width:
            shortcut = keras.layers.Conv2D(width, 1, strides=stride, padding="same")(tensor)
        branch = keras.layers.Add()([shortcut, branch])
    if block == "basic":
        branch = act(branch)
    return branch
