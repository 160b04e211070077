"""Every registered estimator at vanishing and at huge input variance.

The contract (``autoinit_nas.maths.sanitize``): whatever finite moments a walk
hands an estimator, it returns moments that ``checked_moments`` accepts (no
NaN, no negative variance; infinities and values beyond float32 are clamped
with the documented ``overflow`` warning), and every weight variance it plans
is finite and inside ``WEIGHT_VARIANCE_LIMITS`` (a dead input gets fan-in
scaling with the ``vanishing_input`` warning). No exception is expected: the
scalar walk has no fallback for one, so any exception here reaches the user.

Estimators never receive infinite moments: ``checked_moments`` clamps every
estimate to +-MOMENT_LIMIT before the next layer reads it, and the probe
gives up (falling back to scalar) on a non-finite measurement. So the huge
end of the grid is MOMENT_LIMIT itself, not inf.

The classes come from the registry, each called once in a minimal model
(``layer_recipes``); a class with no recipe is a skip that says what was
tried, never a silent gap.
"""

import math
import warnings

import keras
import numpy as np
import pytest
from keras.src.ops import math as kmath
from keras.src.ops import numpy as knp

from autoinit_nas import AutoInit
from autoinit_nas.core import graph, weights
from autoinit_nas.estimators.cache import EstimateCache
from autoinit_nas.estimators.registry import EstimatorRegistry, builtin_estimators
from autoinit_nas.maths.sanitize import (
    MOMENT_LIMIT,
    WEIGHT_VARIANCE_LIMITS,
    AutoInitWarning,
    Diagnostics,
    checked_moments,
)
from tests.estimators.layer_recipes import NoRecipe, node_for

# Small samples: these tests check finiteness, not accuracy.
CONFIG = {"monte_carlo_samples": 20_000, "recurrent_monte_carlo_samples": 200, "seed": 0}
VANISHING = [(0.0, 0.0), (0.0, 1e-30), (1.4e-7, 1.2e-13), (-3e-9, 1e-13)]
HUGE = [(0.0, 1e12), (0.0, 1e30), (1e15, 1e30), (0.0, MOMENT_LIMIT), (-1e19, MOMENT_LIMIT),
        (3e19, 0.0), (-MOMENT_LIMIT, 1.0)]
HEALTHY = (0.3, 1.0)


def _classes():
    mapping = builtin_estimators()
    return sorted(mapping.items(), key=lambda item: (item[0].__module__, item[0].__name__))


def _estimator(estimator_class, node):
    """The estimator as AutoInit sets it up for ``node`` (``core.autoinit._Call.estimator_for``)."""
    estimator = estimator_class(node.operation, CONFIG, 1.0)
    estimator.cache = EstimateCache()
    estimator.registry = EstimatorRegistry()
    estimator.diagnostics = Diagnostics()
    estimator.node = node
    estimator.input_tensors = graph.signal_tensors(node) if not node.is_input else []
    estimator.input_shapes = [tuple(t.shape) for t in estimator.input_tensors] or [
        tuple(t.shape) for t in node.outputs
    ]
    estimator.output_shapes = [tuple(t.shape) for t in node.outputs]
    return estimator


def check_degenerate(estimator_class, node, mean, var, only=None):
    """Call a fresh estimator at (mean, var) on every input (or input ``only``); check the contract.

    With ``only`` the other inputs are healthy, (0.3, 1.0).
    """
    estimator = _estimator(estimator_class, node)
    count = max(len(estimator.input_tensors), 1)
    moments = [(mean, var) if only is None or i == only else HEALTHY for i in range(count)]
    label = f"{estimator_class.__name__} on {type(node.operation).__name__} at {moments}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy overflow inside a clamped result
        result = estimator.estimate([m for m, _ in moments], [v for _, v in moments])
    checked = checked_moments(result, estimator_class.__name__, label, len(node.outputs),
                              estimator.diagnostics)
    for out_mean, out_var in checked:
        assert math.isfinite(out_mean) and math.isfinite(out_var) and out_var >= 0.0, (label, checked)
    low, high = WEIGHT_VARIANCE_LIMITS
    for attribute, (variance, fan_in, fan_out) in getattr(estimator, "weight_plan", {}).items():
        assert low <= variance <= high, (label, attribute, variance)
        assert fan_in >= 1 and fan_out >= 1, (label, attribute, fan_in, fan_out)
    return estimator


@pytest.fixture(scope="module")
def nodes():
    """Layer class -> its node, or the NoRecipe message; built once for the module."""
    built = {}
    for layer_class, _ in _classes():
        try:
            built[layer_class] = node_for(layer_class)
        except NoRecipe as reason:
            built[layer_class] = str(reason)
    return built


@pytest.mark.parametrize(
    "layer_class, estimator_class", _classes(),
    ids=[f"{c.__module__.split('.')[-1]}.{c.__name__}" for c, _ in _classes()],
)
@pytest.mark.parametrize("regime, grid", [("vanishing", VANISHING), ("huge", HUGE)])
def test_estimator_survives_degenerate_input(nodes, layer_class, estimator_class, regime, grid):
    node = nodes[layer_class]
    if isinstance(node, str):
        pytest.skip(node)
    failures = []
    count = 1 if node.is_input else len(graph.signal_tensors(node))
    for mean, var in grid:
        # All inputs degenerate; then each one alone (the others healthy).
        for only in [None] + (list(range(count)) if count > 1 else []):
            try:
                check_degenerate(estimator_class, node, mean, var, only)
            except Exception as error:  # collect every failing point, not only the first
                failures.append(f"({mean}, {var}) on input {'all' if only is None else only}: "
                                f"{type(error).__name__}: {str(error)[:300]}")
    assert not failures, "\n".join(failures)


def test_every_registered_class_has_a_recipe(nodes):
    """The skips above are the exception: a new registered class needs a recipe in layer_recipes."""
    missing = {cls.__name__: reason for cls, reason in nodes.items() if isinstance(reason, str)}
    assert not missing, missing


def test_vanishing_input_keeps_the_unit_input_scale():
    """A dead input gets the weights a unit-power input would get, with a warning naming the layer.

    Dense(3) on E[x^2] ~ 1e-13 plans s = 1 / fan_in (what E[x^2] = 1 gives);
    a SimpleRNN's recurrent kernel gets the gain it gets at a matched input.
    """
    dense = node_for(keras.layers.Dense)
    estimator = check_degenerate(type(_registry_estimator(dense)), dense, 1.4e-7, 1.2e-13)
    variance, fan_in, _ = estimator.weight_plan["kernel"]
    assert variance == pytest.approx(1.0 / fan_in, rel=1e-12)
    assert "vanishing_input" in estimator.diagnostics.causes

    rnn = node_for(keras.layers.SimpleRNN)
    estimator_class = type(_registry_estimator(rnn))
    dead = check_degenerate(estimator_class, rnn, 0.0, 1e-13)
    matched = check_degenerate(estimator_class, rnn, 0.0, 1.0)
    # The same seeded chains solved at the same drive sv / 2: the same gain, to rounding.
    assert dead.weight_plan["cell.recurrent_kernel"][0] == pytest.approx(
        matched.weight_plan["cell.recurrent_kernel"][0], rel=1e-9)
    assert "vanishing_input" in dead.diagnostics.causes


def _registry_estimator(node):
    return EstimatorRegistry().lookup(type(node.operation))(node.operation, CONFIG, 1.0)


def _narrow_chain_rnn():
    x = inputs = keras.Input((5, 2))
    for units in (2, 1, 2, 1):
        x = keras.layers.Dense(units, activation="relu")(x)
    return keras.Model(inputs, keras.layers.SimpleRNN(1, activation="relu", name="rnn")(x))


@pytest.mark.parametrize("propagation", ["scalar", "probe"])
@pytest.mark.parametrize("seed", [0, 1])
def test_issue_22_narrow_chain_into_relu_rnn(propagation, seed):
    """The fuzz failure of issue 22: Dense(1..2) chain -> SimpleRNN(1, relu) at input variance 1.2e-13."""
    model = _narrow_chain_rnn()
    autoinit = AutoInit(propagation=propagation, input_data_mean=1.4e-7, input_data_var=1.2e-13,
                        weight_init_config={"seed": seed, "recurrent_monte_carlo_samples": 500})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, estimates = autoinit.initialize_model(model, return_estimates=True)
    for weight in model.weights:
        values = keras.ops.convert_to_numpy(weight)
        assert (abs(values) < math.inf).all(), weight.path
    assert all(math.isfinite(m) and math.isfinite(v) and v >= 0 for m, v in estimates.values())
    vanishing = [w.message for w in caught
                 if isinstance(w.message, AutoInitWarning) and w.message.cause == "vanishing_input"]
    assert vanishing and "rnn" in vanishing[0].layers


@pytest.mark.parametrize("variance", [float("nan"), float("inf"), -1e-3])
def test_weight_draw_refuses_a_non_finite_plan(variance):
    """The plan -> draw step (``core.weights``) never turns a bad variance into NaN weights."""
    with pytest.raises(ValueError, match="Received: variance="):
        weights.draw("truncated_normal", variance, (3, 2), seed=0)


@pytest.mark.parametrize("mean, var", VANISHING[:2] + HUGE[-2:])
@pytest.mark.parametrize("distribution", weights.DISTRIBUTIONS)
def test_degenerate_plan_draws_finite_non_zero_weights(mean, var, distribution):
    """Dense at a dead or overflowing input: the planned kernel draws finite, non-zero float32 values."""
    dense = node_for(keras.layers.Dense)
    estimator = check_degenerate(type(_registry_estimator(dense)), dense, mean, var)
    variance, _, _ = estimator.weight_plan["kernel"]
    values = weights.draw(distribution, variance, tuple(dense.operation.kernel.shape), seed=0)
    assert np.isfinite(values).all() and (values != 0).any(), (variance, values)


def _mixed_model():
    inputs = keras.Input((6, 4))
    x = keras.layers.Conv1D(3, 2, activation="relu")(inputs)
    x = keras.layers.LSTM(3, return_sequences=True)(x)
    x = keras.layers.MultiHeadAttention(2, 2)(x, x)
    x = keras.layers.SimpleRNN(2, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="selu")(x))


@pytest.mark.parametrize("propagation", ["scalar", "probe"])
@pytest.mark.parametrize("mean, var", [(0.0, 0.0), (0.0, 1e-30), (0.0, 1e30)])
def test_initialize_model_at_degenerate_data(propagation, mean, var):
    """End to end: data of zero, vanishing or huge variance initializes without an exception."""
    autoinit = AutoInit(propagation=propagation, input_data_mean=mean, input_data_var=var,
                        weight_init_config={"seed": 0, "recurrent_monte_carlo_samples": 300,
                                            "monte_carlo_samples": 20_000})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutoInitWarning)
        model, estimates = autoinit.initialize_model(_mixed_model(), return_estimates=True)
    for weight in model.weights:
        assert np.isfinite(keras.ops.convert_to_numpy(weight)).all(), weight.path
    assert all(math.isfinite(m) and math.isfinite(v) and v >= 0 for m, v in estimates.values())


@pytest.mark.parametrize("op_class, edge_value", [
    (knp.Sqrt, 0.0), (knp.Log, -MOMENT_LIMIT), (knp.Log1p, -MOMENT_LIMIT), (kmath.Rsqrt, MOMENT_LIMIT),
])
@pytest.mark.parametrize("mean, var", [(-MOMENT_LIMIT, 1.0), (-50.0, 1.0), (-2.0, 0.0)])
def test_input_wholly_outside_the_domain_takes_the_edge(op_class, edge_value, mean, var):
    """log / sqrt of an input with no mass in their domain: f(edge), variance 0, cause outside_domain.

    (The real layer outputs NaN there; an infinite f(edge) is clamped as an overflow.)
    """
    node = node_for(op_class)
    estimator = check_degenerate(EstimatorRegistry().lookup(op_class), node, mean, var)
    result = checked_moments(estimator.estimate([mean], [var]), "estimator", "op", 1, Diagnostics())
    assert result == [(edge_value, 0.0)]
    assert "outside_domain" in estimator.diagnostics.causes
