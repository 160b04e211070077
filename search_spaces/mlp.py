"""Multilayer perceptrons: 1 to 50 Dense layers, plain or residual.

Hyperparameters, registered in this order:

- ``depth`` (Int 1-50): hidden Dense layers.
- ``units`` (Choice 16 ... 512): width of every hidden layer.
- ``skip`` (Boolean): residual connections, ``h = h + f(h)``, around every
  hidden layer after the first (whose width may differ from the input's).
- ``activation``, ``normalization``, ``dropout``, ``learning_rate``: see
  ``search_spaces.base.shared_hyperparameters``.

Each hidden layer is Dense -> normalization -> activation -> dropout; inputs
of rank > 1 are flattened first. The space reaches the regimes where
Keras's default initialization fails: deep sigmoid/tanh stacks without
normalization (vanishing signal), deep residual stacks (exploding sums).

Example:
    >>> import keras_tuner
    >>> hp = keras_tuner.HyperParameters()
    >>> hp.Fixed("depth", 3)
    3
    >>> model = space((64,), 10)(hp)
    >>> sum(layer.__class__.__name__ == "Dense" for layer in model.layers)
    4
"""

import keras

from search_spaces.base import SearchSpace, classifier, dropout, normalize, shared_hyperparameters

WIDTHS = (16, 32, 64, 128, 256, 512)


def space(input_shape, num_classes, compile=True):
    """The mlp space for ``input_shape`` (any rank) and ``num_classes`` classes."""
    return SearchSpace("mlp", build, input_shape, num_classes, compile=compile)


def build(hp, input_shape, num_classes, compile=True):
    """One candidate of the mlp space; see the module docstring."""
    depth = hp.Int("depth", 1, 50)
    units = hp.Choice("units", list(WIDTHS))
    skip = hp.Boolean("skip")
    shared = shared_hyperparameters(hp)

    inputs = keras.Input(tuple(input_shape))
    hidden = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    for _ in range(depth):
        branch = keras.layers.Dense(units)(hidden)
        branch = normalize(branch, shared["normalization"])
        branch = keras.layers.Activation(shared["activation"])(branch)
        branch = dropout(branch, shared["dropout"])
        if skip and hidden.shape[-1] == units:
            hidden = keras.layers.Add()([hidden, branch])
        else:
            hidden = branch
    return classifier(inputs, hidden, num_classes, shared["learning_rate"], compile, "mlp")
