"""Activation estimators against Monte Carlo through the real Keras layers.

Inputs are i.i.d. N(mean, var), the regime in which every activation estimate
is exact (closed form or 1e-9 quadrature); the only error left is sampling, so
the tolerance is 4 cluster-robust standard errors (batch rows independent).
Softmax-like functions are themselves estimated by seeded Monte Carlo; the
standard error of that prediction is added in quadrature.
"""

import math

import keras
import numpy as np
import pytest

from tests.estimators.montecarlo import (
    Measured,
    assert_matches,
    estimator_for,
    gaussian,
    predict,
    run_layer,
)

BATCH, WIDTH = 2048, 64

# Names in keras.activations that are not elementwise activations, and why.
NOT_ACTIVATIONS = {"get", "serialize", "deserialize"}  # helpers
NEEDS_ARGUMENTS = {"threshold"}  # threshold(x, threshold, default_value): no default
VECTOR_FUNCTIONS = {"softmax", "log_softmax", "sparsemax"}  # mix the last axis
RESIZING = {"glu"}  # halves the last axis; tested separately

ELEMENTWISE = sorted(
    name
    for name in dir(keras.activations)
    if not name.startswith("_")
    and callable(getattr(keras.activations, name))
    and name not in NOT_ACTIVATIONS | NEEDS_ARGUMENTS | VECTOR_FUNCTIONS | RESIZING
)

# A spread of input moments: centred, shifted right with a wide spread (reaches
# relu6's and hard_sigmoid's upper kinks), shifted left and narrow, very wide.
MOMENTS = [(0.0, 1.0), (0.8, 2.5), (-1.2, 0.4), (1.5, 16.0)]
# e^X has lognormal tails: the sample variance's own standard error is only
# trustworthy for Var X <= 0.5 (its relative error is ~ sqrt(e^(16 v) / n)).
EXPONENTIAL_MOMENTS = [(0.0, 0.25), (-0.5, 0.5), (1.0, 0.1)]


def test_elementwise_list_covers_keras():
    """Guard against the loop silently testing nothing."""
    assert {"relu", "tanh", "gelu", "selu", "exponential", "hard_silu", "sparse_plus"} <= set(
        ELEMENTWISE
    )
    assert len(ELEMENTWISE) >= 25


def _check_activation(rng, name, mean, var):
    layer = keras.layers.Activation(name)
    predicted = predict(layer, [(None, WIDTH)], [mean], [var])
    x = gaussian(rng, (BATCH, WIDTH), mean, var)
    measured = Measured(run_layer(layer, [x]))
    assert_matches(measured, predicted, label=f"{name} on N({mean}, {var})")


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_elementwise_activation(rng, name):
    for mean, var in EXPONENTIAL_MOMENTS if name == "exponential" else MOMENTS:
        _check_activation(rng, name, mean, var)


@pytest.mark.parametrize("name", sorted(VECTOR_FUNCTIONS))
@pytest.mark.parametrize("mean, var, size", [(0.0, 1.0, 10), (1.5, 4.0, 7)])
def test_vector_functions_through_activation_layer(rng, name, mean, var, size):
    """softmax / log_softmax / sparsemax: sampled prediction vs sampled layer."""
    samples = 1_000_000
    layer = keras.layers.Activation(name)
    predicted = predict(layer, [(None, size)], [mean], [var], {"monte_carlo_samples": samples})
    x = gaussian(rng, (40_000 // size * 10, size), mean, var)
    measured = Measured(run_layer(layer, [x]))
    # The estimator pools (samples // size) i.i.d. vectors the same way: its
    # standard error is the measurement's scaled by sqrt(n_measured / n_estimator).
    ratio = math.sqrt(measured.n / (samples // size * size))
    assert_matches(measured, predicted, (measured.se_mean * ratio, measured.se_var * ratio),
                   label=f"{name}[{size}]")
    if name == "softmax":
        assert predicted[0] == pytest.approx(1.0 / size, rel=1e-6)


def test_glu_through_activation_layer(rng):
    """glu(x) = a * sigmoid(b) over the two halves of the last axis: exact."""
    for mean, var in [(0.0, 1.0), (0.7, 2.0), (-1.0, 0.5)]:
        layer = keras.layers.Activation("glu")
        predicted = predict(layer, [(None, 2 * WIDTH)], [mean], [var])
        x = gaussian(rng, (BATCH, 2 * WIDTH), mean, var)
        output = run_layer(layer, [x])
        assert output.shape == (BATCH, WIDTH)
        assert_matches(Measured(output), predicted, label=f"glu N({mean}, {var})")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(max_value=6.0),
        dict(negative_slope=0.1, threshold=0.5),
        dict(max_value=2.0, negative_slope=0.2, threshold=0.25),
        dict(max_value=1.5, negative_slope=0.3, threshold=0.7),
        dict(max_value=3.0, threshold=1.0),
    ],
)
def test_relu_layer_arguments(rng, kwargs):
    for mean, var in MOMENTS:
        layer = keras.layers.ReLU(**kwargs)
        predicted = predict(layer, [(None, WIDTH)], [mean], [var])
        x = gaussian(rng, (BATCH, WIDTH), mean, var)
        assert_matches(Measured(run_layer(layer, [x])), predicted, label=f"ReLU{kwargs} N({mean}, {var})")


@pytest.mark.parametrize("slope", [0.01, 0.3, 1.5])
def test_leaky_relu_layer(rng, slope):
    for mean, var in MOMENTS:
        layer = keras.layers.LeakyReLU(negative_slope=slope)
        predicted = predict(layer, [(None, WIDTH)], [mean], [var])
        x = gaussian(rng, (BATCH, WIDTH), mean, var)
        assert_matches(Measured(run_layer(layer, [x])), predicted, label=f"LeakyReLU({slope})")


@pytest.mark.parametrize(
    "shape, shared_axes", [((None, WIDTH), None), ((None, 8, 16), [1])]
)
def test_prelu_with_non_constant_alpha(rng, shape, shared_axes):
    """Per-element slopes drawn uniformly in [-0.5, 1]: a mixture over slopes, exact."""
    for mean, var in MOMENTS:
        layer = keras.layers.PReLU(
            alpha_initializer=keras.initializers.RandomUniform(-0.5, 1.0, seed=3),
            shared_axes=shared_axes,
        )
        estimator = estimator_for(layer, [shape])
        alpha = keras.ops.convert_to_numpy(layer.alpha)
        assert np.unique(alpha).size > 10  # really non-constant
        predicted = estimator.estimate([mean], [var])
        x = gaussian(rng, (BATCH,) + shape[1:], mean, var)
        assert_matches(Measured(run_layer(layer, [x])), predicted, label=f"PReLU N({mean}, {var})")


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.7])
def test_elu_layer(rng, alpha):
    for mean, var in MOMENTS:
        layer = keras.layers.ELU(alpha=alpha)
        predicted = predict(layer, [(None, WIDTH)], [mean], [var])
        x = gaussian(rng, (BATCH, WIDTH), mean, var)
        assert_matches(Measured(run_layer(layer, [x])), predicted, label=f"ELU({alpha})")


@pytest.mark.parametrize("shape, axis, size", [((None, 10), -1, 10), ((None, 7, 5), 1, 7)])
def test_softmax_layer(rng, shape, axis, size):
    """The Softmax layer samples along its own axis; mean is exactly 1/size."""
    samples = 1_000_000
    mean, var = 0.5, 3.0
    layer = keras.layers.Softmax(axis=axis)
    predicted = predict(layer, [shape], [mean], [var], {"monte_carlo_samples": samples})
    assert predicted[0] == pytest.approx(1.0 / size, rel=1e-6)
    x = gaussian(rng, (40_000 // math.prod(shape[1:]) * 10,) + shape[1:], mean, var)
    measured = Measured(run_layer(layer, [x]))
    ratio = math.sqrt(measured.n / (samples // size * size))
    assert_matches(measured, predicted, (measured.se_mean * ratio, measured.se_var * ratio),
                   label=f"Softmax(axis={axis})")
