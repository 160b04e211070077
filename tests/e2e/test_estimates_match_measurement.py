"""`return_estimates` agrees with the moments measured through the model.

Tolerance per layer, derived rather than tuned. The prediction is an
expectation over weight draws; the measurement is one draw. A weighted
layer's output variance is the average over its n units of their own second
moments, and units have independent weights, so its relative deviation from
the expectation has standard error sd(unit second moments) / (sqrt(n) * mean),
read off the measurement itself. Deviations of successive weighted layers add
as a random walk in log-variance (each layer's weights were scaled for the
predicted, not the realized, input). Add the sampling error of the variance
over the batch, with examples as the independent draws (the units of one
example share its input, so they are not independent of each other: treating
batch x units values as i.i.d. understated it, and a JAX run failed by 5% of
the tolerance), and allow four combined standard errors.

Probe propagation scales every layer for its realized weights, so the drift
term drops out; its estimates are read from the probe batch instead, whose
sampling error is the measurement's scaled by sqrt(measurement batch / probe
batch) (same distribution, fewer examples).
"""

import math

import keras
import numpy as np
import pytest

from autoinit_nas import AutoInit
from autoinit_nas.core import probe as probe_module
from tests.conftest import to_numpy

WIDTH = 256


def layer_outputs_model(model):
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return layers, keras.Model(model.inputs, [layer.output for layer in layers])


def build(activation, normalization):
    inputs = keras.Input((WIDTH,))
    hidden = inputs
    for index in range(4):
        hidden = keras.layers.Dense(WIDTH)(hidden)
        if normalization:
            hidden = keras.layers.BatchNormalization()(hidden)
        hidden = keras.layers.Activation(activation)(hidden)
        if index == 1:
            hidden = keras.layers.Dropout(0.2)(hidden)
    outputs = keras.layers.Dense(WIDTH)(hidden)
    return keras.Model(inputs, outputs)


def example_sampling_relative_error(values):
    """Standard error of a layer's variance over the batch's independent examples, relative."""
    per_example = np.mean((values - values.mean()) ** 2, axis=1)
    return float(per_example.std() / math.sqrt(per_example.size) / per_example.mean())


def realized_gain_relative_error(values):
    """Standard error of a layer's variance over its independent units, relative."""
    per_unit = np.mean((values - values.mean()) ** 2, axis=0)
    return float(per_unit.std() / math.sqrt(per_unit.size) / per_unit.mean())


@pytest.mark.parametrize("propagation", ["probe", "scalar"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "selu", "sigmoid", "gelu"])
@pytest.mark.parametrize("normalization", [False, True])
def test_every_layer_matches(activation, normalization, propagation):
    autoinit = AutoInit(
        weight_init_config={"seed": 3}, input_data_mean=0.5, input_data_var=2.0,
        propagation=propagation,
    )
    model, estimates = autoinit.initialize_model(build(activation, normalization), return_estimates=True)
    assert autoinit.propagation_used == propagation
    probe_batch = probe_module.batch_size(model)
    layers, probe = layer_outputs_model(model)
    rng = np.random.default_rng(7)
    batch = (0.5 + math.sqrt(2.0) * rng.standard_normal((2048, WIDTH))).astype("float32")
    outputs = probe(batch, training=True)
    drift_squared = 0.0
    for layer, output in zip(layers, outputs):
        values = to_numpy(output)
        mean_pred, var_pred = estimates[layer.name]
        var_meas = float(values.var())
        sampling = example_sampling_relative_error(values)
        if propagation == "scalar":
            if isinstance(layer, keras.layers.Dense):
                drift_squared += realized_gain_relative_error(values) ** 2
            tolerance = 4 * math.sqrt(drift_squared + sampling**2)
        else:
            probe_sampling = sampling * math.sqrt(len(values) / probe_batch)
            tolerance = 4 * math.sqrt(probe_sampling**2 + sampling**2)
        assert abs(math.log(var_meas / var_pred)) <= tolerance, (
            f"{layer.name}: measured variance {var_meas:.4g}, predicted {var_pred:.4g}"
        )
        mean_tolerance = math.sqrt(var_meas) * (tolerance + 4 / math.sqrt(values.size))
        assert abs(values.mean() - mean_pred) <= mean_tolerance, (
            f"{layer.name}: measured mean {values.mean():.4g}, predicted {mean_pred:.4g}"
        )
