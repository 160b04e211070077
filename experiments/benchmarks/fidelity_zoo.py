"""The fidelity benchmark's model zoo: builders, the ``ZOO`` table and its sizes.

Each builder takes a ``Size`` and returns a functional model ending in a
linear ``Dense(size.head, name="head")``; ``ZOO`` maps a model's name to its
family, builder, input kind and the documented scalar-propagation
approximations it exercises (``experiments/benchmarks/fidelity.py`` measures
them).
"""

from experiments.benchmarks import _common

HEAD_UNITS = 64
TINY_HEAD_UNITS = 16

# Documented approximations (README "Supported layers", MATH-NOTES "Where scalar
# propagation breaks").
POOL_AFTER_RELU = "pooling after ReLU"
GLOBAL_POOL = "global pooling"
DEPTH = "finite width at depth"
FIXED_POINT = "gelu/swish fixed point"
STACKED_RNN = "stacked RNNs"


class Size:
    """Model dimensions for a full or a tiny run."""

    def __init__(self, tiny):
        self.tiny = tiny
        self.width = 16 if tiny else 256
        self.head = TINY_HEAD_UNITS if tiny else HEAD_UNITS
        self.image = 12 if tiny else 32
        self.filters = 4 if tiny else 32
        self.steps = 6 if tiny else 30
        self.features = 4 if tiny else 32
        self.units = 8 if tiny else 64
        self.tokens = 8 if tiny else 32
        self.model_width = 16 if tiny else 64

    def depth(self, full):
        return min(full, 3) if self.tiny else full


# The zoo. Each builder takes a Size and returns a functional model whose
# output is a linear Dense(size.head, name="head").


def _layers():
    import keras

    return keras.layers


def _head(x, size):
    return _layers().Dense(size.head, name="head")(x)


def _model(inputs, x, size, name):
    import keras

    return keras.Model(inputs, _head(x, size), name=name)


def mlp(activation, depth, normalization=None, dropout=0.0):
    def build(size):
        L = _layers()
        inputs = L.Input((size.width,))
        x = inputs
        for index in range(size.depth(depth)):
            if normalization is None:
                x = L.Dense(size.width, activation=activation)(x)
            else:
                x = L.Dense(size.width)(x)
                x = (L.BatchNormalization() if normalization == "batch" else L.LayerNormalization())(x)
                x = L.Activation(activation)(x)
            if dropout and index % 2 == 1:
                x = L.Dropout(dropout)(x)
        return _model(inputs, x, size, "mlp")

    return build


def residual_mlp(size):
    """Pre-activation residual blocks: x + Dense(relu(Dense(relu(x))))."""
    L = _layers()
    inputs = L.Input((size.width,))
    x = L.Dense(size.width)(inputs)
    for _ in range(size.depth(8)):
        y = L.Activation("relu")(x)
        y = L.Dense(size.width, activation="relu")(y)
        y = L.Dense(size.width)(y)
        x = L.Add()([x, y])
    return _model(inputs, x, size, "residual_mlp")


def branches_concat(size):
    """Inception-style: three branches (relu, tanh, selu) concatenated, twice, then an Average merge."""
    L = _layers()
    inputs = L.Input((size.width,))
    x = inputs
    for _ in range(2):
        branches = [L.Dense(size.width // 4, activation=a)(x) for a in ("relu", "tanh", "selu")]
        x = L.Concatenate()(branches)
    a = L.Dense(size.width, activation="elu")(x)
    b = L.Dense(size.width, activation="tanh")(x)
    return _model(inputs, L.Average()([a, b]), size, "branches_concat")


def gated_multiply(size):
    """Gated units (tanh(xW) * sigmoid(xV)), three in a row, Multiply merges."""
    L = _layers()
    inputs = L.Input((size.width,))
    x = inputs
    for _ in range(3):
        gate = L.Dense(size.width, activation="sigmoid")(x)
        value = L.Dense(size.width, activation="tanh")(x)
        x = L.Multiply()([value, gate])
    return _model(inputs, x, size, "gated_multiply")


def nested_shared(size):
    """A nested two-layer block model called three times (shared weights)."""
    import keras

    L = _layers()
    block_in = L.Input((size.width,))
    block_out = L.Dense(size.width, activation="tanh")(L.Dense(size.width, activation="relu")(block_in))
    block = keras.Model(block_in, block_out, name="block")
    inputs = L.Input((size.width,))
    x = inputs
    for _ in range(3):
        x = block(x)
    return _model(inputs, x, size, "nested_shared")


def _image_input(size, channels=3):
    return _layers().Input((size.image, size.image, channels))


def cnn_plain(size):
    """Four 3x3 valid ReLU convolutions, Flatten, Dense."""
    L = _layers()
    inputs = _image_input(size)
    x = inputs
    for _ in range(4):
        x = L.Conv2D(size.filters, 3, activation="relu")(x)
    return _model(inputs, L.Flatten()(x), size, "cnn_plain")


def cnn_maxpool(size):
    """3 stages of 2 x [Conv2D relu] + MaxPooling2D(2), then GlobalAveragePooling2D."""
    L = _layers()
    inputs = _image_input(size)
    x = inputs
    for _ in range(size.depth(3) if not size.tiny else 2):
        for _ in range(2):
            x = L.Conv2D(size.filters, 3, padding="same", activation="relu")(x)
        x = L.MaxPooling2D(2)(x)
    return _model(inputs, L.GlobalAveragePooling2D()(x), size, "cnn_maxpool")


def cnn_tanh_gap(size):
    """Four 3x3 same tanh convolutions, then GlobalAveragePooling2D."""
    L = _layers()
    inputs = _image_input(size)
    x = inputs
    for _ in range(4):
        x = L.Conv2D(size.filters, 3, padding="same", activation="tanh")(x)
    return _model(inputs, L.GlobalAveragePooling2D()(x), size, "cnn_tanh_gap")


def cnn_bn_avgpool(size):
    """2 x [Conv2D, BatchNormalization, ReLU, AveragePooling2D(2)], Dropout, Flatten."""
    L = _layers()
    inputs = _image_input(size)
    x = inputs
    for _ in range(2):
        x = L.Conv2D(size.filters, 3, padding="same")(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
        x = L.AveragePooling2D(2)(x)
    x = L.SpatialDropout2D(0.1)(x)
    return _model(inputs, L.Flatten()(x), size, "cnn_bn_avgpool")


def resnet(normalization):
    def build(size):
        L = _layers()
        inputs = _image_input(size)
        x = L.Conv2D(size.filters, 3, padding="same")(inputs)
        for _ in range(size.depth(6)):
            y = x
            for _ in range(2):
                y = L.Conv2D(size.filters, 3, padding="same")(y)
                if normalization:
                    y = L.BatchNormalization()(y)
                y = L.ReLU()(y)
            x = L.Add()([x, y])
        return _model(inputs, L.GlobalAveragePooling2D()(x), size, "resnet")

    return build


def mobilenet(size):
    """Depthwise-separable blocks: DepthwiseConv2D, BN, ReLU6, 1x1 Conv, BN, ReLU6;
    a SeparableConv2D; GlobalAveragePooling2D."""
    L = _layers()
    inputs = _image_input(size)
    x = L.Conv2D(size.filters, 3, strides=2, padding="same")(inputs)
    for _ in range(size.depth(3)):
        x = L.DepthwiseConv2D(3, padding="same")(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU(6.0)(x)
        x = L.Conv2D(size.filters, 1)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU(6.0)(x)
    x = L.SeparableConv2D(size.filters, 3, padding="same", activation="relu")(x)
    return _model(inputs, L.GlobalAveragePooling2D()(x), size, "mobilenet")


def _sequence_input(size):
    return _layers().Input((size.steps, size.features))


def rnn_stack(kind, count):
    def build(size):
        L = _layers()
        layer = {"gru": L.GRU, "lstm": L.LSTM, "simple": L.SimpleRNN}[kind]
        inputs = _sequence_input(size)
        x = inputs
        for index in range(count):
            x = layer(size.units, return_sequences=index < count - 1)(x)
        return _model(inputs, x, size, f"{kind}_x{count}")

    return build


def bidirectional_lstm(size):
    L = _layers()
    inputs = _sequence_input(size)
    x = L.Bidirectional(L.LSTM(size.units))(inputs)
    return _model(inputs, x, size, "bidirectional_lstm")


def conv1d_pool_gru(size):
    """Like the toxicity anchor: Conv1D relu, MaxPooling1D, GRU."""
    L = _layers()
    inputs = _sequence_input(size)
    x = L.Conv1D(size.units, 3, padding="same", activation="relu")(inputs)
    x = L.MaxPooling1D(2)(x)
    x = L.GRU(size.units)(x)
    return _model(inputs, x, size, "conv1d_pool_gru")


def transformer_tokens(size):
    """Token Embedding, 2 pre-LN encoder blocks (MultiHeadAttention, gelu
    feed-forward, residual adds), final LayerNorm."""
    L = _layers()
    tokens = L.Input((size.tokens,), dtype="int32")
    x = L.Embedding(1000, size.model_width)(tokens)
    for _ in range(2):
        y = L.LayerNormalization()(x)
        x = L.Add()([x, L.MultiHeadAttention(4, size.model_width // 4)(y, y)])
        y = L.LayerNormalization()(x)
        y = L.Dense(4 * size.model_width, activation="gelu")(y)
        x = L.Add()([x, L.Dense(size.model_width)(y)])
    x = L.LayerNormalization()(x)
    return _model(tokens, x, size, "transformer_tokens")


def transformer_post_ln(size):
    """Continuous inputs: Dense projection, 2 post-LN blocks (attention, relu
    feed-forward, Dropout), GlobalAveragePooling1D."""
    L = _layers()
    inputs = _sequence_input(size)
    x = L.Dense(size.model_width)(inputs)
    for _ in range(2):
        x = L.LayerNormalization()(L.Add()([x, L.MultiHeadAttention(2, size.model_width // 2)(x, x)]))
        y = L.Dense(2 * size.model_width, activation="relu")(x)
        y = L.Dropout(0.1)(L.Dense(size.model_width)(y))
        x = L.LayerNormalization()(L.Add()([x, y]))
    return _model(inputs, L.GlobalAveragePooling1D()(x), size, "transformer_post_ln")


def cnn_deep_pooled(pool):
    """The fidelity issue's plain CNN: 4 stages of 5 ReLU convolutions, a 2x2
    max (or average) pool after the first three, GlobalAveragePooling2D."""
    def build(size):
        L = _layers()
        pooling = L.MaxPooling2D if pool == "max" else L.AveragePooling2D
        inputs = _image_input(size)
        x = inputs
        for stage in range(4 if not size.tiny else 2):
            for _ in range(size.depth(5)):
                x = L.Conv2D(size.filters // 2, 3, padding="same", activation="relu")(x)
            if stage < 3:
                x = pooling(2)(x)
        return _model(inputs, L.GlobalAveragePooling2D()(x), size, f"cnn20_{pool}pool")

    return build


def conv1d_avgpool_stages(size):
    """Four Conv1D(relu) / AveragePooling1D(2) stages: pooling of spatially correlated features."""
    L = _layers()
    inputs = L.Input((size.steps * 4, size.features))
    x = inputs
    for _ in range(size.depth(4)):
        x = L.Conv1D(size.units, 5, padding="same", activation="relu")(x)
        x = L.AveragePooling1D(2)(x)
    return _model(inputs, L.Flatten()(x), size, "conv1d_avgpool")


ACTIVATIONS_50 = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "softplus", "tanh", "sigmoid")

# name: (family, builder, input kind, documented approximations it exercises)
ZOO = {
    "mlp_relu_d10": ("MLP", mlp("relu", 10), "dense", ()),
    "mlp_tanh_d10": ("MLP", mlp("tanh", 10), "dense", ()),
    "mlp_selu_d10": ("MLP", mlp("selu", 10), "dense", ()),
    "mlp_sigmoid_d10": ("MLP", mlp("sigmoid", 10), "dense", ()),
    "mlp_elu_d10": ("MLP", mlp("elu", 10), "dense", ()),
    **{
        f"mlp_{activation}_d50": ("MLP", mlp(activation, 50), "dense",
                                  (DEPTH, FIXED_POINT) if activation in ("gelu", "swish") else (DEPTH,))
        for activation in ACTIVATIONS_50
    },
    "mlp_gelu_d30": ("MLP", mlp("gelu", 30), "dense", (FIXED_POINT, DEPTH)),
    "mlp_swish_d30": ("MLP", mlp("swish", 30), "dense", (FIXED_POINT, DEPTH)),
    "mlp_relu_batchnorm_d10": ("MLP", mlp("relu", 10, "batch"), "dense", ()),
    "mlp_gelu_layernorm_d10": ("MLP", mlp("gelu", 10, "layer"), "dense", ()),
    "mlp_selu_dropout_d10": ("MLP", mlp("selu", 10, dropout=0.2), "dense", ()),
    "residual_mlp": ("MLP", residual_mlp, "dense", ()),
    "branches_concat": ("merge", branches_concat, "dense", ()),
    "gated_multiply": ("merge", gated_multiply, "dense", ()),
    "nested_shared": ("nested", nested_shared, "dense", ()),
    "cnn_plain": ("CNN", cnn_plain, "image", ()),
    "cnn_maxpool_gap": ("CNN", cnn_maxpool, "image", (POOL_AFTER_RELU, GLOBAL_POOL)),
    "cnn20_maxpool_gap": ("CNN", cnn_deep_pooled("max"), "image", (POOL_AFTER_RELU, GLOBAL_POOL, DEPTH)),
    "cnn20_avgpool_gap": ("CNN", cnn_deep_pooled("avg"), "image", (GLOBAL_POOL, DEPTH)),
    "cnn_tanh_gap": ("CNN", cnn_tanh_gap, "image", (GLOBAL_POOL,)),
    "cnn_bn_avgpool": ("CNN", cnn_bn_avgpool, "image", ()),
    "resnet_bn": ("ResNet", resnet(True), "image", (GLOBAL_POOL,)),
    "resnet_plain": ("ResNet", resnet(False), "image", (GLOBAL_POOL,)),
    "mobilenet": ("CNN", mobilenet, "image", (GLOBAL_POOL,)),
    "simple_rnn": ("RNN", rnn_stack("simple", 1), "sequence", ()),
    "gru_x3": ("RNN", rnn_stack("gru", 3), "sequence", (STACKED_RNN,)),
    "lstm_x2": ("RNN", rnn_stack("lstm", 2), "sequence", (STACKED_RNN,)),
    "bidirectional_lstm": ("RNN", bidirectional_lstm, "sequence", ()),
    "conv1d_pool_gru": ("RNN", conv1d_pool_gru, "sequence", (POOL_AFTER_RELU,)),
    "conv1d_avgpool": ("CNN", conv1d_avgpool_stages, "sequence", (POOL_AFTER_RELU,)),
    "transformer_tokens": ("transformer", transformer_tokens, "tokens", ()),
    "transformer_post_ln": ("transformer", transformer_post_ln, "sequence", (GLOBAL_POOL,)),
    "anchor_mnist": ("NAS anchor", _common.anchor_builder("mnist"), "anchor", (POOL_AFTER_RELU,)),
    "anchor_pmlb": ("NAS anchor", _common.anchor_builder("pmlb"), "anchor", ()),
    "anchor_toxicity": ("NAS anchor", _common.anchor_builder("toxicity"), "anchor", (POOL_AFTER_RELU, STACKED_RNN)),
}
# The anchors have fixed sizes: --tiny leaves them out.
ANCHORS = tuple(name for name, (family, *_rest) in ZOO.items() if family == "NAS anchor")


def models_for(tiny):
    """The zoo models a run measures."""
    return [name for name in ZOO if not (tiny and name in ANCHORS)]
