"""Minimal models for the bugs found by fuzzing and fault injection.

Bugs 1-3 were found by the property test (tests/fuzz/test_fuzz.py), 4 by
injecting extreme options, 5 by reading the warning path, 6 by the
cross-backend determinism test. Each test is the smallest model that
reproduced the failure, and says what went wrong before the fix.
"""

import math
import warnings

import keras
import numpy as np
import pytest

from autoinit_nas import AutoInit
from autoinit_nas.maths.sanitize import MOMENT_LIMIT
from tests.fuzz.test_fuzz import check_initialization

L = keras.layers
# The bugs were in scalar propagation's maths and clamps, which probe
# propagation falls back to on the same inputs.
OPTIONS = {
    "weight_init_config": {"seed": 0, "monte_carlo_samples": 256, "recurrent_monte_carlo_samples": 16},
    "propagation": "scalar",
}


def causes(messages):
    return [message.cause for message in messages]


# Bug 1: masks passed as `mask=` were walked as signals. A nested model called
# on a masked tensor (after Embedding(mask_zero=True)) raised "Model 'block'
# has 1 inputs but 2 input moments were given", and the mask's NotEqual op was
# reported as a layer without an estimator.


def test_nested_model_called_on_a_masked_tensor():
    tokens = keras.Input((5,), dtype="int32")
    embedded = L.Embedding(10, 4, mask_zero=True)(tokens)
    block_input = keras.Input((5, 4))
    block = keras.Model(block_input, L.Dense(4)(block_input), name="block")
    model = keras.Model(tokens, block(embedded))
    messages = check_initialization(model, OPTIONS)
    assert messages == []


def test_sequential_block_called_twice_on_masked_tensors():
    tokens = keras.Input((5,), dtype="int32")
    embedded = L.Embedding(10, 6, mask_zero=True)(tokens)
    block = keras.Sequential([L.Dense(4)], name="block")
    model = keras.Model(tokens, [block(embedded), block(L.Softmax(axis=1)(embedded))])
    check_initialization(model, OPTIONS)


def test_recurrent_layer_with_a_mask_has_no_unsupported_mask_op():
    tokens = keras.Input((5,), dtype="int32")
    hidden = L.GRU(3, return_sequences=True)(L.Embedding(10, 4, mask_zero=True)(tokens))
    model = keras.Model(tokens, hidden)
    _, estimates = AutoInit(**OPTIONS).initialize_model(model, return_estimates=True)
    assert not any(name.startswith("not_equal") for name in estimates)


def test_subclassed_model_whose_call_takes_a_mask():
    # Not a failure before the fix; guards its trace path (the mask is passed as None).
    class Masked(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = L.Dense(4)

        def call(self, x, mask=None):
            return self.dense(x)

    tokens = keras.Input((5,), dtype="int32")
    model = keras.Model(tokens, Masked(name="masked")(L.Embedding(10, 4, mask_zero=True)(tokens)))
    check_initialization(model, OPTIONS)


# Bug 2: an overflowing activation made NaN. Dense(activation="exponential")
# aimed at signal_variance=1e4 has E[exp(X)] = exp(5000) = inf, and
# inf - inf gave the variance NaN: "DenseEstimator.estimate ... returned a
# non-finite value". Now the variance is inf and the estimate is clamped to
# float32's range with one "overflow" warning.


def test_overflowing_activation_is_clamped_not_nan():
    inputs = keras.Input((1,))
    model = keras.Model(inputs, L.Dense(1, activation="exponential", use_bias=False, name="d")(inputs))
    options = dict(OPTIONS, signal_variance=1e4)
    messages = check_initialization(model, options)
    assert causes(messages) == ["overflow"]
    _, estimates = AutoInit(**options).initialize_model(model, return_estimates=True)
    assert estimates["d"][1] == MOMENT_LIMIT


def test_overflow_with_both_infinite_tails():
    # sinh of a wide input overflows to +inf and -inf: the mean must not be NaN.
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.ops.sinh(L.Dense(4)(inputs)))
    check_initialization(model, dict(OPTIONS, signal_variance=1e6))


# Bug 3: log1p(abs(x)) gave NaN. abs(x) is non-negative, but its moments
# describe a Gaussian with mass below -1, where log1p is undefined: the
# quadrature returned NaN and initialize_model raised.


def test_log_of_a_non_negative_signal():
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.ops.log1p(keras.ops.abs(inputs)))
    messages = check_initialization(model, OPTIONS)
    assert causes(messages) == ["outside_domain"]


def test_sqrt_of_abs():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, L.Dense(3)(keras.ops.sqrt(keras.ops.abs(L.Dense(3)(inputs)))))
    check_initialization(model, OPTIONS)


# Bug 4: signal_variance=1e300 (or input_data_var=1e300) drew infinite
# weights: the weight standard deviation overflowed float32 in the draw.
# Now moments beyond float32's range are a ValueError, and weight variances
# are clamped to the float32-safe range in one place (plan_weight), including
# the ones Embedding and the recurrent kernels plan without
# scaled_output_variance.


def test_largest_signal_variance_gives_finite_weights():
    tokens = keras.Input((4,), dtype="int32")
    sequence = L.Embedding(8, 4)(tokens)
    model = keras.Model(tokens, L.Dense(4)(L.SimpleRNN(3)(sequence)))
    messages = check_initialization(model, dict(OPTIONS, signal_variance=MOMENT_LIMIT))
    assert "weight_variance" in causes(messages)
    with pytest.raises(ValueError, match="float32"):
        AutoInit(signal_variance=1e300)


# Bug 5: warnings of wrapped estimators were lost. TimeDistributed and
# Bidirectional estimate through inner estimators whose warnings nobody
# read; a dead input into TimeDistributed(Dense) was silently fan-in scaled.


def test_warnings_of_wrapped_layers_are_reported():
    inputs = keras.Input((3, 4))
    model = keras.Model(inputs, L.TimeDistributed(L.Dense(4), name="wrapped")(inputs))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AutoInit(input_data_mean=0.0, input_data_var=0.0, **OPTIONS).initialize_model(model)
    messages = [w.message for w in caught if getattr(w.message, "cause", None) == "vanishing_input"]
    assert len(messages) == 1 and "'dense" in str(messages[0])


# Bug 6: estimates differed between backends in the 8th digit (the
# quadrature evaluated activations with each backend's float32 kernels), so
# the same seed gave different weights on TensorFlow, JAX and PyTorch. Now
# Keras's activations and elementwise ops are evaluated by float64 numpy
# twins; tests/core/test_reliability.py checks the weights' hashes across
# backends and each twin against Keras.


def test_quadrature_does_not_depend_on_the_backend_kernels():
    from autoinit_nas.estimators.activations import NUMPY_ACTIVATIONS, evaluate

    x = np.linspace(-3.0, 3.0, 13)
    for function in (keras.activations.gelu, keras.activations.tanh, keras.activations.silu):
        assert np.array_equal(evaluate(function, x), NUMPY_ACTIVATIONS[function](x))
    inputs = keras.Input((3,))
    node = keras.ops.tanh(inputs)._keras_history.operation._inbound_nodes[0]
    from autoinit_nas.estimators.ops import _single_tensor_function

    assert np.array_equal(evaluate(_single_tensor_function(node), x), np.tanh(x))


def test_check_initialization_accepts_estimates_of_every_layer():
    # Sanity of the property helper itself: a plain model passes it.
    inputs = keras.Input((4,))
    model = keras.Model(inputs, L.Dense(2)(inputs))
    assert check_initialization(model, OPTIONS) == []
    assert all(math.isfinite(float(np.sum(w))) for w in model.get_weights())


# Bug 7: a falsy non-bool safe_mode (0, "", None) switched safe mode off, so a
# config's Lambda layers were loaded. Now safe_mode must be True or False.


@pytest.mark.parametrize("value", [0, "", None])
def test_falsy_safe_mode_is_refused(value):
    inputs = keras.Input((2,))
    config = keras.Model(inputs, L.Lambda(lambda t: t * 2.0, output_shape=(2,))(inputs)).to_json()
    with pytest.raises(TypeError, match="`safe_mode` must be True or False"):
        AutoInit().initialize_model(config, safe_mode=value)


# Fuzz example (make fuzz, 10,000, at e58b1c0): Dense(2, activation="glu") runs
# with a last axis of 1 but Keras declares 2; matmul(t, t^T) makes the model's
# output agree with its declaration again, so the generator's output check let
# it through. The probe must name the layer and fall back, not raise.


def test_a_layer_that_runs_with_another_shape_falls_back_by_name():
    inputs = keras.Input((1, 1))
    gated = L.Dense(2, activation="glu", use_bias=False, name="gated")(inputs)
    square = keras.ops.matmul(gated, keras.ops.transpose(gated, (0, 2, 1)))
    model = keras.Model(inputs, L.Dense(1, name="head")(square))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autoinit = AutoInit(weight_init_config={"seed": 0})
        autoinit.initialize_model(model)
    texts = [str(w.message) for w in caught if "probe_unavailable" in str(getattr(w.message, "cause", ""))]
    assert autoinit.propagation_used == "scalar"
    assert any("'gated'" in text and "on the probe batch but declares" in text for text in texts), texts
    check_initialization(model, {"weight_init_config": {"seed": 0}})
