"""Reshaping estimators against Monte Carlo through the real Keras layers.

Moving, copying and cropping elements leaves a typical element's law alone;
zero padding mixes in a known fraction of zeros. With i.i.d. N(mean, var)
input every rule is exact; duplicated elements (upsampling, RepeatVector)
are correlated within a batch row, which the row-cluster standard error
accounts for. Tolerance 4 SE. ``test_bilinear_upsampling_model_error``
documents the pass-through approximation for interpolating upsampling.
"""

import keras
import numpy as np
import pytest

from tests.estimators.montecarlo import (
    Measured,
    assert_documented_model_error,
    assert_matches,
    gaussian,
    predict,
    run_layer,
    to_numpy,
)

L = keras.layers
MOMENTS = [(0.0, 1.0), (1.3, 0.5)]

CASES = [
    (lambda: L.Flatten(), (None, 4, 5, 3)),
    (lambda: L.Reshape((15, 4)), (None, 6, 10)),
    (lambda: L.Permute((2, 1, 3)), (None, 4, 5, 3)),
    (lambda: L.Cropping1D((2, 5)), (None, 20, 4)),
    (lambda: L.Cropping2D(((1, 2), (3, 0))), (None, 8, 9, 4)),
    (lambda: L.Cropping3D(((1, 0), (0, 2), (1, 1))), (None, 4, 5, 6, 2)),
    (lambda: L.UpSampling1D(3), (None, 10, 4)),
    (lambda: L.UpSampling2D((2, 3)), (None, 5, 4, 4)),
    (lambda: L.UpSampling3D((2, 1, 2)), (None, 3, 4, 3, 2)),
    (lambda: L.RepeatVector(7), (None, 12)),
    (lambda: L.ZeroPadding1D((2, 5)), (None, 10, 4)),
    (lambda: L.ZeroPadding2D(((1, 2), (0, 3))), (None, 6, 5, 4)),
    (lambda: L.ZeroPadding3D((1, 2, 0)), (None, 3, 4, 5, 2)),
]


@pytest.mark.parametrize("factory, shape", CASES, ids=[f().__class__.__name__ + str(i) for i, (f, _) in enumerate(CASES)])
def test_reshaping_layers(rng, factory, shape):
    for mean, var in MOMENTS:
        layer = factory()
        predicted = predict(layer, [shape], [mean], [var])
        measured = Measured(run_layer(layer, [gaussian(rng, (2048,) + shape[1:], mean, var)]))
        assert_matches(measured, predicted, label=f"{layer.__class__.__name__} N({mean}, {var})")


def test_zero_padding_fraction():
    # 6x5 -> 9x8: a fraction 30 / 72 of the output is the input.
    mean, var = predict(L.ZeroPadding2D(((1, 2), (0, 3))), [(None, 6, 5, 4)], [1.3], [0.5])
    fraction = 30 / 72
    assert mean == pytest.approx(fraction * 1.3)
    assert var == pytest.approx(fraction * (0.5 + 1.69) - (fraction * 1.3) ** 2)


def test_bilinear_upsampling_model_error(rng):
    """Documents the pass-through approximation for UpSampling2D(bilinear).

    Each output is a fixed linear combination a_p . x of its neighbours with
    weights summing to one, so E[y_p] = m exactly and Var(y_p) = v |a_p|^2:
    interpolated pixels average out. The reference measures |a_p|^2 through
    Keras itself (the layer applied to every unit impulse); the estimator
    passes v through, missing by -v (1 - mean_p |a_p|^2): -53% of the
    variance for a factor-2 upsampling of a 6x6 map.
    """
    shape, mean, var = (None, 6, 6, 1), 1.3, 0.5
    layer = L.UpSampling2D(2, interpolation="bilinear")
    predicted = predict(layer, [shape], [mean], [var])
    impulses = np.eye(36, dtype="float32").reshape(36, 6, 6, 1)
    weights = to_numpy(layer(impulses))  # [impulse, out_row, out_col, 1]
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, rtol=1e-5)
    reference = (mean, var * float(np.mean(np.sum(weights**2, axis=0))))
    measured = Measured(run_layer(layer, [gaussian(rng, (8192,) + shape[1:], mean, var)]))
    assert_documented_model_error(measured, predicted, reference, (0.0, -0.53 * var), (1e-6, 0.005 * var),
                                  label="bilinear")
