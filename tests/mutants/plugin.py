"""Fault injection for ``make mutants``: a pytest plugin that breaks one thing, no source edits.

Load it with ``-p tests.mutants.plugin`` and name the fault in the
``AUTOINIT_MUTANT`` environment variable; without it the plugin does
nothing. Each fault (``MUTANTS``) is a monkeypatch applied when pytest
starts and undone when it ends, and names the tests that must turn red
(``targets``); ``tests/mutants/run.py`` runs each one and counts the
catches. A fault whose target no longer exists fails loudly (a usage
error), so a rename cannot make a mutant silently harmless.

Example:
    AUTOINIT_MUTANT=std_off_20 python -m pytest -p tests.mutants.plugin tests/core/test_weights.py
"""

import importlib
import os
import random
import sys

import pytest

ENV = "AUTOINIT_MUTANT"
_PATCH = pytest.MonkeyPatch()


def _replace_everywhere(original, replacement):
    """Point every loaded project module's name for ``original`` at ``replacement``."""
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("autoinit_nas", "experiments", "tests")):
            continue
        for attribute, value in list(vars(module).items()):
            if value is original:
                _PATCH.setattr(module, attribute, replacement)


def _fail_on_probe(*classes):
    """While the probe runs, the given Keras layer classes raise when called."""
    import keras  # noqa: F401 - the classes below are Keras's

    from autoinit_nas.core import probe

    original_run = probe.ProbePropagation.run

    def failing_call(self, *args, **kwargs):
        raise RuntimeError(f"mutant: {type(self).__name__} fails on the probe")

    def run(self, *args, **kwargs):
        patch = pytest.MonkeyPatch()
        for cls in classes:
            patch.setattr(cls, "call", failing_call)
        try:
            return original_run(self, *args, **kwargs)
        finally:
            patch.undo()

    _PATCH.setattr(probe.ProbePropagation, "run", run)


def probe_fails_dense():
    import keras

    _fail_on_probe(keras.layers.Dense)


def probe_fails_merge():
    import keras

    _fail_on_probe(keras.layers.Add, keras.layers.Concatenate)


def std_off_20():
    """Truncated-normal weights drawn with a standard deviation 20 % too large."""
    from autoinit_nas.core import weights

    _PATCH.setattr(weights, "TRUNCATED_NORMAL_STD", weights.TRUNCATED_NORMAL_STD / 1.2)


def pooling_variance_doubled():
    """AveragePooling's estimator predicts twice the variance."""
    from autoinit_nas.estimators.pooling import AveragePoolingEstimator

    original = AveragePoolingEstimator.estimate

    def estimate(self, means_in, vars_in):
        mean, var = original(self, means_in, vars_in)
        return mean, 2.0 * var

    _PATCH.setattr(AveragePoolingEstimator, "estimate", estimate)


def seed_ignored():
    """``weight_init_config["seed"]`` ignored: weight seeds come from a fresh random base."""
    from autoinit_nas.core import weights

    original = weights.weight_seeds

    def weight_seeds(base_seed, count):
        return original(random.SystemRandom().randrange(2**31), count)

    _replace_everywhere(original, weight_seeds)


RECORD_MODULES = ("autoinit_nas.trials.records", "autoinit_nas.integrations.records")


def record_field_dropped():
    """Records are written without their ``seed`` (in whichever record module exists now)."""
    modules = [module for module in map(_try_import, RECORD_MODULES) if hasattr(module, "write_record")]
    if not modules:
        raise ImportError(f"none of {RECORD_MODULES} has write_record")
    for original in {id(m.write_record): m.write_record for m in modules}.values():
        _replace_everywhere(original, _without_seed(original))


def _without_seed(original):
    def write_record(directory, record):
        written = {key: value for key, value in record.items() if key != "seed"}
        path = original(directory, written)
        record["updated_at"] = written.get("updated_at")
        return path

    return write_record


def _try_import(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


FUZZ = "tests/fuzz/test_fuzz.py::test_initialize_model_never_fails_on_valid_architectures"
FIDELITY = "tests/test_fidelity_regression.py"
# name: (fault, description, tests that must turn red)
MUTANTS = {
    "probe_fails_dense": (probe_fails_dense, "the probe fails on every Dense layer",
                          [FUZZ, "tests/e2e/test_final_variance.py", FIDELITY]),
    "probe_fails_merge": (probe_fails_merge, "the probe fails on Add and Concatenate",
                          [FUZZ, "tests/e2e/test_final_variance.py", FIDELITY]),
    "std_off_20": (std_off_20, "truncated-normal std 20 % too large",
                   ["tests/core/test_weights.py"]),
    "pooling_variance_doubled": (pooling_variance_doubled, "AveragePooling variance doubled",
                                 ["tests/estimators/test_pooling.py"]),
    "seed_ignored": (seed_ignored, "the weight seed is ignored", ["tests/core/test_weights.py"]),
    "record_field_dropped": (record_field_dropped, "records written without their seed",
                             ["tests/integrations/test_records.py", "tests/trials"]),
}


def pytest_configure(config):
    name = os.environ.get(ENV)
    if not name:
        return
    if name not in MUTANTS:
        raise pytest.UsageError(f"{ENV}={name!r} is not a mutant. Expected one of: {sorted(MUTANTS)}")
    try:
        MUTANTS[name][0]()
    except (AttributeError, ImportError) as error:
        raise pytest.UsageError(f"mutant {name} cannot be applied: {error}") from error
    _no_shrinking()


def _no_shrinking():
    """A mutant needs one failing example, not the smallest: skip Hypothesis's shrink phase."""
    from hypothesis import Phase, settings

    settings.register_profile("mutant", phases=[Phase.explicit, Phase.reuse, Phase.generate])
    settings.load_profile("mutant")


def pytest_report_header(config):
    name = os.environ.get(ENV)
    return f"mutant: {name} ({MUTANTS[name][1]})" if name in MUTANTS else None


def pytest_unconfigure(config):
    _PATCH.undo()
