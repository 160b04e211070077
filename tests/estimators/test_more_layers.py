"""Layers beyond the original library's set, against Monte Carlo through Keras.

Inputs are i.i.d. Gaussian with the given moments, so the estimates are
exact except where the estimator's docstring names an approximation (Clark's
pairwise folding for three or more inputs of Maximum; the large-K mean of
UnitNormalization and normalized Dot), which are given an explicit model
error term here. Tolerance: 4 standard errors of the measurement, computed
from per-sample summaries (independent across the batch) so that elements
sharing a sample or a unit are not over-counted.
"""

import math

import keras
import numpy as np
import pytest

from autoinit_nas import AutoInit
from tests.conftest import to_numpy

BATCH = 4000
WEIGHTED_BATCH = 500
MEAN, VAR = 0.4, 1.7


def check(model, inputs, name, model_error=0.0, seed=0, weighted=False):
    model, estimates = AutoInit(propagation="scalar", weight_init_config={"seed": seed}, input_data_mean=MEAN,
                                input_data_var=VAR).initialize_model(model, return_estimates=True)
    values = to_numpy(model(inputs, training=True)).reshape(BATCH, -1)
    mean_pred, var_pred = estimates[name]
    centred = (values - values.mean()) ** 2
    # Independent samples; for weighted layers also independent units (their
    # weights are separate draws), whichever spread is larger.
    mean_se = max(values.mean(axis=1).std() / math.sqrt(BATCH),
                  values.mean(axis=0).std() / math.sqrt(values.shape[1]) if weighted else 0.0)
    var_se = max(centred.mean(axis=1).std() / math.sqrt(BATCH),
                 centred.mean(axis=0).std() / math.sqrt(values.shape[1]) if weighted else 0.0)
    assert abs(values.mean() - mean_pred) <= 4 * mean_se + model_error * math.sqrt(var_pred), (
        name, values.mean(), mean_pred)
    assert abs(values.var() - var_pred) <= 4 * var_se + model_error * var_pred, (name, values.var(), var_pred)


def gaussian_batch(shape, seed=0, batch=BATCH):
    rng = np.random.default_rng(seed)
    return (MEAN + math.sqrt(VAR) * rng.standard_normal((batch,) + shape)).astype("float32")


@pytest.mark.parametrize("layer", [
    keras.layers.GaussianNoise(0.7, name="probe"),
    keras.layers.GaussianDropout(0.3, name="probe"),
    keras.layers.AlphaDropout(0.2, name="probe"),
    keras.layers.Identity(name="probe"),
    keras.layers.Rescaling(2.0, offset=-1.0, name="probe"),
    keras.layers.UnitNormalization(name="probe"),
], ids=lambda layer: type(layer).__name__)
def test_single_input_layers(layer):
    inputs = keras.Input((64,))
    model_error = 0.02 if isinstance(layer, keras.layers.UnitNormalization) else 0.0  # 1/K mean term
    check(keras.Model(inputs, layer(inputs)), gaussian_batch((64,)), "probe", model_error)


def test_normalization_with_given_statistics():
    rng = np.random.default_rng(5)
    mean = rng.normal(size=16).astype("float32")
    variance = rng.uniform(0.5, 2.0, size=16).astype("float32")
    for invert in (False, True):
        inputs = keras.Input((16,))
        layer = keras.layers.Normalization(mean=mean, variance=variance, invert=invert, name="probe")
        check(keras.Model(inputs, layer(inputs)), gaussian_batch((16,)), "probe")


@pytest.mark.parametrize("layer_class", [keras.layers.Maximum, keras.layers.Minimum])
@pytest.mark.parametrize("count", [2, 3])
def test_maximum_minimum(layer_class, count):
    inputs = [keras.Input((32,)) for _ in range(count)]
    scaled = [keras.layers.Rescaling(1.0 + 0.5 * i, offset=0.3 * i)(x) for i, x in enumerate(inputs)]
    model = keras.Model(inputs, layer_class(name="probe")(scaled))
    batch = [gaussian_batch((32,), seed) for seed in range(count)]
    # Clark's fold treats max(X1, X2) as Gaussian before meeting X3: a few %.
    check(model, batch, "probe", model_error=0.0 if count == 2 else 0.05)


@pytest.mark.parametrize("normalize", [False, True])
def test_dot(normalize):
    a, b = keras.Input((48,)), keras.Input((48,))
    model = keras.Model([a, b], keras.layers.Dot(axes=1, normalize=normalize, name="probe")([a, b]))
    check(model, [gaussian_batch((48,), 1), gaussian_batch((48,), 2)], "probe",
          model_error=0.05 if normalize else 0.0)


def test_time_distributed_dense_is_initialized_like_dense():
    inputs = keras.Input((10, 128))
    wrapped = keras.layers.TimeDistributed(keras.layers.Dense(128, activation="tanh"), name="probe")
    model = keras.Model(inputs, wrapped(inputs))
    _, estimates = AutoInit(propagation="scalar", weight_init_config={"seed": 0}).initialize_model(model, return_estimates=True)
    assert type(wrapped.layer.kernel_initializer).__name__ == "AutoInitInitializer"
    values_per_unit = gaussian_batch((10, 128))
    check(keras.Model(inputs, wrapped(inputs)), values_per_unit, "probe", weighted=True)


WEIGHTED_CASES = {
    "einsum_dense": ((16, 64), lambda: keras.layers.EinsumDense(
        "abc,cd->abd", output_shape=(None, 128), bias_axes="d", activation="tanh", name="probe")),
    "einsum_dense_split_output": ((64,), lambda: keras.layers.EinsumDense(
        "ab,bcd->acd", output_shape=(8, 32), name="probe")),
    "separable_conv2d_same": ((12, 12, 16), lambda: keras.layers.SeparableConv2D(
        64, 3, padding="same", depth_multiplier=2, name="probe")),
    "separable_conv1d_relu": ((20, 16), lambda: keras.layers.SeparableConv1D(
        64, 5, activation="relu", name="probe")),
    "conv2d_transpose_same": ((8, 8, 32), lambda: keras.layers.Conv2DTranspose(
        64, 3, strides=2, padding="same", name="probe")),
    "conv2d_transpose_valid": ((8, 8, 32), lambda: keras.layers.Conv2DTranspose(
        64, 4, strides=2, padding="valid", name="probe")),
    "conv1d_transpose": ((10, 32), lambda: keras.layers.Conv1DTranspose(
        64, 5, strides=3, padding="same", name="probe")),
    "conv3d_transpose": ((4, 4, 4, 8), lambda: keras.layers.Conv3DTranspose(
        32, 3, strides=2, padding="same", name="probe")),
}


@pytest.mark.parametrize("name", sorted(WEIGHTED_CASES))
def test_weighted_layers_over_weight_draws(name):
    """The prediction is an expectation over weight draws: average 6 draws
    and allow 4 standard errors of that average (from the draws' spread),
    plus the batch's own sampling error. The draws' spread carries the
    batch's sampling error too, so a batch of 500 (against 4,000 elsewhere)
    widens nothing it does not also measure (the transposed convolutions
    took 32-103 s each at 4,000 on a busy 2-core machine, 3-5 s at 500)."""
    shape, make = WEIGHTED_CASES[name]
    batch = gaussian_batch(shape, batch=WEIGHTED_BATCH)
    variances, means = [], []
    for seed in range(6):
        inputs = keras.Input(shape)
        model = keras.Model(inputs, make()(inputs))
        model, estimates = AutoInit(propagation="scalar", weight_init_config={"seed": seed}, input_data_mean=MEAN,
                                    input_data_var=VAR).initialize_model(model, return_estimates=True)
        values = to_numpy(model(batch)).reshape(WEIGHTED_BATCH, -1)
        variances.append(values.var())
        means.append(values.mean())
        mean_pred, var_pred = estimates["probe"]
    var_se = np.std(variances, ddof=1) / math.sqrt(len(variances))
    mean_se = np.std(means, ddof=1) / math.sqrt(len(means))
    assert abs(np.mean(variances) - var_pred) <= 4 * var_se + 0.01 * var_pred, (np.mean(variances), var_pred)
    assert abs(np.mean(means) - mean_pred) <= 4 * mean_se + 0.01 * math.sqrt(var_pred), (np.mean(means), mean_pred)
