"""The probe's speed-ups give the values of the plain path (commit d2c4c3b).

* ``_assign_normal_blocks`` (weights above ``ASSIGN_BLOCK`` values, drawn and
  assigned in row blocks) assigns exactly ``draw``'s one-shot values;
* ``assign_power_of_two`` then ``finish_power_of_two`` (drawn once at a power
  of two, multiplied in place) leaves exactly a fresh ``draw`` at the final
  variance;
* ``NormalizationEstimator.probe_call`` (TensorFlow's fused batch norm) equals
  ``layer(x, training=True)`` up to float32 rounding, gives its output's
  moments (from the per-channel statistics) as reading the output would, and
  is None where the code says it falls back to calling the layer.
"""

import keras
import numpy as np
import pytest

from autoinit_nas.core import weights
from autoinit_nas.estimators.core import DenseEstimator
from autoinit_nas.estimators.normalization import NormalizationEstimator

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the blocked and fused paths are TensorFlow's")

NORMALS = ("truncated_normal", "untruncated_normal")
SHAPE = (300, 200)
# 4999 // 200 = 24 rows a block: 13 blocks, the last one partial (12 rows);
# truncated redraws scattered 624 at a time (several chunks of ~2700).
SMALL_BLOCK = 4999


def _dense_estimator(variance, units=SHAPE[1], fan_in=SHAPE[0]):
    layer = keras.layers.Dense(units, bias_initializer="ones")
    layer.build((None, fan_in))
    estimator = DenseEstimator(layer)
    estimator.weight_plan["kernel"] = (variance, fan_in, units)
    return estimator


def _kernel(estimator):
    return keras.ops.convert_to_numpy(estimator.layer.kernel)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(weights, "ASSIGN_BLOCK", SMALL_BLOCK)


# 1. Block assignment --------------------------------------------------------


@pytest.mark.parametrize("distribution", NORMALS)
def test_the_blocked_path_is_taken_for_a_modest_kernel_with_a_small_block(small_blocks, distribution):
    estimator = _dense_estimator(0.01)
    assert weights._blocked_target(estimator.layer.kernel, distribution) is not None
    blocks, row = weights._row_blocks(SHAPE)
    assert row == SHAPE[1] and len(blocks) == 13 and blocks[-1] == (288, 300)


@pytest.mark.parametrize("distribution", NORMALS)
@pytest.mark.parametrize("seed", [0, 12345])
def test_blocked_assignment_equals_the_one_shot_draw(small_blocks, distribution, seed):
    variance = 0.0123
    estimator = _dense_estimator(variance)
    weights.assign_weight(estimator, "kernel", distribution, seed, constrain_weights=False)
    expected = weights.draw(distribution, variance, SHAPE, seed)
    np.testing.assert_array_equal(_kernel(estimator), expected)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(estimator.layer.bias), np.zeros(SHAPE[1]))
    if distribution == "truncated_normal":
        assert np.abs(_kernel(estimator)).max() <= 2.0 * float(weights.normal_factor(distribution, variance))


@pytest.mark.parametrize("distribution", NORMALS)
def test_blocked_writes_equal_the_unit_draw_times_the_factor(small_blocks, distribution):
    estimator = _dense_estimator(1.0)
    factor = np.float32(0.37)
    weights._assign_normal_blocks(estimator.layer.kernel.value, distribution, 7, factor)
    np.testing.assert_array_equal(_kernel(estimator), weights.unit_draw(distribution, SHAPE, 7) * factor)


def test_without_the_small_block_the_kernel_is_not_blocked():
    estimator = _dense_estimator(0.01)
    assert weights._blocked_target(estimator.layer.kernel, "truncated_normal") is None


# 2. Power-of-two draw, rescaled in place -------------------------------------

# Ratios of the final variance to the planned one: powers of two and others.
RATIOS = (1.0, 4.0, 0.25, 3.0, 0.37, 10.5, 1e-3, 7.7e2)


def _power_then_finish(distribution, seed, planned, final):
    estimator = _dense_estimator(planned)
    power = weights.assign_power_of_two(estimator, "kernel", distribution, seed)
    assert power is not None and np.log2(power) == round(np.log2(power))
    np.testing.assert_array_equal(_kernel(estimator),
                                  weights.unit_draw(distribution, SHAPE, seed) * np.float32(power))
    estimator.weight_plan["kernel"] = (final, SHAPE[0], SHAPE[1])
    weights.finish_power_of_two(estimator, "kernel", distribution, seed, power)
    return estimator


@pytest.mark.parametrize("distribution", NORMALS)
@pytest.mark.parametrize("ratio", RATIOS)
def test_power_of_two_then_rescale_is_bitwise_a_fresh_draw(distribution, ratio):
    planned = 2.0 / SHAPE[0]
    estimator = _power_then_finish(distribution, 3, planned, planned * ratio)
    np.testing.assert_array_equal(_kernel(estimator), weights.draw(distribution, planned * ratio, SHAPE, 3))
    initializer = estimator.layer.kernel_initializer
    assert isinstance(initializer, weights.AutoInitInitializer)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(initializer(SHAPE)), _kernel(estimator))


@pytest.mark.parametrize("distribution", NORMALS)
@pytest.mark.parametrize("ratio", (1.0, 3.0, 0.37, 1e-3))
def test_power_of_two_then_rescale_in_blocks_is_bitwise_a_fresh_draw(small_blocks, distribution, ratio):
    planned = 0.05
    estimator = _power_then_finish(distribution, 11, planned, planned * ratio)
    np.testing.assert_array_equal(_kernel(estimator), weights.draw(distribution, planned * ratio, SHAPE, 11))


def test_power_of_two_is_refused_where_exactness_is_not_guaranteed():
    assert weights.assign_power_of_two(_dense_estimator(0.01), "kernel", "uniform", 0) is None
    assert weights.assign_power_of_two(_dense_estimator(1e-30), "kernel", "truncated_normal", 0) is None


# 3. BatchNormalization through the fused op ---------------------------------


def _batch(shape, seed=0):
    import tensorflow as tf

    values = np.random.default_rng(seed).normal(1.5, 2.0, shape).astype("float32")
    return tf.constant(values)


def _built(layer, shape):
    layer.build(shape)
    rng = np.random.default_rng(5)
    for variable in (layer.gamma, layer.beta):
        if variable is not None:  # not the trivial ones and zeros
            variable.assign(rng.normal(1.0, 0.5, variable.shape).astype("float32"))
    return layer


FUSED_CASES = {
    "default": {},
    "no_center_no_scale": {"center": False, "scale": False},
    "no_center": {"center": False},
    "axis_3": {"axis": 3},
    "epsilon_1e-3": {"epsilon": 1e-3},
    "epsilon_0.1": {"epsilon": 0.1},
}


@pytest.mark.parametrize("kwargs", FUSED_CASES.values(), ids=FUSED_CASES.keys())
def test_probe_call_equals_the_training_mode_call(kwargs):
    shape = (16, 7, 5, 6)
    layer = _built(keras.layers.BatchNormalization(**kwargs), shape)
    x = _batch(shape)
    probed = NormalizationEstimator(layer).probe_call([x])
    assert probed is not None and len(probed) == 1
    expected = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(probed[0].value), expected, rtol=1e-5, atol=1e-5)


MOMENT_SHAPES = {"batch_32": (32, 9, 9, 6), "two_values_per_channel": (2, 1, 1, 6),
                 "one_value_per_channel": (1, 1, 1, 6)}


@pytest.mark.parametrize("kwargs", FUSED_CASES.values(), ids=FUSED_CASES.keys())
@pytest.mark.parametrize("shape", MOMENT_SHAPES.values(), ids=MOMENT_SHAPES.keys())
def test_probe_call_moments_are_those_of_its_output(kwargs, shape):
    # The moments come from the op's per-channel statistics, not from reading
    # the output: they must equal what reading it gives (float64, two passes).
    from autoinit_nas.core.probe_values import array_moments

    layer = _built(keras.layers.BatchNormalization(**kwargs), shape)
    (probed,) = NormalizationEstimator(layer).probe_call([_batch(shape)])
    mean, var = array_moments(keras.ops.convert_to_numpy(probed.value))
    # float32 normalization: ~1e-6 relative per value; the variance is near 1 (or beta's spread).
    assert probed.moments[0] == pytest.approx(mean, abs=1e-5)
    assert probed.moments[1] == pytest.approx(var, rel=1e-4, abs=1e-6)


FALLBACK_CASES = {
    "rank_2": ({}, (32, 6), "tensor"),
    "rank_3": ({}, (8, 5, 6), "tensor"),
    "channels_first_axis": ({"axis": 1}, (8, 6, 5, 5), "tensor"),
    "small_epsilon": ({"epsilon": 1e-6}, (8, 5, 5, 6), "tensor"),
    "synchronized": ({"synchronized": True}, (8, 5, 5, 6), "tensor"),
    "frozen": ({"trainable": False}, (8, 5, 5, 6), "tensor"),
    "renorm": ({"renorm": True}, (8, 5, 5, 6), "tensor"),
    "numpy_input": ({}, (8, 5, 5, 6), "numpy"),
    "float16_input": ({}, (8, 5, 5, 6), "float16"),
}


@pytest.mark.parametrize("kwargs, shape, kind", FALLBACK_CASES.values(), ids=FALLBACK_CASES.keys())
def test_probe_call_falls_back_to_the_layer(kwargs, shape, kind):
    import tensorflow as tf

    layer = _built(keras.layers.BatchNormalization(**kwargs), shape)
    x = _batch(shape)
    x = {"tensor": x, "numpy": x.numpy(), "float16": tf.cast(x, tf.float16)}[kind]
    assert NormalizationEstimator(layer).probe_call([x]) is None


def test_probe_call_falls_back_for_other_normalizations_and_two_inputs():
    shape = (8, 5, 5, 6)
    x = _batch(shape)
    layer_norm = keras.layers.LayerNormalization()
    layer_norm.build(shape)
    assert NormalizationEstimator(layer_norm).probe_call([x]) is None
    batch_norm = _built(keras.layers.BatchNormalization(), shape)
    assert NormalizationEstimator(batch_norm).probe_call([x, x]) is None

    class Subclassed(keras.layers.BatchNormalization):
        pass

    assert NormalizationEstimator(_built(Subclassed(), shape)).probe_call([x]) is None
