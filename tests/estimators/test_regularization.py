"""Dropout estimators against Monte Carlo through the real Keras layers (training=True).

Inverted dropout keeps E[y] = E[x] and makes E[y^2] = E[x^2] / (1 - p); the
input mean matters (v / (1 - p) is right only at m = 0), so every case uses a
non-zero mean. Inputs are i.i.d. Gaussian, the masks independent across batch
rows (spatial dropout shares one within a row's channel, which the row-level
cluster standard error accounts for); the rule is exact, tolerance 4 SE.
"""

import keras
import pytest

from tests.estimators.montecarlo import Measured, assert_matches, gaussian, predict, run_layer

L = keras.layers


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.8])
@pytest.mark.parametrize(
    "factory, shape, batch",
    [
        (lambda rate: L.Dropout(rate, seed=1), (None, 64), 4096),
        (lambda rate: L.Dropout(rate, noise_shape=(None, 1, 8), seed=2), (None, 6, 8), 4096),
        (lambda rate: L.SpatialDropout1D(rate, seed=3), (None, 20, 16), 2048),
        (lambda rate: L.SpatialDropout2D(rate, seed=4), (None, 6, 6, 16), 1024),
        (lambda rate: L.SpatialDropout3D(rate, seed=5), (None, 3, 4, 3, 16), 1024),
    ],
    ids=["dropout", "dropout_noise_shape", "spatial1d", "spatial2d", "spatial3d"],
)
def test_dropout_training_mode(rng, rate, factory, shape, batch):
    for mean, var in [(0.8, 0.5), (-2.0, 1.5)]:
        layer = factory(rate)
        predicted = predict(layer, [shape], [mean], [var])
        assert predicted[0] == pytest.approx(mean)
        assert predicted[1] == pytest.approx((var + mean**2) / (1 - rate) - mean**2)
        measured = Measured(run_layer(layer, [gaussian(rng, (batch,) + shape[1:], mean, var)]))
        assert_matches(measured, predicted, label=f"{layer.__class__.__name__}({rate}) N({mean}, {var})")
