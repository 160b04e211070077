"""The study's initialization arms: variances drawn, LSUV's unit variance on data, seeding, errors."""

import math

import keras
import numpy as np
import pytest

from autoinit_nas import AutoInit
from autoinit_nas.init_methods import METHODS, initialize, kernel_fan_ins
from tests.conftest import to_numpy


def zoo():
    """One model holding every kernel family the fan-in arms own."""
    image = keras.Input((8, 8, 6))
    h = keras.layers.Conv2D(16, 3, padding="same", name="conv2d")(image)
    h = keras.layers.DepthwiseConv2D(5, padding="same", depth_multiplier=4, name="depthwise")(h)
    h = keras.layers.SeparableConv2D(48, 3, padding="same", depth_multiplier=2, name="separable")(h)
    h = keras.layers.Conv2DTranspose(32, 4, strides=2, padding="same", name="transposed")(h)
    h = keras.layers.Reshape((256, 32))(h)
    h = keras.layers.Conv1D(40, 5, padding="same", name="conv1d")(h)
    h = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 24), bias_axes="d", name="einsum")(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    out = keras.layers.Dense(200, name="dense")(h)
    return keras.Model(image, out)


EXPECTED_FAN_INS = {
    ("conv2d", "kernel"): 9 * 6,
    ("depthwise", "kernel"): 25,
    ("separable", "depthwise_kernel"): 9,
    ("separable", "pointwise_kernel"): 64 * 2,
    ("transposed", "kernel"): 16 * 48 // 4,
    ("conv1d", "kernel"): 5 * 32,
    ("einsum", "kernel"): 40,
    ("dense", "kernel"): 24,
}


def test_fan_ins_of_every_kernel_family():
    model = zoo()
    found = {(layer.name, weight): fan for layer in model.layers for weight, fan in kernel_fan_ins(layer).items()}
    assert found == EXPECTED_FAN_INS


@pytest.mark.parametrize("method, gain", [("he", 2.0), ("lecun", 1.0)])
def test_fan_in_arms_draw_their_variance(method, gain):
    model = initialize(zoo(), method, seed=0)
    for (name, weight), fan_in in EXPECTED_FAN_INS.items():
        layer = model.get_layer(name)
        values = to_numpy(getattr(layer, weight)).ravel()
        target = gain / fan_in
        # Sample variance of n normal draws: standard error target * sqrt(2 / n); allow 4 of them.
        assert abs(values.var() - target) < 4 * target * math.sqrt(2 / values.size), (name, weight)
        assert abs(values.mean()) < 4 * math.sqrt(target / values.size), (name, weight)
        if getattr(layer, "bias", None) is not None:
            assert not np.any(to_numpy(layer.bias))


def relu_tanh_mlp():
    x = keras.Input((32,))
    h = x
    for index in range(12):
        h = keras.layers.Dense(64, activation="relu" if index % 2 else "tanh")(h)
    return keras.Model(x, keras.layers.Dense(10)(h))


def small_cnn():
    x = keras.Input((12, 12, 3))
    h = keras.layers.Conv2D(16, 3, activation="relu", padding="same")(x)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, activation="relu")(h)
    h = keras.layers.Conv2D(32, 3, activation="tanh", padding="same")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dense(32, activation="relu")(h)
    return keras.Model(x, keras.layers.Dense(5)(h))


def pre_activation_variances(model, batch):
    """{layer: variance of its output with its activation off} through a sub-model (not the walk)."""
    found = {}
    for layer in model.layers:
        if not kernel_fan_ins(layer):
            continue
        activation = layer.activation
        layer.activation = keras.activations.linear
        try:
            found[layer.name] = float(to_numpy(keras.Model(model.input, layer.output)(batch, training=True)).var())
        finally:
            layer.activation = activation
    return found


@pytest.mark.parametrize("build, shape", [(relu_tanh_mlp, (512, 32)), (small_cnn, (256, 12, 12, 3))])
def test_lsuv_brings_every_layer_to_unit_variance(build, shape):
    # Off-scale, non-centred inputs: orthonormal kernels alone miss unit variance by far.
    batch = (3.0 * np.random.default_rng(0).standard_normal(shape) + 1.0).astype("float32")
    orthonormal_only = initialize(build(), "lsuv", data=batch, seed=1, max_iterations=0)
    assert max(abs(v - 1) for v in pre_activation_variances(orthonormal_only, batch).values()) > 1.0
    model = initialize(build(), "lsuv", data=batch, seed=1)
    variances = pre_activation_variances(model, batch)
    assert len(variances) == len([layer for layer in model.layers if kernel_fan_ins(layer)])
    for name, variance in variances.items():
        assert abs(variance - 1.0) < 0.1, (name, variance)


def test_lsuv_leaves_a_reproducible_initializer():
    batch = np.random.default_rng(0).standard_normal((256, 32)).astype("float32")
    model = initialize(relu_tanh_mlp(), "lsuv", data=batch, seed=2)
    clone = keras.models.clone_model(model)
    for layer, copy in zip(model.layers[1:], clone.layers[1:]):
        np.testing.assert_allclose(to_numpy(layer.kernel), to_numpy(copy.kernel), rtol=1e-4, atol=1e-6)


def declared_model():
    x = keras.Input((20,))
    h = keras.layers.Dense(300, kernel_initializer=keras.initializers.RandomNormal(stddev=0.5),
                           bias_initializer="ones", name="declared")(x)
    h = keras.layers.BatchNormalization(name="bn")(h)
    return keras.Model(x, keras.layers.Dense(3, name="out")(h))


def weights_of(model):
    return [to_numpy(weight) for weight in model.weights]


def test_default_redraw_is_seeded_and_keeps_the_declared_initializers():
    first = weights_of(initialize(declared_model(), "default", seed=3))
    again = weights_of(initialize(declared_model(), "default", seed=3))
    other = weights_of(initialize(declared_model(), "default", seed=4))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    model = initialize(declared_model(), "default", seed=3)
    kernel = to_numpy(model.get_layer("declared").kernel).ravel()
    assert abs(kernel.var() - 0.25) < 4 * 0.25 * math.sqrt(2 / kernel.size)
    np.testing.assert_array_equal(to_numpy(model.get_layer("declared").bias), 1.0)


def test_default_redraw_restores_constants_and_the_lstm_forget_bias():
    x = keras.Input((5, 3))
    model = keras.Model(x, keras.layers.LSTM(4, name="lstm")(x))
    for weight in model.weights:
        weight.assign(keras.ops.full(weight.shape, 7.0))  # as if trained
    initialize(model, "default", seed=0)
    bias = to_numpy(model.get_layer("lstm").cell.bias)
    np.testing.assert_array_equal(bias, [0.0] * 4 + [1.0] * 4 + [0.0] * 8)
    assert not np.any(to_numpy(model.get_layer("lstm").cell.kernel) == 7.0)


@pytest.mark.parametrize("method", ["he", "lsuv", "autoinit-scalar", "autoinit"])
def test_every_arm_is_seeded(method):
    batch = np.random.default_rng(0).standard_normal((128, 20)).astype("float32")
    first = weights_of(initialize(declared_model(), method, data=batch, seed=5))
    again = weights_of(initialize(declared_model(), method, data=batch, seed=5))
    for a, b in zip(first, again):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("method, propagation", [("autoinit-scalar", "scalar"), ("autoinit", "probe")])
def test_autoinit_arms_take_the_template_options_without_changing_it(monkeypatch, method, propagation):
    used = []
    original = AutoInit.initialize_model

    def spy(self, model, **kwargs):
        used.append((self.propagation, self.weight_init_config["seed"], self.signal_variance))
        return original(self, model, **kwargs)

    monkeypatch.setattr(AutoInit, "initialize_model", spy)
    template = AutoInit(signal_variance=4.0, weight_init_config={"seed": 9}, propagation="probe")
    x = keras.Input((64,))
    model = keras.Model(x, keras.layers.Dense(256, name="d")(x))
    initialize(model, method, seed=1, autoinit=template)
    assert used == [(propagation, 1, 4.0)]
    kernel = to_numpy(model.get_layer("d").kernel)
    # On unit inputs either propagation gives Var(W) = signal_variance / fan_in (the probe up to its batch).
    assert abs(kernel.var() - 4.0 / 64) < 0.1 * 4.0 / 64
    assert template.propagation == "probe" and template.weight_init_config["seed"] == 9


def test_lsuv_without_data_names_what_to_pass():
    with pytest.raises(ValueError, match=r"'lsuv'.*pass `data`"):
        initialize(relu_tanh_mlp(), "lsuv", seed=0)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError) as error:
        initialize(relu_tanh_mlp(), "xavier", seed=0)
    for name in METHODS:
        assert repr(name) in str(error.value) or name in str(error.value)
    assert "'xavier'" in str(error.value)


def test_unknown_option_is_refused():
    with pytest.raises(ValueError, match="tolerance"):
        initialize(relu_tanh_mlp(), "he", seed=0, tolerance=0.2)
