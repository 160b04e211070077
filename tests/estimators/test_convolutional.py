"""Convolution estimators against Monte Carlo through real, AutoInit-initialized layers.

One model per weight seed, AutoInit draws the kernel, the layer runs on fresh
i.i.d. N(mean, var) inputs. Output channels own their weights and batch rows
own their inputs, so the standard error is two-way cluster-robust over
(seed, row) and (seed, channel); spatial positions share both and are summed
inside the clusters.

Exactness: the linear output has E[y_p^2] = (valid taps at p) * s * E[x^2]
exactly in expectation over the weights, whatever the padding, stride,
dilation or grouping, so linear layers are checked in every such setting.
Behind a nonlinearity the estimate applies f to N(0, 1), which is exact only
as fan_in grows (see ``test_core``) and when every window is full; those
checks use padding="valid" and fan_in >= 288, where the O(1/fan_in) bias is
below 0.2% of the variance. ``test_same_padding_activation_model_error``
measures the border approximation.
"""


import keras
import numpy as np
import pytest

from autoinit_nas.estimators.activations import activation_moments
from autoinit_nas.maths import gaussian
from tests.estimators.montecarlo import (
    SEED_ROWS_UNITS,
    Measured,
    assert_documented_model_error,
    assert_matches,
    initialized_outputs,
    to_numpy,
)

SEEDS = range(4)


def builder(layer_factory, input_shape):
    def build():
        x = keras.Input(input_shape[1:])
        layer = layer_factory()
        return keras.Model(x, layer(x)), layer.name

    return build


def measure(layer_factory, input_shape, mean, var, rng, batch, seeds=SEEDS, **autoinit_kwargs):
    outputs, predictions = initialized_outputs(
        builder(layer_factory, input_shape), input_shape, mean, var, seeds, rng, batch,
        **autoinit_kwargs,
    )
    return Measured(outputs, SEED_ROWS_UNITS), predictions[0]


L = keras.layers

def linear_case(name, units):
    """(layer factory, input shape) of case ``name`` with ``units`` output channels."""
    half = units // 2
    return {
        "conv1d_valid": (lambda: L.Conv1D(units, 5), (None, 40, 16)),
        "conv1d_same_strided": (lambda: L.Conv1D(units, 5, strides=2, padding="same"), (None, 21, 16)),
        "conv1d_causal_dilated": (
            lambda: L.Conv1D(units, 3, padding="causal", dilation_rate=3), (None, 20, 16)),
        "conv2d_valid": (lambda: L.Conv2D(units, 3), (None, 10, 10, 8)),
        "conv2d_valid_strided": (lambda: L.Conv2D(units, 3, strides=(2, 1)), (None, 11, 9, 8)),
        "conv2d_valid_dilated": (lambda: L.Conv2D(units, 3, dilation_rate=(1, 2)), (None, 9, 11, 8)),
        "conv2d_same": (lambda: L.Conv2D(units, 3, padding="same"), (None, 6, 7, 8)),
        "conv2d_groups": (lambda: L.Conv2D(units, 3, groups=4), (None, 10, 10, 8)),
        "conv3d_valid": (lambda: L.Conv3D(units, 3), (None, 6, 6, 6, 4)),
        "conv3d_same": (lambda: L.Conv3D(units, (3, 2, 3), padding="same"), (None, 4, 5, 3, 4)),
        "depthwise1d_valid": (lambda: L.DepthwiseConv1D(5, depth_multiplier=2), (None, 40, half)),
        "depthwise1d_same": (
            lambda: L.DepthwiseConv1D(5, padding="same", depth_multiplier=2), (None, 12, half)),
        "depthwise2d_valid": (lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (None, 10, 10, half)),
        "depthwise2d_same_strided": (
            lambda: L.DepthwiseConv2D(3, strides=2, padding="same"), (None, 9, 8, units)),
    }[name]


LINEAR_CASES = [
    "conv1d_valid", "conv1d_same_strided", "conv1d_causal_dilated", "conv2d_valid",
    "conv2d_valid_strided", "conv2d_valid_dilated", "conv2d_same", "conv2d_groups",
    "conv3d_valid", "conv3d_same", "depthwise1d_valid", "depthwise1d_same",
    "depthwise2d_valid", "depthwise2d_same_strided",
]


@pytest.mark.parametrize("case", LINEAR_CASES)
def test_linear_convolution_is_exact(rng, case):
    factory, shape = linear_case(case, 64)
    measured, predicted = measure(factory, shape, 0.0, 1.0, rng, 16)
    assert predicted == pytest.approx((0.0, 1.0))
    assert_matches(measured, predicted, label=case)


@pytest.mark.parametrize("case", LINEAR_CASES)
def test_linear_convolution_with_input_mean(rng, case):
    """Input N(0.8, 0.6): half the output variance is the per-channel offset
    0.8 * sum(W) shared by every position and row, and the row's realized
    input mean enters through the cross term 2 m sum_j S_j (W_j . noise).
    Many channels (1024 per seed) and 64 rows balance the two: ~1.2% SE."""
    factory, shape = linear_case(case, 1024)
    measured, predicted = measure(factory, shape, 0.8, 0.6, rng, 8, seeds=range(8))
    assert predicted == pytest.approx((0.0, 1.0))
    assert_matches(measured, predicted, label=f"{case} with mean")


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "sigmoid"])
@pytest.mark.parametrize(
    "factory, shape, batch",
    [
        (lambda a: L.Conv1D(64, 9, activation=a), (None, 24, 32), 32),
        (lambda a: L.Conv2D(64, 3, activation=a), (None, 8, 8, 32), 16),
        (lambda a: L.Conv3D(32, 2, activation=a), (None, 4, 4, 4, 48), 32),
    ],
    ids=["conv1d", "conv2d", "conv3d"],
)
def test_convolution_with_activation(rng, activation, factory, shape, batch):
    measured, predicted = measure(lambda: factory(activation), shape, 0.5, 0.8, rng, batch)
    assert predicted == pytest.approx(activation_moments(activation, 0.0, 1.0))
    assert_matches(measured, predicted, label=activation)


def test_constrained_conv_weights_cancel_the_input_mean(rng):
    """constrain_weights centres each filter's whole fan-in (CenteredUnitNorm):
    the input mean cancels exactly and Var(y) = fan_in * s * Var(x)."""
    measured, predicted = measure(
        lambda: L.Conv2D(64, 3), (None, 8, 8, 16), 1.0, 0.5, rng, 32,
        weight_init_config={"constrain_weights": True},
    )
    assert predicted == pytest.approx((0.0, 1.0))
    assert_matches(measured, predicted, label="constrained conv")


def test_constrained_depthwise_weights_keep_part_of_the_mean(rng):
    """A depthwise kernel (taps, channels, multiplier) is centred per multiplier
    over its N = taps * channels entries, not per output channel. The entries
    are exchangeable with E[W_i W_j] = -s / (N - 1), so one output channel's
    offset 1.0 * sum(taps) has variance taps * s * (N - taps) / (N - 1): with
    3 taps and 8 channels the mean term is 0.913 of m^2 (a 6% effect on the
    variance, against a 0.75% standard error). Channels of one multiplier are
    correlated (their sums cancel), so the clusters are multiplier blocks."""
    channels, multiplier, seeds, shape = 8, 256, range(8), (None, 120, 8)
    outputs, predictions = initialized_outputs(
        builder(lambda: L.DepthwiseConv1D(3, depth_multiplier=multiplier), shape),
        shape, 1.0, 0.5, seeds, rng, 8,
        weight_init_config={"constrain_weights": True},
    )
    blocks = outputs.reshape(outputs.shape[:-1] + (channels, multiplier))
    measured = Measured(blocks, SEED_ROWS_UNITS)
    assert predictions[0] == pytest.approx((0.0, 1.0))
    assert_matches(measured, predictions[0], label="constrained depthwise")


def _valid_tap_counts(layer, input_shape):
    """Real-input taps of every output position, measured with Keras itself:
    a copy of the layer with an all-ones kernel on an all-ones input."""
    probe = layer.__class__.from_config({**layer.get_config(), "use_bias": False,
                                          "activation": None, "name": None})
    ones = np.ones((1,) + tuple(input_shape[1:]), dtype="float32")
    probe.build(ones.shape)
    probe.set_weights([np.ones_like(w) for w in probe.get_weights()])
    return to_numpy(probe(ones))[0, ..., 0].ravel()


# Documented model error, reference - predicted, relative to the prediction:
# (mean, variance), to the digits the docstring states.
SAME_PADDING_ERROR = {"tanh": (0.0, -0.016), "relu": (-0.009, 0.009)}


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_same_padding_activation_model_error(rng, activation):
    """Documents the border approximation of "same" padding behind an activation.

    Position p sums a share f_p of the taps, so its pre-activation is
    N(0, f_p / mean(f)) after AutoInit's (exact) average correction; the
    estimator applies the activation to N(0, 1). The reference mixes the
    activation's moments over the f_p that Keras itself produces (an all-ones
    probe). On a 5x5 map with a 3x3 kernel (64% of positions on the border)
    the prediction misses it by -1.6% of the variance for tanh, and by -0.9%
    of the mean and +0.9% of the variance for relu; it vanishes as the map
    grows.
    """
    shape = (None, 5, 5, 32)
    factory = lambda: L.Conv2D(64, 3, padding="same", activation=activation)  # noqa: E731
    measured, predicted = measure(factory, shape, 0.0, 1.0, rng, 64, seeds=range(6))
    taps = _valid_tap_counts(factory(), shape)
    scales = taps / taps.mean()
    first = second = 0.0
    for scale in scales:
        m, v = activation_moments(activation, 0.0, float(scale))
        first += m / scales.size
        second += gaussian.second_moment(m, v) / scales.size
    reference = (first, second - first * first)
    relative_mean, relative_var = SAME_PADDING_ERROR[activation]
    model_error = assert_documented_model_error(
        measured, predicted, reference,
        (relative_mean * abs(predicted[0]), relative_var * predicted[1]),
        (0.0005 * abs(predicted[0]) + 1e-12, 0.0005 * predicted[1]), label=f"same padding {activation}",
    )
    assert max(abs(e) for e in model_error) > 1e-3
