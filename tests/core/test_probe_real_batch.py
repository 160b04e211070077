"""The probe on real models: a real batch, bounded memory, token ids, every failure handled.

Tolerances. A batch variance is the mean, over examples, of each example's
mean square about the batch mean; its relative standard error over B
examples is s / sqrt(B), with s the relative standard deviation of the
per-example mean squares, measured on the fresh batches themselves (not
assumed). The probe's estimate and the fresh measurement each carry such an
error; tests allow four combined standard errors (in log units).
"""

import math
import warnings
import weakref

import keras
import numpy as np
import pytest

from autoinit_nas import AutoInit
from autoinit_nas.core import probe
from autoinit_nas.maths.sanitize import AutoInitWarning
from experiments.benchmarks.real_models import timeseries_transformer
from tests.conftest import to_numpy

L = keras.layers


def bn_gap_convnet():
    """BatchNormalization then global average pooling: what the batch size changes most.

    Global pooling after BatchNormalization keeps only the spread of
    per-example channel means, and over B examples that spread is read
    (B - 1) / B of its value: 1/2 at the 2 examples the probe once used.
    """
    inputs = keras.Input((64, 64, 3))
    hidden = L.Conv2D(32, 3, padding="same", use_bias=False)(inputs)
    hidden = L.Activation("relu")(L.BatchNormalization()(hidden))
    hidden = L.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(hidden)
    hidden = L.Activation("relu")(L.BatchNormalization()(hidden))
    hidden = L.GlobalAveragePooling2D(name="pool")(hidden)
    return keras.Model(inputs, L.Dense(64, name="head")(hidden))


def test_batchnorm_and_global_pooling_measured_at_batch_32_match_the_prediction():
    model, estimates = AutoInit(weight_init_config={"seed": 0}).initialize_model(
        bn_gap_convnet(), return_estimates=True
    )
    assert probe.batch_size(model) == 32
    rng = np.random.default_rng(7)
    batches = 8
    variances, spreads = [], []
    for _ in range(batches):
        outputs = to_numpy(model(rng.standard_normal((32, 64, 64, 3)).astype("float32"), training=True))
        squares = ((outputs - outputs.mean()) ** 2).mean(axis=1)  # one mean square per example
        variances.append(squares.mean())
        spreads.append(squares.std() / squares.mean())
    spread = float(np.mean(spreads))
    tolerance = 4.0 * math.hypot(spread / math.sqrt(32), spread / math.sqrt(32 * batches))
    predicted = estimates["head"][1]
    assert predicted == pytest.approx(1.0, rel=1e-3)
    assert abs(math.log(np.mean(variances) / predicted)) <= tolerance, (np.mean(variances), tolerance)


def text_model(dtype="float32", through_cast=False):
    """The keras-io text transformer's front: a float Input of token ids (maxlen 20, vocabulary 300)."""
    inputs = keras.Input((20,), dtype=dtype)
    ids = keras.ops.cast(inputs, "int32") if through_cast else inputs
    sequence = L.Embedding(300, 16, name="tokens")(ids)
    return keras.Model(inputs, L.Dense(8, name="head")(L.GlobalAveragePooling1D()(sequence)))


@pytest.mark.parametrize("dtype, through_cast", [("float32", False), ("float32", True), ("int32", True)])
def test_an_embedding_behind_a_float_input_receives_token_ids(dtype, through_cast):
    model = text_model(dtype, through_cast)
    assert probe.embedding_vocabularies(model, model.inputs[0]) == [300]
    ids = to_numpy(probe.probe_inputs(model, [(0.0, 1.0)], 32, seed=0)[0])
    assert ids.min() >= 0 and ids.max() <= 299 and np.array_equal(ids, np.round(ids))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autoinit = AutoInit(weight_init_config={"seed": 0})
        _, estimates = autoinit.initialize_model(model, return_estimates=True)
    assert autoinit.propagation_used == "probe"
    assert not [w for w in caught if getattr(w.message, "cause", None) == "probe_unavailable"]
    # Uniform ids over 0..299: mean 149.5, variance (300^2 - 1) / 12 = 7500, read
    # from 640 ids (standard errors 3.4 and 180).
    mean, var = estimates[model.layers[0].name]
    assert abs(mean - 149.5) <= 4 * math.sqrt(7500 / 640)
    assert abs(var - 7499.9) <= 4 * 7500 * math.sqrt(0.8 / 640)  # kurtosis 1.8: Var(x^2) = 0.8 var^2


class TokenAndPosition(L.Layer):
    """The keras-io custom layer: token and position embeddings, summed."""

    def __init__(self, maxlen, vocabulary, width, **kwargs):
        super().__init__(**kwargs)
        self.tokens = L.Embedding(vocabulary, width)
        self.positions = L.Embedding(maxlen, width)

    def call(self, x):
        positions = keras.ops.arange(0, keras.ops.shape(x)[-1], 1)
        return self.tokens(x) + self.positions(positions)


def test_a_custom_layer_owning_embeddings_receives_its_token_embeddings_ids():
    """Opened, the layer shows which Embedding reads the input: the token
    embedding, not the position embedding fed by ``ops.arange``; so the ids
    span the vocabulary (640 uniform draws over 300 reach beyond 280 but
    for a chance of (280/300)^640 < 1e-19), not the 20 positions.
    """
    inputs = keras.Input((20,))  # float, as keras-io declares it
    sequence = TokenAndPosition(20, 300, 16, name="embed")(inputs)
    model = keras.Model(inputs, L.Dense(8)(L.GlobalAveragePooling1D()(sequence)))
    assert probe.embedding_vocabularies(model, model.inputs[0]) == [300]
    ids = to_numpy(probe.probe_inputs(model, [(0.0, 1.0)], 32, seed=0)[0])
    assert ids.min() >= 0 and 280 <= ids.max() <= 299 and np.array_equal(ids, np.round(ids))


def test_a_custom_layer_left_whole_assumes_all_its_embeddings_read_the_input():
    """When the walk does not open the layer (``expand`` says no), its
    Embeddings are all assumed to read the input: the smallest vocabulary
    keeps every id valid."""
    inputs = keras.Input((20,))
    sequence = TokenAndPosition(20, 300, 16, name="embed")(inputs)
    model = keras.Model(inputs, L.Dense(8)(L.GlobalAveragePooling1D()(sequence)))
    vocabularies = probe.embedding_vocabularies(model, model.inputs[0], expand=lambda layer: False)
    assert sorted(vocabularies) == [20, 300]


def glu_then_rnn():
    """A model Keras builds but cannot run: glu halves the last axis while declaring it unchanged."""
    inputs = keras.Input((10, 8))
    hidden = L.Activation("glu", name="glu")(inputs)
    return keras.Model(inputs, L.SimpleRNN(4, name="rnn")(hidden))


def fallback_warnings(model):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autoinit = AutoInit(weight_init_config={"seed": 0})
        autoinit.initialize_model(model)
    assert autoinit.propagation_used == "scalar"
    return [
        w.message for w in caught
        if isinstance(w.message, AutoInitWarning) and w.message.cause == "probe_unavailable"
    ]


def test_a_layer_that_breaks_its_declared_shape_falls_back_naming_it():
    messages = fallback_warnings(glu_then_rnn())
    assert len(messages) == 1
    assert "layer 'glu' (Activation) returned shape" in str(messages[0])


def test_a_failing_numpy_cell_runner_falls_back_naming_its_layer(monkeypatch):
    # Without the shape check, the recurrent layer's numpy runner meets the
    # halved input itself: its numpy error must still become the fallback.
    monkeypatch.setattr(probe, "_check_shapes", lambda node, key, outputs: None)
    messages = fallback_warnings(glu_then_rnn())
    assert len(messages) == 1
    assert "layer 'rnn' (SimpleRNN) failed on the probe batch" in str(messages[0])


def test_after_a_fallback_the_unsupported_layer_warning_says_what_happened():
    inputs = keras.Input((4,), dtype="int32")  # ids that reach no Embedding: the probe gives up
    model = keras.Model(inputs, L.Dense(3)(keras.ops.cast(inputs, "float32")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AutoInit(weight_init_config={"seed": 0}).initialize_model(model)
    unsupported = [str(w.message) for w in caught if getattr(w.message, "cause", None) == "unsupported"]
    assert len(unsupported) == 1
    assert "pass through unchanged" in unsupported[0] and "probe" not in unsupported[0]


def test_the_time_series_transformer_holds_less_than_a_forward_pass(monkeypatch):
    """Memory by design: the probe keeps only the tensors later layers still read.

    A Keras forward pass keeps every layer's output until it ends; the probe
    releases each one after its last reader, so on 4 residual blocks it holds
    about one block's tensors, not four. Counted in bytes of live probe
    tensors at the probe's own batch.
    """
    live = weakref.WeakSet()
    peak = [0]

    class Tracked(probe.ProbeValue):
        __slots__ = ("__weakref__",)

        def __init__(self, value, moments=None):
            super().__init__(value, moments)
            live.add(self)
            held = sum(4 * math.prod(keras.ops.shape(p.value)) for p in live if p.value is not None)
            peak[0] = max(peak[0], held)

    monkeypatch.setattr(probe, "ProbeValue", Tracked)
    model = timeseries_transformer(dict(length=64))  # the benchmark's keras-io model, shorter
    AutoInit(weight_init_config={"seed": 0}).initialize_model(model)
    batch = probe.batch_size(model)
    assert batch == 32  # sized from the (4, 64, 64) attention scores, not the (64, 1) outputs
    forward = 0
    for layer in model.layers[1:]:
        for node in layer._inbound_nodes:
            forward += sum(4 * batch * math.prod(t.shape[1:]) for t in node.outputs)
    assert peak[0] <= forward / 3, (peak[0], forward)


def test_nothing_emits_deprecation_or_foreign_warnings():
    tokens = keras.Input((12,), dtype="int32")
    x = L.Embedding(50, 16)(tokens)
    x = L.MultiHeadAttention(2, 8)(x, x)
    x = L.LayerNormalization()(x)
    x = L.LSTM(8, return_sequences=True)(L.SimpleRNN(8, return_sequences=True)(x))
    x = L.Bidirectional(L.GRU(4, return_sequences=True))(x)
    x = L.Attention(use_scale=True)([x, x])
    x = L.AdditiveAttention()([x, x])
    x = L.PReLU()(L.GroupNormalization(2)(x))
    x = L.UnitNormalization()(L.BatchNormalization()(x))
    x = L.Normalization(mean=0.5, variance=2.0)(L.GlobalAveragePooling1D()(x))
    for propagation in ("probe", "scalar"):
        model = keras.Model(tokens, L.Dense(4)(x))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            AutoInit(weight_init_config={"seed": 0}, propagation=propagation).initialize_model(model)
        foreign = [f"{w.category.__name__} at {w.filename}:{w.lineno}: {w.message}" for w in caught
                   if not isinstance(w.message, AutoInitWarning)]
        assert foreign == [], foreign[:3]


def test_a_large_weight_redrawn_for_its_rescale_is_what_its_initializer_draws():
    """Above KEEP_UNIT_ELEMENTS the unit draw is redrawn, not kept: the same values either way."""
    inputs = keras.Input((2048,))
    model = keras.Model(inputs, L.Dense(8)(L.Dense(2049, activation="relu", name="wide")(inputs)))
    assert 2048 * 2049 > probe.KEEP_UNIT_ELEMENTS
    AutoInit(weight_init_config={"seed": 3}).initialize_model(model)
    clone = keras.models.clone_model(model)
    for ours, theirs in zip(model.weights, clone.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
