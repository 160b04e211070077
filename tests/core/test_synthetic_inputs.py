"""The one synthetic-input builder: the probe, the visualizer and the benchmarks draw the same arrays."""

import keras
import numpy as np
import pytest

from autoinit_nas.core import probe_batch
from autoinit_nas.core.probe_batch import PROBE_STREAM, ProbeUnavailable, synthetic_inputs
from tests.conftest import to_numpy

L = keras.layers


def two_input_model():
    tokens = keras.Input((6,), name="tokens")  # float, as keras-io declares token inputs
    signal = keras.Input((6, 4), name="signal")
    embedded = L.Embedding(30, 4)(keras.ops.cast(tokens, "int32"))
    return keras.Model([tokens, signal], L.Dense(2)(L.Flatten()(L.Add()([embedded, signal]))))


def test_noise_has_the_declared_moments_exactly_only_when_asked():
    x = keras.Input((50, 40))
    model = keras.Model(x, L.Dense(1)(x))
    loose = synthetic_inputs(model, 64, np.random.default_rng(0), [(0.5, 4.0)])[0]
    exact = synthetic_inputs(model, 64, np.random.default_rng(0), [(0.5, 4.0)], exact_moments=True)[0]
    assert loose.shape == exact.shape == (64, 50, 40) and loose.dtype == "float32"
    np.testing.assert_allclose([exact.mean(), exact.var()], [0.5, 4.0], rtol=1e-4, atol=1e-5)
    assert abs(loose.mean() - 0.5) < 0.02 and abs(loose.var() - 4.0) < 0.05
    assert not np.allclose(loose, exact)
    plain = np.random.default_rng(0).standard_normal((64, 50, 40))
    np.testing.assert_array_equal(loose, (plain * 2.0 + 0.5).astype("float32"))


def test_inputs_read_by_an_embedding_get_token_ids_and_the_rest_noise():
    ids, noise = synthetic_inputs(two_input_model(), 16, np.random.default_rng(1))
    assert ids.dtype == "float32" and (ids == ids.round()).all() and 0 <= ids.min() and ids.max() < 30
    assert noise.shape == (16, 6, 4) and (noise != noise.round()).any()


def test_open_dimensions_get_the_unknown_length():
    x = keras.Input((None, 3))
    model = keras.Model(x, L.Dense(2)(x))
    assert synthetic_inputs(model, 4, np.random.default_rng(0))[0].shape == (4, probe_batch.UNKNOWN_LENGTH, 3)


def test_integer_ids_that_reach_no_embedding_are_refused():
    x = keras.Input((4,), dtype="int32", name="ids")
    model = keras.Model(x, L.Dense(3)(keras.ops.cast(x, "float32")))
    with pytest.raises(ProbeUnavailable, match="'ids'.*Embedding"):
        synthetic_inputs(model, 4, np.random.default_rng(0))


def test_the_probe_draws_exact_moments_from_its_own_stream():
    model = two_input_model()
    moments = [(0.0, 1.0), (1.0, 0.25)]
    probe_arrays = [to_numpy(a) for a in probe_batch.probe_inputs(model, moments, 8, seed=5)]
    rng = np.random.default_rng([5, PROBE_STREAM])
    expected = synthetic_inputs(model, 8, rng, moments, exact_moments=True)
    for ours, theirs in zip(probe_arrays, expected):
        np.testing.assert_array_equal(ours, theirs)


def test_the_visualizer_and_the_benchmarks_use_the_builder():
    pytest.importorskip("pandas")
    from autoinit_nas.visualize import noise_batch
    from experiments.benchmarks import fidelity, real_models

    x = keras.Input((7,))
    model = keras.Model(x, L.Dense(3)(x))
    expected = synthetic_inputs(model, 5, np.random.default_rng(9), [(1.0, 2.0)])[0]
    np.testing.assert_array_equal(noise_batch(model, 5, [1.0], [2.0], seed=9)[0], expected)
    standard = synthetic_inputs(model, 5, np.random.default_rng(9))[0]
    np.testing.assert_array_equal(fidelity.make_inputs(model, "dense", 5, 9), standard)
    inputs, labels = real_models.batch_of(model, 5, 9)
    np.testing.assert_array_equal(inputs, standard)
    assert labels.shape == (5,) and set(labels) <= {0, 1, 2}
