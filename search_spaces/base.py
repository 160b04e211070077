"""What every search space shares: the SearchSpace callable, shared hyperparameters, the head.

Example:
    >>> import keras_tuner
    >>> hp = keras_tuner.HyperParameters()
    >>> sorted(shared_hyperparameters(hp))
    ['activation', 'dropout', 'learning_rate', 'normalization']
"""

import math

import keras

# The activations every space offers; relu first (the default build).
ACTIVATIONS = ("relu", "tanh", "selu", "gelu", "swish", "sigmoid", "elu")
NORMALIZATIONS = ("none", "batch", "layer")


class SearchSpace:
    """A space's ``build(hp)`` bound to an input shape and a class count.

    Calling it (or its ``build`` method) with a ``keras_tuner.HyperParameters``
    returns a new model. Picklable, so it can be shipped to Ray workers.

    Example:
        >>> import keras_tuner
        >>> from search_spaces import mlp
        >>> build = mlp.space((16,), 3)
        >>> build(keras_tuner.HyperParameters()).output_shape
        (None, 3)

    Args:
        name: the space's registry name.
        build_fn: module-level function ``build_fn(hp, input_shape,
            num_classes, compile=True, **options)``.
        input_shape: shape of one example, without the batch axis.
        num_classes: number of classes (at least 2).
        compile: compile each model (Adam, sparse categorical crossentropy,
            accuracy) or leave it uncompiled.
        input_rank: the rank ``input_shape`` must have, or None for any.
        **options: extra keyword arguments of ``build_fn``.
    """

    def __init__(self, name, build_fn, input_shape, num_classes, compile=True, input_rank=None, **options):
        self.name = name
        self.build_fn = build_fn
        self.input_shape = _validate_input_shape(name, input_shape, input_rank)
        self.num_classes = _validate_num_classes(name, num_classes)
        if not isinstance(compile, bool):
            raise TypeError(f"`compile` must be True or False. Received: compile={compile!r}")
        self.compile = compile
        self.options = dict(options)

    def __call__(self, hp):
        return self.build_fn(hp, self.input_shape, self.num_classes, compile=self.compile, **self.options)

    def build(self, hp):
        """Same as calling the space: a new model for ``hp``."""
        return self(hp)

    def __repr__(self):
        options = "".join(f", {key}={value!r}" for key, value in sorted(self.options.items()))
        return (
            f"SearchSpace({self.name!r}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes}, compile={self.compile}{options})"
        )


def _validate_input_shape(name, input_shape, rank):
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(
            f"`input_shape` of the {name} space must be a tuple of positive ints (one example, "
            f"no batch axis). Received: input_shape={input_shape!r}"
        )
    if rank is not None and len(shape) != rank:
        hint = {
            3: " (height, width, channels); add a channels axis for grey images, e.g. (8, 8, 1)",
            1: " (sequence_length,) of integer token ids",
        }.get(rank, "")
        raise ValueError(
            f"The {name} space expects an input_shape of rank {rank}{hint}. "
            f"Received: input_shape={shape}"
        )
    return shape


def _validate_num_classes(name, num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"`num_classes` of the {name} space must be an int >= 2. Received: num_classes={num_classes!r}"
        )
    return num_classes


def shared_hyperparameters(hp):
    """Register the hyperparameters every space has, in this order, and return their values.

    activation (``ACTIVATIONS``), normalization (``NORMALIZATIONS``),
    dropout (0.0 to 0.5, step 0.1) and learning_rate (1e-4 to 1e-1, log).
    """
    return {
        "activation": hp.Choice("activation", list(ACTIVATIONS)),
        "normalization": hp.Choice("normalization", list(NORMALIZATIONS)),
        "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1),
        "learning_rate": hp.Float("learning_rate", 1e-4, 1e-1, sampling="log"),
    }


def normalize(tensor, kind):
    """``tensor`` through the normalization named ``kind`` ("none", "batch" or "layer")."""
    if kind == "batch":
        return keras.layers.BatchNormalization()(tensor)
    if kind == "layer":
        return keras.layers.LayerNormalization()(tensor)
    if kind == "none":
        return tensor
    raise ValueError(f"`normalization` must be one of {NORMALIZATIONS}. Received: {kind!r}")


def dropout(tensor, rate):
    """``tensor`` through Dropout(rate), or unchanged when the rate is 0."""
    rate = float(rate)
    return keras.layers.Dropout(rate)(tensor) if rate > 0 else tensor


def max_halvings(sizes):
    """How many times the smallest spatial size can be halved (ceil) before reaching 1."""
    size = min(sizes)
    return max(int(math.ceil(math.log2(size))), 0) if size > 1 else 0


def classifier(inputs, features, num_classes, learning_rate, compile, name):
    """The shared head: logits, softmax, model, and (optionally) compile."""
    logits = keras.layers.Dense(num_classes, name="logits")(features)
    outputs = keras.layers.Activation("softmax", name="probabilities")(logits)
    model = keras.Model(inputs, outputs, name=name)
    if compile:
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=float(learning_rate)),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    return model
