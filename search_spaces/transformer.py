"""Transformer encoders over token sequences, classified by pooling the sequence.

Inputs are integer token ids in ``[0, vocab_size)`` of shape
``(sequence_length,)``: token ``Embedding`` plus a learned
``PositionEmbedding``, then ``depth`` encoder blocks (``MultiHeadAttention``
sublayer and a two-Dense feed-forward sublayer), a pooling, and the head.

Hyperparameters, registered in this order:

- ``depth`` (Int 1-12): encoder blocks.
- ``embed_dim`` (Choice 16 ... 128): model width.
- ``heads`` (Choice 1, 2, 4, 8): attention heads, ``key_dim = embed_dim // heads``.
- ``ffn_multiplier`` (Choice 1, 2, 4): feed-forward width over ``embed_dim``.
- ``norm_position`` (Choice pre, post): normalization before each sublayer
  (plus a final one) or after each residual sum.
- ``skip`` (Boolean, default True): the residual connections around sublayers.
- ``pooling`` (Choice average, max, flatten): sequence to vector.
- ``activation`` (of the feed-forward), ``normalization``, ``dropout`` (also
  the attention dropout), ``learning_rate``: see
  ``search_spaces.base.shared_hyperparameters``.

AutoInit has no estimator for ``Embedding``, ``MultiHeadAttention`` or
``PositionEmbedding`` yet: they pass mean and variance through, with a
warning.

Example:
    >>> import keras_tuner
    >>> model = space((64,), 10, vocab_size=17)(keras_tuner.HyperParameters())
    >>> model.input.dtype
    'int32'
"""

import keras

from search_spaces.base import SearchSpace, classifier, dropout, normalize, shared_hyperparameters
from search_spaces.layers import PositionEmbedding

WIDTHS = (16, 32, 64, 128)


def space(input_shape, num_classes, compile=True, vocab_size=None):
    """The transformer space for token sequences of ``input_shape`` (length,).

    Args:
        vocab_size: number of distinct token ids (required).
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
        raise ValueError(
            "The transformer space reads integer token ids in [0, vocab_size); pass "
            f"`vocab_size`, an int >= 2. Received: vocab_size={vocab_size!r}"
        )
    return SearchSpace(
        "transformer", build, input_shape, num_classes, compile=compile, input_rank=1, vocab_size=vocab_size
    )


def build(hp, input_shape, num_classes, compile=True, vocab_size=None):
    """One candidate of the transformer space; see the module docstring."""
    depth = hp.Int("depth", 1, 12)
    embed_dim = hp.Choice("embed_dim", list(WIDTHS))
    heads = hp.Choice("heads", [1, 2, 4, 8])
    ffn_multiplier = hp.Choice("ffn_multiplier", [1, 2, 4])
    norm_position = hp.Choice("norm_position", ["pre", "post"])
    skip = hp.Boolean("skip", default=True)
    pooling = hp.Choice("pooling", ["average", "max", "flatten"])
    shared = shared_hyperparameters(hp)
    normalization, rate = shared["normalization"], shared["dropout"]
    pre = norm_position == "pre"

    def sublayer(hidden, transform):
        branch = transform(normalize(hidden, normalization) if pre else hidden)
        hidden = keras.layers.Add()([hidden, branch]) if skip else branch
        return hidden if pre else normalize(hidden, normalization)

    def attention(x):
        layer = keras.layers.MultiHeadAttention(heads, max(embed_dim // heads, 1), dropout=float(rate))
        return layer(x, x)

    def feed_forward(x):
        x = keras.layers.Dense(embed_dim * ffn_multiplier)(x)
        x = keras.layers.Activation(shared["activation"])(x)
        return dropout(keras.layers.Dense(embed_dim)(x), rate)

    inputs = keras.Input(tuple(input_shape), dtype="int32")
    hidden = keras.layers.Embedding(vocab_size, embed_dim)(inputs)
    hidden = PositionEmbedding()(hidden)
    for _ in range(depth):
        hidden = sublayer(hidden, attention)
        hidden = sublayer(hidden, feed_forward)
    if pre:
        hidden = normalize(hidden, normalization)
    if pooling == "average":
        features = keras.layers.GlobalAveragePooling1D()(hidden)
    elif pooling == "max":
        features = keras.layers.GlobalMaxPooling1D()(hidden)
    else:
        features = keras.layers.Flatten()(hidden)
    return classifier(inputs, features, num_classes, shared["learning_rate"], compile, "transformer")
