"""Property: AutoInit initializes every valid architecture, finitely, on the propagation asked for.

For random valid Keras 3 models (``strategies.architectures``: Keras builds
them and runs them on a small batch) and random AutoInit options,
``initialize_model``:

* never raises;
* leaves every weight finite;
* returns finite estimates with non-negative variances;
* needs no pass-through fallback (every layer in the space has an estimator);
* warns at most once per cause;
* under probe propagation, runs the probe (``propagation_used == "probe"``):
  a ``probe_unavailable`` fallback to scalar fails the property, with two
  documented exceptions. Overflow: declared moments can be extreme (input
  mean 1e3, ``exp`` nodes), and a probe whose values overflow float32 has
  nothing to measure; scalar propagation's clamps handle those models
  (``test_overflow_falls_back_to_scalar_propagation``). A contradicted
  shape: a layer that runs with another shape than Keras declares for it
  (``Dense(2, activation="glu")`` halves its last axis) in a graph whose
  outputs still agree with their declarations (the generator rejects the
  others); the probe names the layer and falls back
  (``test_a_layer_that_runs_with_another_shape_falls_back_by_name``).

``make test`` runs 100 examples; ``make fuzz`` runs
``AUTOINIT_FUZZ_EXAMPLES`` (10,000 there), from ``AUTOINIT_FUZZ_SEED`` if set.
Without a seed examples are derandomized, so a run is reproducible; a
failure prints the source of the failing model. The counts (examples,
fallbacks, graphs Keras refused) are printed at the end of the session
(``tests/fuzz/conftest.py``).
"""

import math
import os
import time
import warnings

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import HypothesisDeprecationWarning

from autoinit_nas import AutoInit
from autoinit_nas.maths.sanitize import AutoInitWarning
from tests.conftest import to_numpy
from tests.fuzz.strategies import fuzz_examples

EXAMPLES = int(os.environ.get("AUTOINIT_FUZZ_EXAMPLES", "100"))
# A seed explores a different stream of examples; without one the run is
# derandomized (the same examples every time).
SEED = os.environ.get("AUTOINIT_FUZZ_SEED")
# Keras draws default seeds for initializers and dropout layers from Python's
# `random` while a case is built; that does not change which model is drawn.
# (tests/fuzz/conftest.py adds the same filter to pytest's own.)
warnings.filterwarnings("ignore", message="Do not use the `random` module", category=HypothesisDeprecationWarning)
# What the session ran, for the report printed by tests/fuzz/conftest.py.
COUNT = {"examples": 0, "layers": 0, "probe": 0, "overflow": 0, "contradicted": 0, "started": None}
# The fallbacks the property accepts: the probe's values overflowed, or a
# layer ran with another shape than it declares.
OVERFLOW = "are not finite"
CONTRADICTED = "on the probe batch but declares"


def check_initialization(model, options):
    """Initialize ``model`` and assert the reliability properties; returns the warnings.

    Under probe propagation the probe must have run (``propagation_used``),
    unless its values overflowed or a layer ran with another shape than it
    declares, which must then say so and fall back to scalar propagation.
    """
    autoinit = AutoInit(**options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        initialized, estimates = autoinit.initialize_model(model, return_estimates=True)
    assert initialized is model
    for weight in model.weights:
        values = to_numpy(weight)
        assert np.isfinite(values).all(), f"non-finite values in weight {weight.path}"
    for name, (mean, var) in estimates.items():
        assert math.isfinite(mean) and math.isfinite(var), f"estimate {name}: ({mean}, {var})"
        assert var >= 0.0, f"estimate {name}: negative variance {var}"
    ours = [w.message for w in caught if isinstance(w.message, AutoInitWarning)]
    causes = [message.cause for message in ours]
    assert "unsupported" not in causes, [str(m) for m in ours]
    assert len(causes) == len(set(causes)), [str(m) for m in ours]
    fallbacks = [str(m) for m in ours if m.cause == "probe_unavailable"]
    asked = options.get("propagation", "probe")
    if asked == "scalar":
        assert not fallbacks, fallbacks
        assert autoinit.propagation_used == "scalar"
    elif fallbacks:
        contradicted = all(CONTRADICTED in text for text in fallbacks)
        assert contradicted or all(OVERFLOW in text for text in fallbacks), f"the probe gave up: {fallbacks}"
        assert autoinit.propagation_used == "scalar"
        COUNT["contradicted" if contradicted else "overflow"] += 1
    else:
        assert autoinit.propagation_used == "probe"
        COUNT["probe"] += 1
    return ours


def _seeded(test):
    return seed(int(SEED))(test) if SEED else test


@_seeded
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not SEED,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(example=fuzz_examples())
def test_initialize_model_never_fails_on_valid_architectures(example):
    case, options = example
    if COUNT["started"] is None:
        COUNT["started"] = time.perf_counter()
    check_initialization(case.model, options)
    COUNT["examples"] += 1
    COUNT["layers"] += len(case.model.layers)


def test_overflow_falls_back_to_scalar_propagation():
    """The property's one accepted fallback, asserted: exp of inputs with mean 1e3
    overflows float32 on the probe, so AutoInit says so (``probe_unavailable``,
    "not finite") and initializes on scalar propagation, whose clamps keep
    every weight and estimate finite."""
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="tanh", name="after")(keras.ops.exp(inputs))
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(hidden))
    options = {"weight_init_config": {"seed": 0}, "input_data_mean": 1e3, "propagation": "probe"}
    messages = check_initialization(model, options)
    fallbacks = [str(m) for m in messages if m.cause == "probe_unavailable"]
    assert len(fallbacks) == 1 and OVERFLOW in fallbacks[0], [str(m) for m in messages]
    # The same model at ordinary input moments stays on the probe.
    autoinit = AutoInit(weight_init_config={"seed": 0})
    with warnings.catch_warnings():
        warnings.simplefilter("error", AutoInitWarning)
        autoinit.initialize_model(model)
    assert autoinit.propagation_used == "probe"


def test_a_probe_failure_that_is_not_overflow_fails_the_property(monkeypatch):
    """The property cannot pass a probe that silently gives up (here: every Dense fails on it)."""
    def failing(self, *args, **kwargs):
        raise RuntimeError("injected")

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    monkeypatch.setattr(keras.layers.Dense, "call", failing)
    with pytest.raises(AssertionError, match="the probe gave up"):
        check_initialization(model, {"weight_init_config": {"seed": 0}})
