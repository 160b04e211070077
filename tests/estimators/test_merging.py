"""Merge estimators against Monte Carlo through the real Keras layers.

Each input is an independent i.i.d. N(m_i, v_i) tensor, the regime in which
every merge rule is exact, so the tolerance is 4 standard errors (batch rows
independent). ``test_add_correlated_branches_model_error`` documents the
independence approximation the Add docstring states.
"""

import math

import keras
import numpy as np
import pytest

from autoinit_nas.maths import gaussian
from autoinit_nas.estimators.layers import WeightedSum
from tests.estimators.montecarlo import Measured, assert_matches, gaussian as draw, predict, run_layer

BATCH = 4096
MOMENTS = [(0.5, 1.0), (-1.2, 0.3), (2.0, 2.5)]


def check(rng, layer, shapes, moments, label):
    means = [m for m, _ in moments]
    variances = [v for _, v in moments]
    predicted = predict(layer, shapes, means, variances)
    arrays = [draw(rng, (BATCH,) + tuple(shape[1:]), m, v) for shape, (m, v) in zip(shapes, moments)]
    measured = Measured(run_layer(layer, arrays))
    assert_matches(measured, predicted, label=label)
    return predicted


@pytest.mark.parametrize("count", [2, 3])
def test_add(rng, count):
    moments = MOMENTS[:count]
    predicted = check(rng, keras.layers.Add(), [(None, 32)] * count, moments, "Add")
    assert predicted == pytest.approx((sum(m for m, _ in moments), sum(v for _, v in moments)))


def test_subtract(rng):
    predicted = check(rng, keras.layers.Subtract(), [(None, 32)] * 2, MOMENTS[:2], "Subtract")
    assert predicted == pytest.approx((1.7, 1.3))


@pytest.mark.parametrize("count", [2, 3])
def test_average(rng, count):
    check(rng, keras.layers.Average(), [(None, 32)] * count, MOMENTS[:count], "Average")


@pytest.mark.parametrize("count", [2, 3])
def test_multiply(rng, count):
    """E = prod m_i, E[y^2] = prod E[x_i^2] for independent factors."""
    check(rng, keras.layers.Multiply(), [(None, 32)] * count, MOMENTS[:count], "Multiply")


def test_multiply_zero_mean_factors(rng):
    check(rng, keras.layers.Multiply(), [(None, 32)] * 2, [(0.0, 1.0), (0.0, 2.0)], "Multiply0")


@pytest.mark.parametrize(
    "shapes, axis",
    [
        ([(None, 3), (None, 13), (None, 8)], -1),
        ([(None, 2, 5), (None, 7, 5), (None, 1, 5)], 1),
        ([(None, 4, 1), (None, 4, 9)], 2),
    ],
)
def test_concatenate_unequal_sizes(rng, shapes, axis):
    """A mixture weighted by each input's share of the concatenation axis."""
    predicted = check(rng, keras.layers.Concatenate(axis=axis), shapes, MOMENTS[: len(shapes)],
                      f"Concatenate axis={axis}")
    sizes = np.asarray([shape[axis] for shape in shapes], dtype=float)
    weights = sizes / sizes.sum()
    first = sum(w * m for w, (m, _) in zip(weights, MOMENTS))
    second = sum(w * gaussian.second_moment(m, v) for w, (m, v) in zip(weights, MOMENTS))
    assert predicted == pytest.approx((first, second - first**2))


@pytest.mark.parametrize("coefficients", [[0.6, 0.8], [1.5, -0.5, 0.25]])
def test_weighted_sum(rng, coefficients):
    moments = MOMENTS[: len(coefficients)]
    predicted = check(rng, WeightedSum(coefficients), [(None, 32)] * len(coefficients), moments,
                      "WeightedSum")
    assert predicted == pytest.approx((
        sum(c * m for c, (m, _) in zip(coefficients, moments)),
        sum(c * c * v for c, (_, v) in zip(coefficients, moments)),
    ))


def test_add_correlated_branches_model_error(rng):
    """Documents the independence assumption: Add()([x, relu(x)]).

    Var(x + relu(x)) = Var(x) + Var(relu(x)) + 2 Cov(x, relu(x)), and for
    x ~ N(0, v), Cov(x, relu(x)) = E[x^2 1{x>0}] - 0 = v / 2. The estimator
    drops the covariance: model_error = 2 Cov = v (here 100% of Var(x), a
    60% under-prediction of the sum); the mean is unaffected.
    """
    var = 1.0
    x_in = keras.Input((32,))
    relu = keras.layers.ReLU()
    add = keras.layers.Add()
    model = keras.Model(x_in, add([x_in, relu(x_in)]))
    relu_moments = predict(keras.layers.ReLU(), [(None, 32)], [0.0], [var])
    predicted = predict(keras.layers.Add(), [(None, 32)] * 2, [0.0, relu_moments[0]],
                        [var, relu_moments[1]])
    measured = Measured(run_layer(model, [draw(rng, (BATCH, 32), 0.0, var)]))
    # The estimator sums the variances as if independent (closed forms), and
    # the measurement is that sum plus exactly the covariance term.
    relu_var = var * (0.5 - 1.0 / (2.0 * math.pi))
    assert predicted == pytest.approx((relu_moments[0], var + relu_var), rel=1e-9)
    assert_matches(measured, (predicted[0], predicted[1] + var), label="Add correlated, with covariance")
