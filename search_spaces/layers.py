"""Serializable layers the search spaces need that Keras does not ship.

Example:
    >>> import keras
    >>> tokens = keras.layers.Embedding(17, 8)(keras.Input((64,), dtype="int32"))
    >>> tuple(PositionEmbedding()(tokens).shape)
    (None, 64, 8)
"""

import keras


@keras.saving.register_keras_serializable(package="search_spaces")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector to each position of a (batch, length, dim) sequence.

    Initialized small (truncated normal, stddev 0.02, as in BERT), so at
    initialization the sum is the token embedding plus a little noise, and an
    estimator that passes mean and variance through is nearly exact.

    Example:
        >>> import numpy as np
        >>> layer = PositionEmbedding()
        >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
        (2, 5, 3)

    Args:
        embeddings_initializer: initializer of the (length, dim) table.
    """

    def __init__(self, embeddings_initializer=None, **kwargs):
        super().__init__(**kwargs)
        if embeddings_initializer is None:
            embeddings_initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(
                "PositionEmbedding expects inputs of shape (batch, length, dim) with known "
                f"length and dim. Received: input_shape={input_shape}"
            )
        self.embeddings = self.add_weight(
            shape=(input_shape[1], input_shape[2]),
            initializer=self.embeddings_initializer,
            name="embeddings",
        )

    def call(self, inputs):
        return inputs + keras.ops.cast(self.embeddings, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["embeddings_initializer"] = keras.initializers.serialize(self.embeddings_initializer)
        return config
