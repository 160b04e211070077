"""Ready search spaces for architecture search: mlp, cnn, resnet, transformer, heterogeneous, deep-plain.

One convention for every space: ``search_spaces.<name>.space(input_shape,
num_classes, compile=True, **options)`` returns a ``SearchSpace``, a
picklable callable ``build(hp) -> keras.Model``. It is what keras-tuner takes
as a hypermodel (alone or inside ``AutoInitHyperModel``), and what a Ray Tune
trial calls with a ``keras_tuner.HyperParameters`` filled from its config:
builds use only ``hp.Int``, ``hp.Float``, ``hp.Choice`` and ``hp.Boolean``,
register every hyperparameter unconditionally in a fixed order (no
conditional scopes), and ignore the ones a choice makes irrelevant.

Example:
    >>> import keras_tuner
    >>> import search_spaces
    >>> search_spaces.names()
    ['cnn', 'deep-plain', 'heterogeneous', 'mlp', 'resnet', 'transformer']
    >>> build = search_spaces.get("mlp")(input_shape=(64,), num_classes=10)
    >>> model = build(keras_tuner.HyperParameters())
    >>> model.output_shape
    (None, 10)

Every model ends in a ``Dense(num_classes, name="logits")`` followed by
``Activation("softmax", name="probabilities")``, and is compiled with Adam
(``learning_rate`` hyperparameter), sparse categorical crossentropy and
accuracy unless ``compile=False``.
"""

import importlib

from search_spaces.base import ACTIVATIONS, NORMALIZATIONS, SearchSpace

_SPACES = {
    "cnn": "search_spaces.cnn",
    "deep-plain": "search_spaces.deep_plain",
    "heterogeneous": "search_spaces.heterogeneous",
    "mlp": "search_spaces.mlp",
    "resnet": "search_spaces.resnet",
    "transformer": "search_spaces.transformer",
}

__all__ = ["ACTIVATIONS", "NORMALIZATIONS", "SearchSpace", "get", "names"]


def names():
    """Names of the registered search spaces, sorted."""
    return sorted(_SPACES)


def get(name):
    """The ``space(input_shape, num_classes, compile=True, **options)`` factory of ``name``.

    Example:
        >>> get("cnn")((8, 8, 1), 10).name
        'cnn'

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: no space has that name; the message lists the valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(
            f"Search space name must be a string, one of {names()}. "
            f"Received: {name!r} of type {type(name).__name__}"
        )
    if name not in _SPACES:
        raise ValueError(
            f"Unknown search space '{name}'. Expected one of: {', '.join(names())}. "
            f"Received: name={name!r}"
        )
    return importlib.import_module(_SPACES[name]).space
