"""Pooling estimators against Monte Carlo through the real Keras layers.

The input is i.i.d. N(mean, var), the regime in which the max-of-k-normals
and average-of-k rules are exact (including "same" padding, whose border
windows the estimator counts exactly, and overlapping windows, which
correlate neighbouring outputs but not each output's law). Batch rows are the
independent clusters; tolerance 4 SE.
"""

import keras
import pytest

from autoinit_nas.maths import gaussian as maths
from tests.estimators.montecarlo import Measured, assert_matches, gaussian, predict, run_layer

L = keras.layers
MOMENTS = [(0.0, 1.0), (1.5, 0.4)]

LOCAL_CASES = [
    (L.MaxPooling1D, dict(pool_size=3), (None, 30, 8), 2048),
    (L.MaxPooling1D, dict(pool_size=4, strides=2, padding="same"), (None, 13, 8), 2048),
    (L.MaxPooling2D, dict(pool_size=2), (None, 8, 8, 8), 1024),
    (L.MaxPooling2D, dict(pool_size=(3, 2), padding="same"), (None, 7, 5, 8), 1024),
    (L.MaxPooling2D, dict(pool_size=3, strides=1), (None, 6, 6, 8), 1024),
    (L.MaxPooling3D, dict(pool_size=2), (None, 4, 4, 4, 8), 1024),
    (L.MaxPooling3D, dict(pool_size=(2, 3, 2), padding="same"), (None, 3, 4, 5, 4), 1024),
    (L.AveragePooling1D, dict(pool_size=3), (None, 30, 8), 2048),
    (L.AveragePooling1D, dict(pool_size=4, strides=2, padding="same"), (None, 13, 8), 2048),
    (L.AveragePooling2D, dict(pool_size=2), (None, 8, 8, 8), 1024),
    (L.AveragePooling2D, dict(pool_size=(3, 2), padding="same"), (None, 7, 5, 8), 1024),
    (L.AveragePooling2D, dict(pool_size=3, strides=1), (None, 6, 6, 8), 1024),
    (L.AveragePooling3D, dict(pool_size=2), (None, 4, 4, 4, 8), 1024),
    (L.AveragePooling3D, dict(pool_size=(2, 3, 2), padding="same"), (None, 3, 4, 5, 4), 1024),
]


@pytest.mark.parametrize(
    "cls, kwargs, shape, batch", LOCAL_CASES,
    ids=[f"{c.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for c, kw, _, _ in LOCAL_CASES],
)
def test_local_pooling(rng, cls, kwargs, shape, batch):
    for mean, var in MOMENTS:
        layer = cls(**kwargs)
        predicted = predict(layer, [shape], [mean], [var])
        measured = Measured(run_layer(layer, [gaussian(rng, (batch,) + shape[1:], mean, var)]))
        assert_matches(measured, predicted, label=f"{cls.__name__}{kwargs} N({mean}, {var})")


def test_valid_max_pool_is_max_of_k():
    predicted = predict(L.MaxPooling2D((3, 3)), [(None, 9, 9, 2)], [0.5], [2.0])
    assert predicted == pytest.approx(maths.max_of_normals_moments(0.5, 2.0, 9))


GLOBAL_CASES = [
    (L.GlobalMaxPooling1D, {}, (None, 50, 8), 2048),
    (L.GlobalMaxPooling2D, {}, (None, 6, 7, 8), 2048),
    (L.GlobalMaxPooling3D, {}, (None, 3, 4, 5, 8), 2048),
    (L.GlobalAveragePooling1D, {}, (None, 50, 8), 2048),
    (L.GlobalAveragePooling2D, {}, (None, 6, 7, 8), 2048),
    (L.GlobalAveragePooling3D, {}, (None, 3, 4, 5, 8), 2048),
    (L.GlobalAveragePooling2D, dict(data_format="channels_first"), (None, 3, 10, 12), 2048),
    (L.GlobalMaxPooling1D, dict(data_format="channels_first"), (None, 4, 30), 2048),
    (L.GlobalAveragePooling1D, dict(keepdims=True), (None, 20, 8), 2048),
]


@pytest.mark.parametrize(
    "cls, kwargs, shape, batch", GLOBAL_CASES,
    ids=[f"{c.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for c, kw, _, _ in GLOBAL_CASES],
)
def test_global_pooling(rng, cls, kwargs, shape, batch):
    for mean, var in MOMENTS:
        layer = cls(**kwargs)
        predicted = predict(layer, [shape], [mean], [var])
        measured = Measured(run_layer(layer, [gaussian(rng, (batch,) + shape[1:], mean, var)]))
        assert_matches(measured, predicted, label=f"{cls.__name__}{kwargs} N({mean}, {var})")
