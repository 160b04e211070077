"""Weights AutoInit draws: variances, seeds, traces left on the layers."""

import math

import keras
import numpy as np
import pytest

from autoinit_nas import AutoInit, CenteredUnitNorm, WeightedSum
from autoinit_nas.core.loading import DeferredInitializer


def mlp(width=256, depth=3, activation="relu"):
    inputs = keras.Input((128,))
    hidden = inputs
    for index in range(depth):
        hidden = keras.layers.Dense(width, activation=activation, name=f"dense_{index}")(hidden)
    return keras.Model(inputs, keras.layers.Dense(64, name="head")(hidden))


def values(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=float)


@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform", "orthogonal"])
def test_each_distribution_draws_the_planned_variance(distribution):
    # Scalar propagation: the probe would rescale every kernel to the variance
    # it measures, which hides a distribution drawing the wrong scale.
    # Input N(0, 2): the first kernel needs variance 1 / (128 * 2).
    model = AutoInit(weight_init_config={"seed": 1, "distribution": distribution},
                     input_data_var=2.0, propagation="scalar").initialize_model(mlp())
    kernel = values(model.get_layer("dense_0").kernel)
    expected = 1.0 / (128 * 2.0)
    # Sample variance of n i.i.d. draws: relative SE sqrt(2/n) for Gaussians,
    # smaller for uniform and orthogonal; allow four.
    tolerance = 4 * math.sqrt(2.0 / kernel.size)
    assert abs(kernel.var() / expected - 1) <= tolerance
    assert abs(kernel.mean()) <= 4 * math.sqrt(expected / kernel.size)
    # After a ReLU of N(0, 1): E[x^2] = 1/2, fan-in 256.
    second = values(model.get_layer("dense_1").kernel)
    assert abs(second.var() / (1.0 / (256 * 0.5)) - 1) <= 4 * math.sqrt(2.0 / second.size)


def test_truncated_normal_is_truncated_at_two_standard_deviations():
    # Scalar propagation plans variance 1/128 for the first kernel (input
    # N(0, 1)); the underlying normal's sigma is its std / 0.8796. Of 32,768
    # draws ~200 land within 5% of the cut (P ~ 0.006 each), so the largest
    # shows where the cut is, whatever the seed.
    model = AutoInit(weight_init_config={"seed": 1}, propagation="scalar").initialize_model(mlp())
    kernel = values(model.get_layer("dense_0").kernel)
    sigma = math.sqrt(1.0 / 128) / 0.87962566103423978
    assert 1.9 * sigma <= np.abs(kernel).max() <= 2 * sigma * (1 + 1e-6)


def test_orthogonal_kernel_is_orthogonal_up_to_gain():
    model = AutoInit(weight_init_config={"seed": 1, "distribution": "orthogonal"}).initialize_model(mlp())
    kernel = values(model.get_layer("dense_1").kernel)  # square 256 x 256
    gram = kernel.T @ kernel
    np.testing.assert_allclose(gram, np.eye(256) * gram[0, 0], atol=1e-4)


def test_same_seed_same_weights_other_seed_other_weights():
    first = AutoInit(weight_init_config={"seed": 9}).initialize_model(mlp())
    second = AutoInit(weight_init_config={"seed": 9}).initialize_model(mlp())
    third = AutoInit(weight_init_config={"seed": 10}).initialize_model(mlp())
    for a, b, c in zip(first.weights, second.weights, third.weights):
        np.testing.assert_array_equal(values(a), values(b))
        if "kernel" in a.path:
            assert not np.array_equal(values(a), values(c))


def test_no_seed_gives_fresh_weights():
    first = AutoInit().initialize_model(mlp())
    second = AutoInit().initialize_model(mlp())
    assert not np.array_equal(values(first.layers[1].kernel), values(second.layers[1].kernel))


def test_biases_are_zero():
    model = mlp()
    for layer in model.layers[1:]:
        layer.bias.assign(np.ones(layer.bias.shape, "float32"))
    AutoInit(weight_init_config={"seed": 0}).initialize_model(model)
    for layer in model.layers[1:]:
        assert not values(layer.bias).any()
        assert isinstance(layer.bias_initializer, keras.initializers.Zeros)


def test_initializer_attributes_reproduce_the_model():
    model = AutoInit(propagation="scalar", weight_init_config={"seed": 4}).initialize_model(mlp())
    kernel_config = model.get_layer("dense_0").get_config()["kernel_initializer"]
    assert kernel_config["class_name"] == "AutoInitInitializer"
    assert kernel_config["config"]["variance"] == pytest.approx(1.0 / 128)
    clone = keras.models.clone_model(model)
    for ours, theirs in zip(model.weights, clone.weights):
        np.testing.assert_array_equal(values(ours), values(theirs))
    rebuilt = keras.Model.from_config(model.get_config())
    for ours, theirs in zip(model.weights, rebuilt.weights):
        np.testing.assert_array_equal(values(ours), values(theirs))


def test_config_path_draws_each_kernel_once_and_restores_unhandled_initializers():
    @keras.saving.register_keras_serializable(package="tests")
    class Projection(keras.layers.Layer):
        def __init__(self, units, kernel_initializer="ones", **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.kernel_initializer = keras.initializers.get(kernel_initializer)

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                          initializer=self.kernel_initializer)

        def call(self, x):
            return keras.ops.matmul(x, self.kernel)

        def get_config(self):
            config = super().get_config()
            config.update(units=self.units,
                          kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
            return config

    inputs = keras.Input((8,))
    hidden = Projection(8, kernel_initializer="ones", name="proj")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(hidden))
    with pytest.warns(UserWarning, match="Projection"):
        built = AutoInit(weight_init_config={"seed": 0}).initialize_model(model.get_config())
    projection = built.get_layer("proj")
    assert not isinstance(projection.kernel_initializer, DeferredInitializer)
    np.testing.assert_array_equal(values(projection.kernel), np.ones((8, 8)))
    assert values(built.get_layer("head").kernel).std() > 0


def test_constrain_weights_attaches_and_applies_centered_unit_norm():
    model = AutoInit(propagation="scalar", weight_init_config={"seed": 2, "constrain_weights": True}).initialize_model(mlp())
    layer = model.get_layer("dense_1")
    assert isinstance(layer.kernel_constraint, CenteredUnitNorm)
    kernel = values(layer.kernel)
    np.testing.assert_allclose(kernel.mean(axis=0), 0.0, atol=1e-6)
    # Centred weights cancel the input mean, so the scale follows Var(relu(z))
    # = 1/2 - 1/(2 pi), not E[relu(z)^2] = 1/2.
    relu_var = 0.5 - 1 / (2 * math.pi)
    np.testing.assert_allclose(np.mean(kernel**2, axis=0), 1.0 / (256 * relu_var), rtol=1e-4)
    # Training keeps the constraint.
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    x = np.random.default_rng(0).standard_normal((64, 128)).astype("float32")
    model.fit(x, np.zeros((64, 64), "float32"), epochs=1, verbose=0)
    kernel = values(layer.kernel)
    np.testing.assert_allclose(kernel.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.mean(kernel**2, axis=0), 1.0 / (256 * relu_var), rtol=1e-3)


def test_helpers_serialize_round_trip():
    left, right = keras.Input((4,)), keras.Input((4,))
    merged = WeightedSum([0.6, 0.8], name="ws")([left, right])
    dense = keras.layers.Dense(3, kernel_constraint=CenteredUnitNorm(gain=2.0, mode="fan_avg"))(merged)
    model = keras.Model([left, right], dense)
    restored = keras.Model.from_config(model.get_config())
    assert restored.get_layer("ws").coefficients == [0.6, 0.8]
    constraint = restored.layers[-1].kernel_constraint
    assert isinstance(constraint, CenteredUnitNorm) and constraint.gain == 2.0 and constraint.mode == "fan_avg"
    a = np.ones((2, 4), "float32")
    np.testing.assert_allclose(values(restored.get_layer("ws")([a, 2 * a])), 2.2 * a, rtol=1e-6)


def test_helpers_reject_bad_arguments():
    with pytest.raises(ValueError, match="coefficients"):
        WeightedSum("abc")
    with pytest.raises(ValueError, match="mode"):
        CenteredUnitNorm(mode="fan_sideways")


def test_config_path_restores_dense_kernels_a_custom_estimator_left_alone():
    from autoinit_nas import LayerOutputDistributionEstimator

    class Passive(LayerOutputDistributionEstimator):
        def estimate(self, means_in, vars_in):
            return means_in[0], vars_in[0]

    built = AutoInit(custom_distribution_estimators={keras.layers.Dense: Passive}).initialize_model(
        mlp().to_json()
    )
    kernel = values(built.get_layer("dense_0").kernel)
    assert kernel.std() > 0  # redrawn from the original GlorotUniform, not left at zero
    assert not isinstance(built.get_layer("dense_0").kernel_initializer, DeferredInitializer)
