"""Write the tf.keras 2 test data that tests/core/test_legacy.py reads.

Run once, by hand, with tf.keras 2 importable (never a project dependency):

    pip download tf_keras==2.21.0 --no-deps -d /tmp/k2 && cd /tmp/k2 && unzip -q tf_keras-*.whl -d site
    PYTHONPATH=/tmp/k2/site .venv/bin/python tests/data/keras2_generate.py

It writes, next to this file:

* ``keras2_layers.json``: ``{key: {"layer": <tf.keras 2 serialized layer>, "input": [shape, dtype]}}``
  for every built-in tf.keras 2 layer class, as tf.keras 2 serializes a default
  instance, plus variants that carry the arguments tf.keras 2 writes only when
  they are set (``key`` is ``Class`` or ``Class/variant``);
* ``keras2_text_model.json``: a CoDeepNEAT-style functional text model as
  ``model.to_json()`` writes it, with its weights and its inference-mode output
  on fixed token ids in ``keras2_text_model.npz``.

``tests/core/test_legacy.py`` checks every argument in these configs against
the installed Keras 3's constructors and ``autoinit_nas/core/keras2_arguments.py``.
"""

import inspect
import json
import pathlib

import numpy as np
import tf_keras as k2

HERE = pathlib.Path(__file__).resolve().parent
L = k2.layers
# Required constructor arguments, by class; None: no config to test
# (abstract, or needs Python code or feature columns).
REQUIRED = {
    "Activation": dict(activation="relu"), "AlphaDropout": dict(rate=0.1),
    "CenterCrop": dict(height=2, width=2), "Dense": dict(units=3),
    "DepthwiseConv1D": dict(kernel_size=3), "DepthwiseConv2D": dict(kernel_size=3),
    "Dot": dict(axes=1), "Dropout": dict(rate=0.1),
    "EinsumDense": dict(equation="ab,bc->ac", output_shape=3),
    "Embedding": dict(input_dim=10, output_dim=3), "GaussianDropout": dict(rate=0.1),
    "GaussianNoise": dict(stddev=0.1), "HashedCrossing": dict(num_bins=4), "Hashing": dict(num_bins=4),
    "MultiHeadAttention": dict(num_heads=2, key_dim=3), "Permute": dict(dims=(2, 1)),
    "RandomBrightness": dict(factor=0.1), "RandomContrast": dict(factor=0.1),
    "RandomCrop": dict(height=2, width=2), "RandomRotation": dict(factor=0.1),
    "RandomTranslation": dict(height_factor=0.1, width_factor=0.1),
    "RandomZoom": dict(height_factor=0.1), "RandomHeight": dict(factor=0.1),
    "RandomWidth": dict(factor=0.1), "RepeatVector": dict(n=2), "Rescaling": dict(scale=0.5),
    "Reshape": dict(target_shape=(4, 1)), "Resizing": dict(height=2, width=2),
    "CategoryEncoding": dict(num_tokens=4), "InputLayer": dict(input_shape=(4,)),
    "Discretization": dict(bin_boundaries=[0.0, 1.0]),
    "Lambda": None, "DenseFeatures": None, "AbstractRNNCell": None, "Wrapper": None, "Layer": None,
}
WRAPPED = {
    "Bidirectional": lambda: dict(layer=L.LSTM(3, time_major=False)),
    "TimeDistributed": lambda: dict(layer=L.Dense(3)),
    "SpectralNormalization": lambda: dict(layer=L.Dense(3)),
    "RNN": lambda: dict(cell=L.LSTMCell(3)),
    "StackedRNNCells": lambda: dict(cells=[L.GRUCell(3), L.SimpleRNNCell(2)]),
}
# Arguments tf.keras 2 writes only when set (or wrote in earlier 2.x releases).
VARIANTS = {
    "BatchNormalization/renorm": (L.BatchNormalization, dict(renorm=True, renorm_momentum=0.9)),
    "BatchNormalization/virtual_batch_size": (L.BatchNormalization, dict(virtual_batch_size=4)),
    "GRU/time_major": (L.GRU, dict(units=3, time_major=True)),
    "LSTM/implementation_1": (L.LSTM, dict(units=3, implementation=1)),
    "SpatialDropout1D/noise_shape": (L.SpatialDropout1D, dict(rate=0.2, noise_shape=(None, 1, 5))),
    "Embedding/input_length": (L.Embedding, dict(input_dim=10, output_dim=3, input_length=7)),
    "LeakyReLU/alpha": (L.LeakyReLU, dict(alpha=0.2)),
    "ThresholdedReLU/theta": (L.ThresholdedReLU, dict(theta=0.5)),
    "Softmax/robust_masking": (L.Softmax, dict(robust_masking=True)),
    "Conv2DTranspose/groups": (L.Conv2DTranspose, dict(filters=2, kernel_size=3)),
    "Dense/hard_sigmoid": (L.Dense, dict(units=3, activation="hard_sigmoid")),
    "ConvLSTM2D/sigmoid": (L.ConvLSTM2D, dict(filters=2, kernel_size=3, recurrent_activation="sigmoid")),
}
# Inputs each layer is built on in Keras 3 (shape without batch, dtype).
SPECIAL_INPUTS = {
    "Embedding": [[7], "int32"], "CategoryEncoding": [[4], "int32"], "Hashing": [[4], "int32"],
    "IntegerLookup": [[4], "int32"], "StringLookup": [[4], "string"],
    "TextVectorization": [[1], "string"], "GroupNormalization": [[5, 32], "float32"], "HashedCrossing": None, "InputLayer": None,
    "Dot": None, "Add": None, "Subtract": None, "Multiply": None, "Average": None,
    "Maximum": None, "Minimum": None, "Concatenate": None,
    "Attention": None, "AdditiveAttention": None, "MultiHeadAttention": None,
}


def required(name):
    if name in WRAPPED:
        return WRAPPED[name]()
    if name in REQUIRED:
        return REQUIRED[name]
    if "Conv" in name or "LocallyConnected" in name:
        return {"kernel_size": 3} if "Depthwise" in name else {"filters": 2, "kernel_size": 3}
    if name.endswith(("RNN", "GRU", "LSTM", "Cell")):
        return dict(units=3)
    if name.startswith("SpatialDropout"):
        return dict(rate=0.1)
    return {}


def input_for(name):
    """Shape and dtype a Keras 3 layer of this class can be built on (None: several inputs)."""
    base = name.split("/")[0]
    if base in SPECIAL_INPUTS:
        return SPECIAL_INPUTS[base]
    rank = 3 if "3D" in base else 2 if "2D" in base else 1 if "1D" in base else 0
    if base in ("Bidirectional", "TimeDistributed", "GRU", "LSTM", "SimpleRNN", "RNN",
                "StackedRNNCells", "RepeatVector") or base.endswith("Cell"):
        return [[5, 4], "float32"] if base != "RepeatVector" else [[4], "float32"]
    if base.startswith("ConvLSTM"):
        return [[5] + [6] * rank + [2], "float32"]
    if base.startswith(("Random", "CenterCrop", "Resizing", "Rescaling")) or rank == 2:
        return [[6, 6, 2], "float32"]
    if rank == 3:
        return [[6, 6, 6, 2], "float32"]
    if rank == 1 or base in ("Permute", "Reshape", "Softmax"):
        return [[5, 4], "float32"] if base != "Reshape" else [[4], "float32"]
    return [[4], "float32"]


def layer_configs():
    classes = {}
    for name in sorted(dir(L)):
        klass = getattr(L, name)
        if isinstance(klass, type) and issubclass(klass, L.Layer):
            classes.setdefault(klass.__name__, klass)
    out = {}
    for name, klass in sorted(classes.items()):
        if REQUIRED.get(name, {}) is None:
            continue
        out[name] = {"layer": L.serialize(klass(**required(name))), "input": input_for(name)}
    for key, (klass, kwargs) in VARIANTS.items():
        out[key] = {"layer": L.serialize(klass(**kwargs)), "input": input_for(key)}
    return out


def text_model():
    """A CoDeepNEAT-style text model using the tf.keras 2 arguments Keras 3 dropped."""
    tokens = L.Input((12,), name="tokens")
    x = L.Embedding(50, 8, input_length=12, name="embed")(tokens)
    x = L.SpatialDropout1D(0.2, noise_shape=(None, 1, 8), name="spatial_drop")(x)
    x = L.Conv1D(8, 3, padding="same", activation="relu", name="conv")(x)
    x = L.BatchNormalization(renorm=True, name="bn")(x)
    x = L.LeakyReLU(alpha=0.2, name="leaky")(x)
    x = L.Bidirectional(L.LSTM(6, return_sequences=True, time_major=False), name="bilstm")(x)
    x = L.MultiHeadAttention(2, 4, name="mha")(x, x)
    x = L.GRU(6, implementation=1, name="gru")(x)
    x = L.ThresholdedReLU(theta=0.05, name="thresholded")(x)
    outputs = L.Dense(1, name="head")(x)
    return k2.Model(tokens, outputs, name="keras2_text")


def main():
    configs = layer_configs()
    (HERE / "keras2_layers.json").write_text(json.dumps(configs, indent=1, sort_keys=True) + "\n")
    model = text_model()
    config = json.loads(model.to_json())
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "BatchNormalization":
            layer["config"]["fused"] = False   # written by tf.keras 2.0-2.3 configs
    (HERE / "keras2_text_model.json").write_text(json.dumps(config, indent=1) + "\n")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, size=(4, 12)).astype("int32")
    weights = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    np.savez(HERE / "keras2_text_model.npz", ids=ids, output=model(ids, training=False).numpy(), **weights)
    print(f"{len(configs)} layer configs; text model with {model.count_params()} parameters")


if __name__ == "__main__":
    main()
