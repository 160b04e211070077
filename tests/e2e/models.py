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
