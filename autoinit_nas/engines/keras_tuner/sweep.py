"""The keras-tuner sweep driver: ``RandomSearch``, ``BayesianOptimization`` or ``Hyperband`` around ``AutoInitHyperModel``.

Under Hyperband, ``max_epochs`` is the spec's ``epochs`` and ``trials`` caps
the trials run, continuations included (a continuation trains a candidate
already seen on from its checkpoint): Hyperband runs its brackets, iteration
after iteration, until that many trials have run.

A driver gets a sweep context (spec, dataset, build, store folder, and a
``trial_finished`` hook) and leaves one record per trial in its store.
"""

import contextlib
import io
import os
import time
import warnings

import keras_tuner

from autoinit_nas.engines.keras_tuner.hypermodel import AutoInitHyperModel
from autoinit_nas.engines.keras_tuner.options import DEFAULTS, TUNERS
from autoinit_nas.engines.keras_tuner.space import hyperparameters_from_overrides
from autoinit_nas.trials import records


class KerasTunerEngine:
    """keras-tuner around ``AutoInitHyperModel``, resumable.

    The project is the context's store, reopened with ``overwrite=False`` on
    reruns, so keras-tuner itself skips finished trials and reruns the one in
    flight. Its own output is silenced (``verbose=0``).

    Example:
        >>> KerasTunerEngine.name, KerasTunerEngine.folder
        ('keras-tuner', 'keras_tuner')
    """

    name = "keras-tuner"
    folder = "keras_tuner"

    def run(self, context):
        """Train the missing trials of ``context.spec``; reports each through ``context.trial_finished``."""
        spec = context.spec
        tuner = _open_tuner(context)
        context.done_before = sum(
            1 for trial in tuner.oracle.trials.values() if trial.status not in ("RUNNING", "IDLE")
        )
        if context.done_before >= spec.trials:
            return
        (x, y), validation = context.dataset.train, context.dataset.validation
        with warnings.catch_warnings():
            # Hyperband reloads a checkpoint's weights, not its optimizer state (keras-tuner's choice), so
            # Keras warns on every continuation; the optimizer restarts for every arm alike (docs/engines.md).
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            tuner.search(x, y, validation_data=validation, epochs=spec.epochs, batch_size=spec.batch_size,
                         verbose=0)


def _open_tuner(context):
    spec = context.spec
    options = getattr(context, "options", None) or {}
    base, search_arguments = _algorithm(options.get("tuner") or "random", spec, options)
    tuner_class = type(f"Progress{base.__name__}", (_ProgressMixin, base), {})
    arms = getattr(spec, "arms", None)
    hypermodel = AutoInitHyperModel(context.build, init="autoinit" if arms else spec.init, seed=spec.seed,
                                    autoinit=getattr(context, "autoinit", None), arms=arms)
    with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..."
        tuner = tuner_class(
            hypermodel,
            objective=keras_tuner.Objective(spec.objective, spec.direction),
            **search_arguments,
            hyperparameters=hyperparameters_from_overrides(spec.hyperparameters),
            tune_new_entries=True,
            # keras-tuner treats seed 0 as "no seed" (``seed or random``), so shift by
            # one: every seed, 0 included, fixes the architectures.
            seed=spec.seed + 1,
            max_consecutive_failed_trials=None,  # diverged candidates are data, not failures
            directory=os.path.dirname(context.store),
            project_name=os.path.basename(context.store),
            overwrite=False,
        )
    if base is keras_tuner.Hyperband:  # its constructor takes no max_trials: cap the oracle
        tuner.oracle.max_trials = spec.trials
    tuner.sweep_context = context
    # keras-tuner writes its state (tuner0.json) only when a trial ends; write it now so a
    # crash in the first trial also resumes, rerunning that trial with its hyperparameters.
    tuner.save()
    return tuner


def _algorithm(name, spec, options):
    """The keras-tuner class of search algorithm ``name`` and its own constructor arguments.

    Example:
        >>> from types import SimpleNamespace
        >>> base, arguments = _algorithm("hyperband", SimpleNamespace(epochs=9, trials=20), {"hyperband_factor": 3})
        >>> base.__name__, arguments
        ('Hyperband', {'max_epochs': 9, 'factor': 3, 'hyperband_iterations': None})
    """
    if name == "hyperband":
        factor = options.get("hyperband_factor") or DEFAULTS["hyperband_factor"]
        # No iteration limit: the oracle stops at ``spec.trials`` trials (set once it is built).
        return keras_tuner.Hyperband, {"max_epochs": spec.epochs, "factor": factor, "hyperband_iterations": None}
    if name not in TUNERS:
        raise ValueError(f"`tuner` must be one of {TUNERS}. Received: tuner={name!r}")
    base = {"random": keras_tuner.RandomSearch, "bayesian": keras_tuner.BayesianOptimization}[name]
    return base, {"max_trials": spec.trials}


class _ProgressMixin:
    """Times each trial and reports it, from its record on disk, when it ends."""

    sweep_context = None

    def on_trial_begin(self, trial):
        self._trial_started = time.perf_counter()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        context = self.sweep_context
        if context is None:
            return
        seconds = time.perf_counter() - getattr(self, "_trial_started", time.perf_counter())
        record = records.read_record(self.get_trial_dir(trial.trial_id))
        error = None
        if str(trial.status) in ("FAILED", "INVALID") and (record is None or record.get("status") == "running"):
            error = records.last_line(trial.message) or "failed"
        context.trial_finished(record, trial_id=trial.trial_id, seconds=seconds, error=error)
