"""Small real models the end-to-end tests initialize (built fresh each call)."""

import keras


def deep_mlp(activation, depth, width=256, input_dim=256, head=64):
    inputs = keras.Input((input_dim,))
    hidden = inputs
    for _ in range(depth):
        hidden = keras.layers.Dense(width, activation=activation)(hidden)
    outputs = keras.layers.Dense(head)(hidden)
    return keras.Model(inputs, outputs, name=f"mlp_{activation}_{depth}")


def residual_mlp(blocks=10, width=256, head=64):
    inputs = keras.Input((width,))
    hidden = inputs
    for _ in range(blocks):
        branch = keras.layers.Dense(width, activation="relu")(hidden)
        branch = keras.layers.Dense(width)(branch)
        hidden = keras.layers.Add()([hidden, branch])
    outputs = keras.layers.Dense(head)(hidden)
    return keras.Model(inputs, outputs, name="residual_mlp")


def small_convnet():
    inputs = keras.Input((16, 16, 3))
    hidden = inputs
    for filters in (16, 32, 32, 64):
        hidden = keras.layers.Conv2D(filters, 3, activation="relu")(hidden)
    hidden = keras.layers.Flatten()(hidden)
    hidden = keras.layers.Dense(128, activation="relu")(hidden)
    outputs = keras.layers.Dense(64)(hidden)
    return keras.Model(inputs, outputs, name="small_convnet")


def multi_io():
    left = keras.Input((64,), name="left")
    right = keras.Input((32,), name="right")
    a = keras.layers.Dense(128, activation="tanh")(left)
    b = keras.layers.Dense(128, activation="relu")(right)
    merged = keras.layers.Concatenate()([a, b])
    shared = keras.layers.Dense(128, activation="selu")(merged)
    out_a = keras.layers.Dense(64, name="head_a")(shared)
    out_b = keras.layers.Dense(64, name="head_b")(keras.layers.Multiply()([a, b]))
    return keras.Model([left, right], [out_a, out_b], name="multi_io")


def nested_shared_block(calls=3, width=128):
    block_in = keras.Input((width,))
    block_hidden = keras.layers.Dense(width, activation="relu")(block_in)
    block_out = keras.layers.Dense(width, activation="tanh")(block_hidden)
    block = keras.Model(block_in, block_out, name="block")
    inputs = keras.Input((width,))
    hidden = inputs
    for _ in range(calls):
        hidden = block(hidden)
    outputs = keras.layers.Dense(64, name="head")(hidden)
    return keras.Model(inputs, outputs, name="nested")


def sequential_mlp(depth=20, width=256):
    layers = [keras.Input((width,))]
    layers += [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    layers.append(keras.layers.Dense(64))
    return keras.Sequential(layers, name="sequential_mlp")


# The keras-io "Text classification with Transformer" example, written here
# from its published structure: two custom Layer subclasses around Keras's
# own layers, a float Input carrying token ids, and a small classifier head.


class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token embedding plus a learned embedding of each position (``ops.arange``)."""

    def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.token_emb = keras.layers.Embedding(vocab_size, embed_dim, name="token_emb")
        self.pos_emb = keras.layers.Embedding(maxlen, embed_dim, name="pos_emb")

    def call(self, x):
        positions = self.pos_emb(keras.ops.arange(0, keras.ops.shape(x)[-1], 1))
        return self.token_emb(x) + positions


class TransformerBlock(keras.layers.Layer):
    """Post-LN encoder block: attention and a two-Dense feed-forward, each with dropout and a residual add."""

    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.att = keras.layers.MultiHeadAttention(num_heads, embed_dim, name="att")
        self.ffn = keras.Sequential(
            [keras.layers.Dense(ff_dim, activation="relu", name="ffn_1"),
             keras.layers.Dense(embed_dim, name="ffn_2")],
            name="ffn",
        )
        self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-6, name="layernorm1")
        self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-6, name="layernorm2")
        self.dropout1 = keras.layers.Dropout(rate, name="dropout1")
        self.dropout2 = keras.layers.Dropout(rate, name="dropout2")

    def call(self, inputs, training=None):
        attended = self.dropout1(self.att(inputs, inputs), training=training)
        out1 = self.layernorm1(inputs + attended)
        fed = self.dropout2(self.ffn(out1), training=training)
        return self.layernorm2(out1 + fed)


def _text_classifier_head(hidden):
    hidden = keras.layers.GlobalAveragePooling1D(name="pool")(hidden)
    hidden = keras.layers.Dropout(0.1, name="drop_head_1")(hidden)
    hidden = keras.layers.Dense(20, activation="relu", name="dense_head")(hidden)
    hidden = keras.layers.Dropout(0.1, name="drop_head_2")(hidden)
    return keras.layers.Dense(2, name="logits")(hidden)


def keras_io_text_transformer(maxlen=200, vocab_size=20000, embed_dim=32, num_heads=2, ff_dim=32):
    """The keras-io text transformer, Functional (float Input, as the example declares it)."""
    inputs = keras.Input(shape=(maxlen,))
    hidden = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim, name="embedding")(inputs)
    hidden = TransformerBlock(embed_dim, num_heads, ff_dim, name="block")(hidden)
    return keras.Model(inputs, _text_classifier_head(hidden), name="keras_io_text_transformer")


class TextTransformerClassifier(keras.Model):
    """The same text transformer written as a subclassed keras.Model."""

    def __init__(self, maxlen=200, vocab_size=20000, embed_dim=32, num_heads=2, ff_dim=32, **kwargs):
        super().__init__(**kwargs)
        self.embedding = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim, name="embedding")
        self.block = TransformerBlock(embed_dim, num_heads, ff_dim, name="block")
        self.pool = keras.layers.GlobalAveragePooling1D(name="pool")
        self.drop_head_1 = keras.layers.Dropout(0.1, name="drop_head_1")
        self.dense_head = keras.layers.Dense(20, activation="relu", name="dense_head")
        self.drop_head_2 = keras.layers.Dropout(0.1, name="drop_head_2")
        self.logits = keras.layers.Dense(2, name="logits")

    def call(self, inputs, training=None):
        hidden = self.block(self.embedding(inputs), training=training)
        hidden = self.drop_head_1(self.pool(hidden), training=training)
        hidden = self.drop_head_2(self.dense_head(hidden), training=training)
        return self.logits(hidden)


def keras_io_text_transformer_subclassed(maxlen=200, vocab_size=20000, embed_dim=32, num_heads=2, ff_dim=32):
    """The subclassed text transformer, built by one call on a float batch of length ``maxlen``."""
    model = TextTransformerClassifier(maxlen, vocab_size, embed_dim, num_heads, ff_dim,
                                      name="keras_io_text_transformer_subclassed")
    model(keras.ops.zeros((1, maxlen)))
    return model
