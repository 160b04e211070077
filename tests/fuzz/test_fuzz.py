"""Property: AutoInit initializes every valid architecture, finitely.

For random valid Keras 3 models (``strategies.architectures``) and random
AutoInit options, ``initialize_model``:

* never raises;
* leaves every weight finite;
* returns finite estimates with non-negative variances;
* needs no pass-through fallback (every layer in the space has an estimator);
* warns at most once per cause.

``make test`` runs 1,000 examples; ``make fuzz`` runs
``AUTOINIT_FUZZ_EXAMPLES`` (10,000 there), from ``AUTOINIT_FUZZ_SEED`` if set.
Without a seed examples are derandomized, so a run is reproducible; a
failure prints the source of the failing model.
"""

import math
import os
import time
import warnings

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import HypothesisDeprecationWarning

from autoinit_nas import AutoInit
from autoinit_nas.maths.sanitize import AutoInitWarning
from tests.conftest import to_numpy
from tests.fuzz.strategies import REJECTED, fuzz_examples

EXAMPLES = int(os.environ.get("AUTOINIT_FUZZ_EXAMPLES", "1000"))
# A seed explores a different stream of examples; without one the run is
# derandomized (the same examples every time).
SEED = os.environ.get("AUTOINIT_FUZZ_SEED")
# Keras draws default seeds for initializers and dropout layers from Python's
# `random` while a case is built; that does not change which model is drawn.
# (tests/fuzz/conftest.py adds the same filter to pytest's own.)
warnings.filterwarnings("ignore", message="Do not use the `random` module", category=HypothesisDeprecationWarning)
_COUNT = {"examples": 0, "layers": 0, "started": None}


def check_initialization(model, options):
    """Initialize ``model`` and assert the reliability properties; returns the warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        initialized, estimates = AutoInit(**options).initialize_model(model, return_estimates=True)
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
    if _COUNT["started"] is None:
        _COUNT["started"] = time.perf_counter()
    check_initialization(case.model, options)
    _COUNT["examples"] += 1
    _COUNT["layers"] += len(case.model.layers)


def test_report_fuzz_count():
    """Prints how many examples the property test ran (shown with -s, e.g. by ``make fuzz``)."""
    if _COUNT["started"] is None:
        return
    seconds = time.perf_counter() - _COUNT["started"]
    print(
        f"\nfuzz: {_COUNT['examples']} architectures ({_COUNT['layers']} top-level layers) "
        f"initialized in {seconds:.0f} s; {sum(REJECTED.values())} drawn graphs Keras could not build"
    )
    for reason, count in sorted(REJECTED.items(), key=lambda item: -item[1]):
        print(f"  {count} x {reason}")
