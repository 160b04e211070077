"""keras.ops nodes in Functional graphs, against Monte Carlo through the real ops.

Inputs are i.i.d. Gaussians with the stated moments, so every estimate here is
exact (softmax is sampled with 1e6 draws, far below the measurement's own
error). Tolerance: 4 standard errors of the measured mean and variance, from
the sample itself; sums over a contracted axis (matmul, einsum, sum) correlate
elements that share an input row, handled by measuring per-row and using the
spread across rows.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

from autoinit_nas import AutoInit
from tests.conftest import mean_standard_error, variance_standard_error

MEANS, VARS = (0.3, -0.2), (1.5, 0.8)

CASES = {
    "add": lambda x, y: x + y,
    "add_constant": lambda x, y: 2.0 + x,
    "subtract": lambda x, y: x - y,
    "constant_minus": lambda x, y: 1.0 - x,
    "multiply": lambda x, y: x * y,
    "scale": lambda x, y: x * 3.0,
    "divide": lambda x, y: x / 2.0,
    "negative": lambda x, y: -x,
    "matmul": lambda x, y: ops.matmul(x, ops.transpose(y, (0, 2, 1))),
    "einsum": lambda x, y: ops.einsum("bij,bkj->bik", x, y),
    "transpose": lambda x, y: ops.transpose(x, (0, 2, 1)),
    "reshape": lambda x, y: ops.reshape(x, (-1, 1024)),
    "slice": lambda x, y: x[:, 0],
    "concatenate": lambda x, y: ops.concatenate([x, 2.0 * y], axis=-1),
    "stack": lambda x, y: ops.stack([x, y + 1.0]),
    "mean": lambda x, y: ops.mean(x, axis=1),
    "sum": lambda x, y: ops.sum(x, axis=-1),
    "max": lambda x, y: ops.max(x, axis=1),
    "softmax": lambda x, y: ops.softmax(x),
    "relu": lambda x, y: ops.relu(x),
    "relu_clipped": lambda x, y: keras.activations.relu(x, max_value=1.0),
    "tanh": lambda x, y: ops.tanh(x),
    "sigmoid": lambda x, y: ops.sigmoid(x),
    "gelu": lambda x, y: keras.activations.gelu(x),
    "square": lambda x, y: ops.square(x),
    "power": lambda x, y: x**2,
    "clip": lambda x, y: ops.clip(x, -1.0, 0.5),
    "exp": lambda x, y: ops.exp(x),
    "erf": lambda x, y: ops.erf(x),
    "maximum": lambda x, y: ops.maximum(x, y),
    "maximum_constant": lambda x, y: ops.maximum(x, 0.3),
    "minimum": lambda x, y: ops.minimum(x, y),
}


@pytest.fixture(scope="module")
def predicted_and_measured():
    x, y = keras.Input((16, 64)), keras.Input((16, 64))
    outputs = {name: build(x, y) for name, build in CASES.items()}
    model = keras.Model([x, y], list(outputs.values()))
    model, estimates = AutoInit(
        propagation="scalar",
        weight_init_config={"seed": 0, "monte_carlo_samples": 10**6},
        input_data_mean=list(MEANS), input_data_var=list(VARS),
    ).initialize_model(model, return_estimates=True)
    rng = np.random.default_rng(0)
    batch = [m + math.sqrt(v) * rng.standard_normal((2000, 16, 64)).astype("float32")
             for m, v in zip(MEANS, VARS)]
    results = model(batch)
    table = {}
    for name, tensor, value in zip(outputs, model.outputs, results):
        operation = tensor._keras_history.operation
        table[name] = (type(operation).__name__, estimates[operation.name], np.asarray(value, dtype=float))
    return table


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_monte_carlo(predicted_and_measured, name):
    _, (mean_pred, var_pred), values = predicted_and_measured[name]
    # Per-sample summaries are independent across the batch even when the
    # elements within a sample are not (contractions share their inputs).
    per_sample = values.reshape(values.shape[0], -1)
    mean_se = mean_standard_error(per_sample.mean(axis=1))
    centred_sq = (per_sample - per_sample.mean()) ** 2
    var_se = max(mean_standard_error(centred_sq.mean(axis=1)), variance_standard_error(values))
    assert abs(values.mean() - mean_pred) <= 4 * mean_se + 1e-9
    assert abs(values.var() - var_pred) <= 4 * var_se + 1e-9


def test_ops_are_recognised_by_class_not_name(predicted_and_measured):
    classes = {name: entry[0] for name, entry in predicted_and_measured.items()}
    assert classes["add"] == "Add" and classes["matmul"] == "Matmul"
    # No op fell back to the pass-through warning path.
    x = keras.Input((4,))
    model = keras.Model(x, ops.tanh(x) * 2.0 + ops.relu(x))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AutoInit(propagation="scalar").initialize_model(model)


def test_matmul_with_a_constant_uses_its_values():
    rng = np.random.default_rng(3)
    constant = (0.2 + 0.5 * rng.standard_normal((256, 128))).astype("float32")
    x = keras.Input((256,))
    model = keras.Model(x, ops.matmul(x, constant))
    _, estimates = AutoInit(propagation="scalar", input_data_mean=0.1).initialize_model(model, return_estimates=True)
    mean_pred, var_pred = estimates[model.outputs[0]._keras_history.operation.name]
    values = np.asarray(model(0.1 + rng.standard_normal((4000, 256)).astype("float32")), dtype=float)
    # The constant is one fixed draw: its column sums make per-column offsets
    # that are part of the measured spread, as the estimate assumes.
    assert abs(values.mean() - mean_pred) <= 4 * math.sqrt(var_pred / 128)
    assert abs(values.var() / var_pred - 1) <= 4 * math.sqrt(2 / 128)


# Tensor-shaped constants (what a traced custom layer computes without its
# inputs, e.g. sinusoidal position codes) and image patches.


def sinusoid_codes(length=16, width=64, offset=0.0):
    positions = np.arange(length)[:, None]
    angles = positions / np.power(10000.0, 2.0 * np.arange(width // 2)[None, :] / width)
    return ops.convert_to_tensor((offset + np.concatenate([np.sin(angles), np.cos(angles)], -1)).astype("float32"))


CONSTANT_CASES = {
    "x_plus_codes": lambda x: x + sinusoid_codes(),
    "codes_minus_x": lambda x: sinusoid_codes() - x,
    "x_times_codes": lambda x: x * sinusoid_codes(),
    "codes_times_x": lambda x: sinusoid_codes() * x,
    "x_over_codes": lambda x: x / sinusoid_codes(offset=2.0),
    "maximum_codes": lambda x: ops.maximum(x, sinusoid_codes()),
    "codes_minimum": lambda x: ops.minimum(sinusoid_codes(), x),
    "matmul_codes": lambda x: ops.matmul(x, ops.transpose(sinusoid_codes(length=32))),
    "patches_valid": lambda x: ops.image.extract_patches(x, size=4),
    "patches_same_overlapping": lambda x: ops.image.extract_patches(x, size=3, strides=2, padding="same"),
}


def _scalar_estimate_and_values(build, shape, mean=MEANS[0], var=VARS[0]):
    import warnings

    x = keras.Input(shape)
    model = keras.Model(x, build(x))
    operation = model.outputs[0]._keras_history.operation
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an op without an estimator warns
        _, estimates = AutoInit(
            propagation="scalar", input_data_mean=mean, input_data_var=var
        ).initialize_model(model, return_estimates=True)
    rng = np.random.default_rng(0)
    batch = (mean + math.sqrt(var) * rng.standard_normal((2000,) + shape)).astype("float32")
    return estimates[operation.name], np.asarray(model(batch), dtype=float)


@pytest.mark.parametrize("name", sorted(CONSTANT_CASES))
def test_ops_with_a_tensor_shaped_constant_or_patches_match_monte_carlo(name):
    """The constant's values are spread over the positions: an operand with
    their mean and variance, independent of x (patches: a mixture with the
    padding's zeros). Each sample's summary is independent of the others."""
    shape = (16, 16, 4) if name.startswith("patches") else (16, 64)
    (mean_pred, var_pred), values = _scalar_estimate_and_values(CONSTANT_CASES[name], shape)
    per_sample = values.reshape(values.shape[0], -1)
    mean_se = mean_standard_error(per_sample.mean(axis=1))
    var_se = mean_standard_error(((per_sample - per_sample.mean()) ** 2).mean(axis=1))
    assert abs(values.mean() - mean_pred) <= 4 * mean_se + 1e-9, (values.mean(), mean_pred)
    assert abs(values.var() - var_pred) <= 4 * var_se + 1e-9, (values.var(), var_pred)


def test_same_padded_patches_hold_the_padding_zeros():
    """9x9 images, 3x3 patches every 2 pixels: 5 windows per axis, the first
    and the last one pixel past the edges, so 13 of an axis's 15 taps are
    pixels: the mean scales by (13/15)^2, the rest of the values are zeros."""
    (mean_pred, _), values = _scalar_estimate_and_values(
        lambda x: ops.image.extract_patches(x, size=3, strides=2, padding="same"), (9, 9, 2), mean=1.0
    )
    assert values.shape[1:] == (5, 5, 18)
    assert mean_pred == pytest.approx((13 / 15) ** 2)
    assert np.mean(values == 0.0) == pytest.approx(1 - (13 / 15) ** 2, abs=1e-9)


def test_the_registry_loads_the_arithmetic_and_image_op_modules():
    from autoinit_nas.estimators.registry import builtin_estimators

    names = {cls.__name__: est.__name__ for cls, est in builtin_estimators().items()}
    assert names["ExtractPatches"] == "ExtractPatchesEstimator"
    assert names["Add"] == names["Maximum"] == "ArithmeticOpEstimator"
