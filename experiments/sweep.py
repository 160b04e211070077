"""Sweeps: a search space on an offline dataset, through keras-tuner or Ray Tune, AutoInit vs default.

A sweep trains ``trials`` candidates of a search space (``search_spaces``)
on a dataset (``experiments.datasets``) for ``epochs`` epochs each, with
AutoInit ("autoinit"), Keras's default initializers ("default") or both from
the same seed ("compare"), and leaves everything on disk under ``out``:

```
out/sweep.json        the sweep's settings and runs (what `report` and resuming read)
out/keras_tuner/      keras-tuner's project: trial_<id>/{trial.json, autoinit_record.json, ...}
out/ray/              Ray Tune's experiment: <trial dir>/{params.json, result.json, autoinit_record.json}
```

``autoinit_nas.results.trials_table(out)`` reads it back at any time, also
while the sweep runs or after it crashed. Running the same sweep again on the
same ``out`` resumes it: finished trials are kept, the trial that was in flight
reruns, and raising ``trials`` runs only the missing ones.

Example:

```python
from experiments.sweep import SweepSpec, run_sweep

spec = SweepSpec(space="mlp", data="wine", trials=4, epochs=2, init="compare", out="out/wine",
                 hyperparameters={"depth": {"min": 2, "max": 12}, "units": 32})
sweep = run_sweep(spec)          # prints one line per trial
sweep.table()                    # autoinit_nas.results.trials_table("out/wine")
```

Command line: ``autoinit-nas sweep --help`` (or ``python -m experiments.sweep --help``).

Engines plug in through ``register_engine``: an engine is an object with a
``name``, a ``folder`` (its store under ``out``) and ``run(context)``, which
trains the trials and leaves one record per trial in its store (the engine
adapters of ``autoinit_nas.integrations`` write them) and calls
``context.trial_finished(record_or_None, trial_id, seconds, error)`` after each
trial, for the progress line.
"""

import argparse
import contextlib
import dataclasses
import datetime
import io
import json
import logging
import math
import os
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

INIT_MODES = ("autoinit", "default", "compare")
TUNERS = ("random", "bayesian")
SPEC_FILE = "sweep.json"
# Sweep settings that must match to resume a sweep (trials may grow).
IDENTITY = ("space", "data", "engine", "init", "seed", "epochs", "batch_size", "objective", "limit",
            "hyperparameters", "space_options", "tuner")
# Stop a sweep after this many trials in a row raised an error (divergence does not count).
MAX_CONSECUTIVE_ERRORS = 3


class SweepError(Exception):
    """A sweep that cannot start or go on; the message says why and what to change."""


@dataclasses.dataclass
class SweepSpec:
    """What to sweep, how long, and where to keep it.

    Args:
        space: a ``search_spaces`` name ("mlp", "cnn", ...).
        data: an ``experiments.datasets`` name ("digits", "wine", ...).
        engine: "keras-tuner" or "ray" (see ``engines()``).
        trials: candidates to train in total (a resumed sweep runs the missing ones).
        epochs: training epochs per candidate (and per arm).
        init: "autoinit", "default" or "compare" (both arms per candidate).
        out: the sweep's directory.
        seed: seeds the search, every trial (via the trial's hyperparameters) and the data split.
        batch_size: training batch size.
        objective: metric the search optimizes and reports ("val_accuracy";
            names with "loss" or "error" are minimized).
        limit: at most this many training examples (None: all).
        hyperparameters: narrows the space by name (see ``experiments.configs``).
        space_options: extra keyword arguments of the space factory.
        tuner: keras-tuner's search algorithm, "random" or "bayesian".
        address: Ray cluster address for the ray engine (None: ``RAY_ADDRESS``
            or a local Ray).
        config: the name of the config this spec came from, if any.
        description: one line about the sweep.
    """

    space: str = "mlp"
    data: str = "digits"
    engine: str = "keras-tuner"
    trials: int = 10
    epochs: int = 2
    init: str = "compare"
    out: str = "out/sweep"
    seed: int = 0
    batch_size: int = 64
    objective: str = "val_accuracy"
    limit: int = None
    hyperparameters: dict = dataclasses.field(default_factory=dict)
    space_options: dict = dataclasses.field(default_factory=dict)
    tuner: str = "random"
    address: str = None
    config: str = None
    description: str = ""

    @classmethod
    def from_config(cls, name, **overrides):
        """The spec of the named config (``experiments.configs``), with ``overrides`` (None values ignored)."""
        from experiments import configs

        values = dict(configs.get(name))
        unknown = set(values) - {field.name for field in dataclasses.fields(cls)} - {"out", "config"}
        if unknown:
            raise ValueError(
                f"Sweep config '{name}' has unknown keys {sorted(unknown)}. Expected some of: "
                f"{sorted(field.name for field in dataclasses.fields(cls) if field.name not in ('out', 'config'))}"
            )
        values["config"] = name
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    @property
    def direction(self):
        """"min" for losses and errors, else "max"."""
        name = self.objective.lower()
        return "min" if ("loss" in name or "error" in name) else "max"

    def validate(self):
        """Raise ``ValueError`` naming the first bad field; returns self."""
        import search_spaces

        from experiments import datasets

        if self.space not in search_spaces.names():
            raise ValueError(
                f"Unknown search space '{self.space}'. Expected one of: {', '.join(search_spaces.names())}. "
                f"Received: space={self.space!r}"
            )
        if self.data not in datasets.names(available_only=False):
            raise ValueError(
                f"Unknown dataset '{self.data}'. Expected one of: {', '.join(datasets.names())}. "
                f"Received: data={self.data!r}"
            )
        if self.engine not in ENGINES:
            raise ValueError(
                f"Unknown engine '{self.engine}'. Expected one of: {', '.join(ENGINES)}. Received: engine={self.engine!r}"
            )
        if self.init not in INIT_MODES:
            raise ValueError(f"`init` must be one of {INIT_MODES}. Received: init={self.init!r}")
        if self.tuner not in TUNERS:
            raise ValueError(f"`tuner` must be one of {TUNERS}. Received: tuner={self.tuner!r}")
        for name in ("trials", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"`seed` must be an int. Received: seed={self.seed!r}")
        if not isinstance(self.hyperparameters, dict) or not isinstance(self.space_options, dict):
            raise ValueError("`hyperparameters` and `space_options` must be dicts.")
        for name, value in self.hyperparameters.items():
            _check_hyperparameter(name, value)
        return self

    def identity(self):
        """The fields that must match for a rerun on the same ``out`` to resume this sweep."""
        return {name: getattr(self, name) for name in IDENTITY}


# Hyperparameters.


def _check_hyperparameter(name, value):
    if isinstance(value, (str, int, float, bool)):
        return
    if isinstance(value, list) and value and all(isinstance(v, (str, int, float, bool)) for v in value):
        return
    if isinstance(value, dict) and {"min", "max"} <= set(value) and set(value) <= {"min", "max", "step", "sampling"}:
        return
    raise ValueError(
        f"Hyperparameter '{name}' must be a value (fixed), a non-empty list (a choice) or "
        f'{{"min": ..., "max": ..., "step": ..., "sampling": ...}} (a range). Received: {name}={value!r}'
    )


def keras_tuner_hyperparameters(overrides):
    """A ``keras_tuner.HyperParameters`` declaring ``overrides`` (see ``experiments.configs``).

    Example:
        >>> hp = keras_tuner_hyperparameters({"depth": {"min": 2, "max": 8}, "units": [16, 32],
        ...                                   "normalization": "none"})
        >>> [(h.name, type(h).__name__) for h in hp.space]
        [('depth', 'Int'), ('units', 'Choice'), ('normalization', 'Fixed')]
    """
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, value in overrides.items():
        _check_hyperparameter(name, value)
        if isinstance(value, list):
            hp.Choice(name, value)
        elif isinstance(value, dict):
            low, high = value["min"], value["max"]
            whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high))
            options = {key: value[key] for key in ("step", "sampling") if key in value}
            if whole and not isinstance(options.get("step", 1), float):
                hp.Int(name, low, high, **options)
            else:
                hp.Float(name, float(low), float(high), **options)
        else:
            hp.Fixed(name, value)
    return hp


def space_hyperparameters(build):
    """Names of the hyperparameters ``build`` registers (from one default build)."""
    import keras
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    build(hp)
    keras.backend.clear_session()
    return list(hp.values)


# Engines.


@dataclasses.dataclass
class SweepContext:
    """What an engine gets: the spec, the data, the space, its store folder, and the progress hook."""

    spec: SweepSpec
    dataset: object
    build: object
    store: str
    progress: object
    done_before: int = 0
    total: int = None  # progress denominator (default: spec.trials)
    finished: int = 0
    consecutive_errors: int = 0
    ran: list = dataclasses.field(default_factory=list)

    def trial_finished(self, record, trial_id=None, seconds=None, error=None, twins=None):
        """Report one finished trial (its record, or its id and error when it has none).

        ``twins``: {arm: objective value} of the other arm(s) of the same
        candidate that ran as separate trials (Ray), shown for the pair.
        """
        self.finished += 1
        report = TrialReport.from_record(record, self.spec, trial_id=trial_id, seconds=seconds, error=error)
        for arm, value in (twins or {}).items():
            report.twins[arm] = value
        self.ran.append(report.trial_id)
        total = self.total or self.spec.trials
        position = min(self.done_before + self.finished, total)
        self.progress(format_report(report, position, total, self.spec))
        self.consecutive_errors = self.consecutive_errors + 1 if report.status == "error" else 0
        if self.consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
            raise SweepError(
                f"{self.consecutive_errors} trials in a row failed with an error; the last: {report.error}. "
                f"Fix the cause and rerun the same command to resume (records are in {self.store})."
            )


class KerasTunerEngine:
    """keras-tuner (``RandomSearch`` or ``BayesianOptimization``) around ``AutoInitHyperModel``.

    The project is ``<out>/keras_tuner``, reopened with ``overwrite=False``
    on reruns, so keras-tuner itself skips finished trials and reruns the one
    in flight. Its own output is silenced (``verbose=0``).
    """

    name = "keras-tuner"
    folder = "keras_tuner"

    def run(self, context):
        import keras_tuner

        from autoinit_nas.integrations.keras_tuner import AutoInitHyperModel

        spec = context.spec
        base = {"random": keras_tuner.RandomSearch, "bayesian": keras_tuner.BayesianOptimization}[spec.tuner]
        tuner_class = type(f"Progress{base.__name__}", (_ProgressMixin, base), {})
        hypermodel = AutoInitHyperModel(context.build, init=spec.init, seed=spec.seed)
        with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..."
            tuner = tuner_class(
                hypermodel,
                objective=keras_tuner.Objective(spec.objective, spec.direction),
                max_trials=spec.trials,
                hyperparameters=keras_tuner_hyperparameters(spec.hyperparameters),
                tune_new_entries=True,
                # keras-tuner treats seed 0 as "no seed" (``seed or random``), so
                # shift by one: every --seed, 0 included, fixes the architectures.
                seed=spec.seed + 1,
                max_consecutive_failed_trials=None,  # diverged candidates are data, not failures
                directory=os.path.dirname(context.store),
                project_name=os.path.basename(context.store),
                overwrite=False,
            )
        tuner.sweep_context = context
        # keras-tuner writes its state (tuner0.json) only when a trial ends; write it now so a
        # crash in the first trial also resumes, rerunning that trial with its hyperparameters.
        tuner.save()
        context.done_before = sum(
            1 for trial in tuner.oracle.trials.values() if trial.status not in ("RUNNING", "IDLE")
        )
        if context.done_before >= spec.trials:
            return
        (x, y), validation = context.dataset.train, context.dataset.validation
        tuner.search(x, y, validation_data=validation, epochs=spec.epochs, batch_size=spec.batch_size, verbose=0)


class _ProgressMixin:
    """Times each trial and reports it, from its record on disk, when it ends."""

    sweep_context = None

    def on_trial_begin(self, trial):
        self._trial_started = time.perf_counter()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        from autoinit_nas.integrations import records

        context = self.sweep_context
        if context is None:
            return
        seconds = time.perf_counter() - getattr(self, "_trial_started", time.perf_counter())
        record = records.read_record(self.get_trial_dir(trial.trial_id))
        error = None
        if str(trial.status) in ("FAILED", "INVALID") and (record is None or record.get("status") == "running"):
            error = _last_line(trial.message) or "failed"
        context.trial_finished(record, trial_id=trial.trial_id, seconds=seconds, error=error)


class RayEngine:
    """Ray Tune, through ``autoinit_nas.integrations.ray_tune``.

    Each candidate is one Ray trial per arm (``param_space_from_space(...,
    init=arms)`` with ``paired_search()``: both arms of a candidate share its
    sampled hyperparameters and seed). A local Ray starts unless ``address``
    (``--address``) or ``RAY_ADDRESS`` names a cluster; a Ray already
    initialized in this process is used as it is. Experiments live in
    ``<out>/ray/part-<k>``: a rerun restores each unfinished part
    (``Tuner.restore(..., resume_errored=True)``: finished trials are kept,
    interrupted and errored ones rerun), and raising ``trials`` adds a part
    with the missing candidates (Ray cannot grow a finished experiment).
    Ray's own console output is off.
    """

    name = "ray"
    folder = "ray"

    def run(self, context):
        try:
            from autoinit_nas.integrations import ray_tune
        except ModuleNotFoundError as error:
            if error.name not in ("autoinit_nas.integrations.ray_tune", "ray"):
                raise
            raise SweepError(
                f"The ray engine needs Ray Tune and autoinit_nas.integrations.ray_tune ({error}). "
                'Install the ray extra (pip install "autoinit_nas[ray]") or use --engine keras-tuner.'
            ) from None
        return _RaySweep(ray_tune, context).run()


_PARTS_FILE = "parts.json"
_ACTIVE_RAY_SWEEP = None  # the _RaySweep reporting progress in this driver


class _RaySweep:
    def __init__(self, ray_tune, context):
        self.ray_tune = ray_tune
        self.context = context
        spec = context.spec
        self.arms = ("autoinit", "default") if spec.init == "compare" else (spec.init,)
        context.total = spec.trials * len(self.arms)
        self.parts_path = os.path.join(context.store, _PARTS_FILE)
        self.pairs = {}  # candidate key -> {arm: objective value}
        self.finished_before = set()  # ids of the trials whose records said they finished at the start

    def run(self):
        global _ACTIVE_RAY_SWEEP
        import ray

        from autoinit_nas.integrations import records

        spec, context = self.context.spec, self.context
        parts = self._read_parts()
        finished = [r for r in records.read_records(context.store) if r.get("status") in ("completed", "diverged")]
        context.done_before = len(finished)
        self.finished_before = {str(record.get("trial_id")) for record in finished}
        for record in finished:
            self._remember(record)
        missing = spec.trials - sum(part["samples"] for part in parts)
        if missing > 0:
            parts.append({"name": f"part-{len(parts) + 1}", "samples": missing,
                          "random_state": spec.seed * 1000 + len(parts)})
            self._write_parts(parts)
        todo = [part for part in parts if not self._part_done(part)]
        if not todo:
            return
        started = False
        if not ray.is_initialized():
            ray.init(address=spec.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            started = True
        _ACTIVE_RAY_SWEEP = self
        try:
            for part in todo:
                self._run_part(part)
        finally:
            _ACTIVE_RAY_SWEEP = None
            if started:
                ray.shutdown()

    def _run_part(self, part):
        from ray import tune

        spec, context, ray_tune = self.context.spec, self.context, self.ray_tune
        hp = keras_tuner_hyperparameters(spec.hyperparameters)
        init = self.arms[0] if len(self.arms) == 1 else self.arms
        param_space = ray_tune.param_space_from_space(context.build, hp, init=init)
        trainable = ray_tune.with_autoinit(
            _ray_train, seed=spec.seed, metric=spec.objective, mode=spec.direction,
            build=context.build, data=(context.dataset.train, context.dataset.validation),
            fit={"epochs": spec.epochs, "batch_size": spec.batch_size}, hyperparameters=hp,
        )
        path = os.path.join(context.store, part["name"])
        progress = _RayProgress()  # defines the class before a restore unpickles the saved one
        if tune.Tuner.can_restore(path):
            tuner = tune.Tuner.restore(path, trainable=trainable, resume_errored=True, param_space=param_space)
        else:
            if os.path.isdir(path):
                shutil.rmtree(path)  # started, but crashed before Ray saved any state
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(
                    metric=spec.objective, mode=spec.direction, num_samples=part["samples"],
                    search_alg=ray_tune.paired_search(random_state=part["random_state"]),
                ),
                run_config=tune.RunConfig(
                    name=part["name"], storage_path=context.store, verbose=0, callbacks=[progress],
                ),
            )
        previous = os.environ.get("RAY_AIR_NEW_OUTPUT")
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # Ray's legacy reporter honours verbose=0; the new one prints a header
        logger = logging.getLogger("ray.tune")
        level = logger.level
        logger.setLevel(logging.ERROR)  # "Failed to fetch metrics" for restored trials that had not started
        try:
            tuner.fit()
        finally:
            logger.setLevel(level)
            if previous is None:
                os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
            else:
                os.environ["RAY_AIR_NEW_OUTPUT"] = previous
        ended = self._count(part, ("completed", "diverged", "error"))
        expected = part["samples"] * len(self.arms)
        if ended < expected:
            raise SweepError(
                f"Ray stopped with {ended} of the {expected} trials of {path} finished (interrupted?). "
                "Rerun the same command to resume it."
            )

    def _part_done(self, part):
        return self._count(part, ("completed", "diverged")) >= part["samples"] * len(self.arms)

    def _count(self, part, statuses):
        from autoinit_nas.integrations import records

        found = records.read_records(os.path.join(self.context.store, part["name"]))
        return sum(1 for record in found if record.get("status") in statuses)

    def _read_parts(self):
        if not os.path.exists(self.parts_path):
            return []
        with open(self.parts_path, encoding="utf-8") as stream:
            return json.load(stream)

    def _write_parts(self, parts):
        os.makedirs(self.context.store, exist_ok=True)
        with open(self.parts_path, "w", encoding="utf-8") as stream:
            json.dump(parts, stream, indent=1)

    def _remember(self, record):
        """Note a finished arm; returns its twin's objective value if the twin finished too."""
        arm = record.get("init")
        key = json.dumps({k: v for k, v in (record.get("hyperparameters") or {}).items() if k != "init"},
                         sort_keys=True, default=str)
        executions = record.get("executions") or []
        fields = (executions[-1].get("arms") or {}).get(arm, {}) if executions else {}
        value = (fields.get("metrics") or {}).get(self.context.spec.objective)
        self.pairs.setdefault(key, {})[arm] = value
        return {a: v for a, v in self.pairs[key].items() if a != arm}

    def trial_finished(self, trial, error=None):
        from autoinit_nas.integrations import records

        if error is None and str(getattr(trial, "trial_id", None)) in self.finished_before:
            # A trial that had finished when the last run died, before Tune saved that: Tune
            # restores it as unfinished and with_autoinit only reports its recorded epochs again.
            # It is already counted in done_before.
            return
        directory = getattr(trial, "path", None) or getattr(trial, "local_path", None)
        record = records.read_record(directory) if directory and os.path.isdir(directory) else None
        result = getattr(trial, "last_result", None) or {}
        seconds = result.get("time_total_s")
        twins = self._remember(record) if record is not None and error is None else {}
        self.context.trial_finished(record, trial_id=getattr(trial, "trial_id", None), seconds=seconds,
                                    error=error, twins=twins)


def _ray_progress_class():
    from ray import tune

    class RayProgress(tune.Callback):
        """Reports each finished Ray trial to the sweep running in this driver (stateless: survives restore)."""

        def on_trial_complete(self, iteration, trials, trial, **info):
            if _ACTIVE_RAY_SWEEP is not None:
                _ACTIVE_RAY_SWEEP.trial_finished(trial)

        def on_trial_error(self, iteration, trials, trial, **info):
            if _ACTIVE_RAY_SWEEP is not None:
                error = getattr(trial, "error_message", None) or getattr(trial, "error_msg", None)
                _ACTIVE_RAY_SWEEP.trial_finished(trial, error=_last_line(error) or "trial raised an error")

    return RayProgress


def _RayProgress():  # noqa: N802 - a factory standing for the class (Ray is imported lazily)
    global _RayProgressClass
    if _RayProgressClass is None:
        _RayProgressClass = _ray_progress_class()
        _RayProgressClass.__module__ = __name__
        _RayProgressClass.__qualname__ = "_RayProgressClass"
    return _RayProgressClass()


_RayProgressClass = None


def _ray_train(config, build, data, fit, hyperparameters):
    """The function each Ray trial runs: build the config's candidate, apply its arm, train, report."""
    from autoinit_nas.integrations.ray_tune import RayReportCallback, build_from_config, prepare_model

    (x, y), validation = data
    model = prepare_model(build_from_config(build, config, hyperparameters), config)
    model.fit(x, y, validation_data=validation, verbose=0, callbacks=[RayReportCallback()], **fit)


ENGINES = {}


def register_engine(engine):
    """Make ``engine`` available as ``SweepSpec(engine=engine.name)`` (replacing one of that name)."""
    for attribute in ("name", "folder", "run"):
        if not hasattr(engine, attribute):
            raise TypeError(f"An engine needs `name`, `folder` and `run(context)`. Received: {engine!r}")
    ENGINES[engine.name] = engine
    return engine


register_engine(KerasTunerEngine())
register_engine(RayEngine())


def engines():
    """Names of the registered engines."""
    return list(ENGINES)


# Running.


@dataclasses.dataclass
class Sweep:
    """A sweep's directory, and what the last ``run_sweep`` did in it."""

    out: str
    spec: SweepSpec
    ran: list
    done_before: int
    seconds: float

    def table(self):
        """``autoinit_nas.results.trials_table`` of everything in ``out``."""
        from autoinit_nas.results import trials_table

        return trials_table(self.out)


def run_sweep(spec, progress=print, overwrite=False):
    """Run (or resume) ``spec``; returns a ``Sweep``.

    Args:
        spec: a ``SweepSpec``.
        progress: called with one line of text per event (start, each trial, end).
        overwrite: delete what ``spec.out`` holds first, instead of resuming.

    Raises:
        SweepError: ``out`` holds a different sweep (a field of ``IDENTITY``
            differs), or trials keep failing.
        ValueError: a bad spec field.
    """
    import search_spaces

    from experiments import datasets

    spec.validate()
    out = os.path.abspath(spec.out)
    engine = ENGINES[spec.engine]
    store = os.path.join(out, engine.folder)
    state_path = os.path.join(out, SPEC_FILE)
    if overwrite and os.path.isdir(out):
        for name in (SPEC_FILE, "report", *(e.folder for e in ENGINES.values())):
            path = os.path.join(out, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    state = _read_state(state_path)
    if state is not None:
        previous = state.get("spec", {})
        differences = [
            f"{name}: {previous.get(name)!r} there, {value!r} now"
            for name, value in spec.identity().items()
            if _jsonable(previous.get(name)) != _jsonable(value)
        ]
        if differences:
            raise SweepError(
                f"'{spec.out}' holds a different sweep ({'; '.join(differences)}). Use another --out, "
                "pass the same settings to resume it, or --overwrite to start over."
            )

    dataset = datasets.load(spec.data, seed=spec.seed, limit=spec.limit)
    build = search_spaces.get(spec.space)(dataset.input_shape, dataset.num_classes, **spec.space_options)
    known = space_hyperparameters(build)
    unknown = sorted(set(spec.hyperparameters) - set(known))
    if unknown:
        raise ValueError(
            f"The {spec.space} space has no hyperparameter(s) {unknown}. Its hyperparameters: {known}"
        )

    state = state or {"spec": None, "runs": []}
    state["spec"] = _jsonable(dataclasses.asdict(spec))
    state["dataset"] = {"name": dataset.name, "train": len(dataset.y_train), "validation": len(dataset.y_val),
                        "input_shape": list(dataset.input_shape), "num_classes": dataset.num_classes}
    run_entry = {"started_at": _now(), "finished_at": None, "trials": spec.trials, "ran": [], "status": "running"}
    state["runs"].append(run_entry)
    _write_state(state_path, state)

    context = SweepContext(spec=spec, dataset=dataset, build=build, store=store, progress=progress)
    arms = {"compare": "AutoInit vs default", "autoinit": "AutoInit", "default": "default init"}[spec.init]
    progress(
        f"sweep {spec.space} on {dataset.summary()}\n"
        f"  {spec.engine}, {spec.trials} candidates x {spec.epochs} epochs, {arms}, objective {spec.objective} "
        f"({spec.direction}), seed {spec.seed} -> {spec.out}"
    )
    start = time.perf_counter()
    status = "error"
    try:
        _quiet_tensorflow()
        engine.run(context)
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        seconds = time.perf_counter() - start
        run_entry.update(finished_at=_now(), ran=[str(t) for t in context.ran], status=status, seconds=seconds)
        _write_state(state_path, state)
    total = context.total or spec.trials
    if context.done_before and not context.ran:
        progress(f"nothing to run: {context.done_before} trials done, {total} asked for")
    else:
        resumed = f", {context.done_before} done before" if context.done_before else ""
        progress(f"ran {len(context.ran)} trial(s) in {_duration(seconds)}{resumed}; results in {spec.out}")
    return Sweep(out=out, spec=spec, ran=list(context.ran), done_before=context.done_before, seconds=seconds)


def read_spec(out):
    """The ``SweepSpec`` saved in ``out/sweep.json``, or None."""
    state = _read_state(os.path.join(out, SPEC_FILE))
    if not state or not isinstance(state.get("spec"), dict):
        return None
    fields = {field.name for field in dataclasses.fields(SweepSpec)}
    return SweepSpec(**{key: value for key, value in state["spec"].items() if key in fields})


def _read_state(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as stream:
        try:
            return json.load(stream)
        except ValueError:
            raise SweepError(f"'{path}' is not valid JSON; delete it or use --overwrite.") from None


def _write_state(path, state):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(_jsonable(state), stream, indent=1, sort_keys=True)
    os.replace(temporary, path)


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _quiet_tensorflow():
    """Silence TensorFlow's Python-side warnings (retracing notes) during a sweep."""
    try:
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
    except Exception:  # noqa: BLE001 - another backend, or no TensorFlow
        pass


# Progress lines.


@dataclasses.dataclass
class TrialReport:
    """What a progress line shows about one finished trial."""

    trial_id: str
    status: str
    seconds: float
    values: dict  # arm -> objective value (None when missing)
    diverged: dict  # arm -> bool
    hyperparameters: dict
    error: str = None
    twins: dict = dataclasses.field(default_factory=dict)  # other arms' values, from separate trials

    @classmethod
    def from_record(cls, record, spec, trial_id=None, seconds=None, error=None):
        if record is None:
            return cls(str(trial_id), "error", seconds or 0.0, {}, {}, {}, error or "no record written")
        values, diverged = {}, {}
        executions = record.get("executions") or []
        arms = executions[-1].get("arms", {}) if executions else {}
        for arm in ("autoinit", "default"):
            if arm in arms:
                values[arm] = (arms[arm].get("metrics") or {}).get(spec.objective)
                diverged[arm] = bool(arms[arm].get("diverged"))
        status = record.get("status") or "running"
        if error and status == "running":
            status = "error"
        if seconds is None:
            seconds = sum((arms[arm].get("train_seconds") or 0.0) + (arms[arm].get("init_seconds") or 0.0)
                          for arm in arms)
        return cls(
            trial_id=str(record.get("trial_id") if record.get("trial_id") is not None else trial_id),
            status=status,
            seconds=float(seconds),
            values=values,
            diverged=diverged,
            hyperparameters={k: v for k, v in (record.get("hyperparameters") or {}).items()
                             if not k.startswith("tuner/") and k != "init"},
            error=error or (record.get("reason") if status == "error" else None),
        )


def format_report(report, position, total, spec):
    """One progress line: ``[ 3/30] trial 02  completed  autoinit 0.917  default 0.819  +0.098  6.9 s  depth=14 ...``."""
    width = len(str(total))
    parts = [f"[{position:>{width}}/{total}] trial {report.trial_id}", f"{report.status:<9}"]
    if report.status == "error" and not report.values:
        parts.append(f"error: {report.error}")
    for arm in ("autoinit", "default"):
        if arm in report.values:
            parts.append(f"{arm} {_number(report.values[arm])}" + (" (diverged)" if report.diverged.get(arm) else ""))
    for arm, value in report.twins.items():
        if arm not in report.values:
            parts.append(f"({arm} {_number(value)})")
    both = {**report.twins, **report.values}
    if set(both) >= {"autoinit", "default"}:
        a, d = both["autoinit"], both["default"]
        if a is not None and d is not None:
            difference = (a - d) if spec.direction == "max" else (d - a)
            parts.append(f"{difference:+.3f}")
    parts.append(f"{report.seconds:5.1f} s")
    fixed = {name for name, value in spec.hyperparameters.items() if not isinstance(value, (list, dict))}
    shown = " ".join(f"{name}={_short(value)}" for name, value in report.hyperparameters.items() if name not in fixed)
    if shown:
        parts.append(shown)
    return "  ".join(parts)


def _number(value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "  nan"
    return f"{value:.3f}"


def _short(value):
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _last_line(text):
    lines = [line.strip() for line in str(text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def _duration(seconds):
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"


# Command line.


def add_arguments(parser):
    """The ``sweep`` arguments (shared by ``autoinit-nas sweep`` and ``python -m experiments.sweep``)."""
    from experiments import configs, datasets

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Flags override the config's values; unset flags take the config's, then the defaults.\n"
        f"configs: {', '.join(configs.names())}\n"
        f"datasets: {', '.join(datasets.names())}\n"
        "Rerunning with the same --out resumes the sweep (finished trials are kept).\n"
        "example: autoinit-nas sweep --config deep-mlp --trials 10 --out out/deep-mlp"
    )
    parser.add_argument("--config", metavar="NAME", help="a named config (experiments/configs) or a .json path")
    parser.add_argument("--space", metavar="S", help="search space: mlp, cnn, resnet, transformer (default mlp)")
    parser.add_argument("--data", metavar="D", help="offline dataset (default digits)")
    parser.add_argument("--engine", choices=list(ENGINES), help="search engine (default keras-tuner)")
    parser.add_argument("--trials", type=_positive_int, metavar="N", help="candidates in total (default 10)")
    parser.add_argument("--epochs", type=_positive_int, metavar="E", help="epochs per candidate (default 2)")
    parser.add_argument("--init", choices=INIT_MODES, help="init arm(s) (default compare)")
    parser.add_argument("--out", metavar="DIR", help="sweep directory (default out/<config> or out/sweep)")
    parser.add_argument("--seed", type=int, metavar="S", help="search, trial and split seed (default 0)")
    parser.add_argument("--batch-size", type=_positive_int, metavar="B", help="batch size (default 64)")
    parser.add_argument("--objective", metavar="METRIC", help="metric to optimize and compare (default val_accuracy)")
    parser.add_argument("--limit", type=_positive_int, metavar="N", help="use at most N training examples")
    parser.add_argument("--tuner", choices=TUNERS, help="keras-tuner search algorithm (default random)")
    parser.add_argument(
        "--hp", action="append", default=[], metavar="NAME=VALUE",
        help='narrow a hyperparameter: depth=4 (fixed), \'activation=["relu","tanh"]\' (choice), '
        '\'depth={"min":2,"max":8}\' (range); repeatable',
    )
    parser.add_argument("--address", metavar="ADDR", help="Ray cluster address for --engine ray (default: RAY_ADDRESS or local)")
    parser.add_argument("--overwrite", action="store_true", help="delete what --out holds instead of resuming")


def spec_from_args(args):
    """A ``SweepSpec`` from parsed ``sweep`` arguments (config first, flags over it)."""
    flags = {
        "space": args.space, "data": args.data, "engine": args.engine, "trials": args.trials,
        "epochs": args.epochs, "init": args.init, "out": args.out, "seed": args.seed,
        "batch_size": args.batch_size, "objective": args.objective, "limit": args.limit,
        "tuner": args.tuner, "address": args.address,
    }
    overrides = {}
    for item in args.hp:
        name, equals, text = item.partition("=")
        if not equals or not name:
            raise ValueError(f"--hp expects NAME=VALUE. Received: --hp {item!r}")
        try:
            overrides[name] = json.loads(text)
        except ValueError:
            overrides[name] = text
    if args.config:
        spec = SweepSpec.from_config(args.config, **flags)
        if args.out is None:
            spec.out = os.path.join("out", os.path.splitext(os.path.basename(args.config))[0])
    else:
        spec = SweepSpec(**{key: value for key, value in flags.items() if value is not None})
    spec.hyperparameters = {**spec.hyperparameters, **overrides}
    return spec.validate()


def run(args):
    """``autoinit-nas sweep``: run or resume a sweep, print one line per trial and a summary."""
    from autoinit_nas.cli import CommandError

    spec = None
    try:
        spec = spec_from_args(args)
        sweep = run_sweep(spec, progress=lambda line: print(line, flush=True), overwrite=args.overwrite)
    except (SweepError, ValueError, ModuleNotFoundError) as error:
        raise CommandError(str(error)) from None
    except KeyboardInterrupt:
        print(f"\ninterrupted: rerun the same command to resume (finished trials are kept in {spec.out if spec else args.out})",
              file=sys.stderr)
        return 130
    if spec.init == "compare":
        from experiments import report

        table = sweep.table()
        print(report.summary_line(table, spec.objective, spec.direction))
    print(f"report: autoinit-nas report {spec.out}")
    return 0


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def main(argv=None):
    """``python -m experiments.sweep [ARGS]``: the same as ``autoinit-nas sweep [ARGS]``."""
    from autoinit_nas.cli import main as cli_main

    return cli_main(["sweep", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
