"""The Ray Tune sweep driver: one Ray trial per candidate and arm, resumable part by part.

A driver gets a sweep context (spec, dataset, build, store folder, and a
``trial_finished`` hook) and leaves one record per trial in its store.
"""

import json
import os
import shutil

from autoinit_nas.engines.errors import SweepError
from autoinit_nas.engines.keras_tuner.space import hyperparameters_from_overrides
from autoinit_nas.engines.ray import session
from autoinit_nas.engines.ray.callback import RayReportCallback
from autoinit_nas.engines.ray.space import build_from_config, paired_search, param_space_from_space
from autoinit_nas.engines.ray.options import checkpointing
from autoinit_nas.engines.ray.schedulers import make_scheduler
from autoinit_nas.engines.ray.trainable import initial_epoch, prepare_model, with_autoinit
from autoinit_nas.trials import records
from autoinit_nas.trials.arms import data_batch


class RayEngine:
    """Ray Tune around ``with_autoinit``, resumable.

    Each candidate is one Ray trial per arm (``param_space_from_space(...,
    init=arms)`` with ``paired_search()``: both arms of a candidate share its
    sampled hyperparameters and seed). A local Ray starts unless the
    ``address`` option (``--address``) or ``RAY_ADDRESS`` names a cluster; a Ray already
    initialized in this process is used as it is. Experiments live in
    ``<out>/ray/part-<k>``: a rerun restores each unfinished part
    (``Tuner.restore(..., resume_errored=True)``: finished trials are kept,
    interrupted and errored ones rerun), and raising ``trials`` adds a part
    with the missing candidates (Ray cannot grow a finished experiment).
    Ray's own console output is off. The ``scheduler`` option (``--scheduler
    fifo|asha|hyperband|pbt``) picks Tune's scheduler
    (``schedulers.make_scheduler``, timed in completed epochs); checkpoints
    with each report are on for hyperband and pbt, and a trial Tune restores
    continues from its checkpoint (docs/engines.md, "Schedulers, checkpoints
    and restores").
    """

    name = "ray"
    folder = "ray"

    def run(self, context):
        try:
            import ray  # noqa: F401
            from ray import tune  # noqa: F401
        except ModuleNotFoundError as error:
            raise SweepError(
                f"The ray engine needs Ray Tune ({error}). "
                'Install the ray extra (pip install "autoinit_nas[ray]") or use --engine keras-tuner.'
            ) from None
        return _RaySweep(context).run()


_PARTS_FILE = "parts.json"


class _RaySweep:
    def __init__(self, context):
        self.context = context
        spec = context.spec
        chosen = getattr(spec, "arms", None)
        self.arms = tuple(chosen) if chosen else (("autoinit", "default") if spec.init == "compare" else (spec.init,))
        context.total = spec.trials * len(self.arms)
        self.parts_path = os.path.join(context.store, _PARTS_FILE)
        self.pairs = {}  # candidate key -> {arm: objective value}
        self.finished_before = set()  # ids of the trials whose records said they finished at the start

    def run(self):
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
        address = (getattr(context, "options", None) or {}).get("address")
        with session.tune_session(address=address, listener=self.trial_finished):
            for part in todo:
                self._run_part(part)

    def _run_part(self, part):
        from ray import tune

        spec, context = self.context.spec, self.context
        hp = hyperparameters_from_overrides(spec.hyperparameters)
        init = self.arms[0] if len(self.arms) == 1 else self.arms
        param_space = param_space_from_space(context.build, hp, init=init)
        options = self._options()
        scheduler = self._scheduler(options, param_space)
        checkpoint = checkpointing(options)
        trainable = with_autoinit(
            _ray_train, autoinit=getattr(context, "autoinit", None), seed=spec.seed, metric=spec.objective, mode=spec.direction,
            checkpoint=checkpoint,
            build=context.build, data=(context.dataset.train, context.dataset.validation),
            fit={"epochs": spec.epochs, "batch_size": spec.batch_size}, hyperparameters=hp,
        )
        path = os.path.join(context.store, part["name"])
        progress = session.progress_callback()  # defines the class before a restore unpickles the saved one
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
                    search_alg=paired_search(random_state=part["random_state"]), scheduler=scheduler,
                ),
                run_config=tune.RunConfig(
                    name=part["name"], storage_path=context.store, verbose=0, callbacks=[progress],
                    failure_config=tune.FailureConfig(max_failures=options.get("max_failures", 0)),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=3 if checkpoint else None),  # PBT warns at <= 2
                ),
            )
        tuner.fit()
        ended = self._count(part, ("completed", "diverged", "error"))
        expected = part["samples"] * len(self.arms)
        if ended < expected:
            raise SweepError(
                f"Ray stopped with {ended} of the {expected} trials of {path} finished (interrupted?). "
                "Rerun the same command to resume it."
            )

    def _options(self):
        """The engine options resolved (defaults filled in, validated)."""
        from autoinit_nas.engines import ENGINES

        try:
            return ENGINES["ray"].resolve_options(getattr(self.context, "options", None) or {})
        except ValueError as error:
            raise SweepError(str(error)) from None

    def _scheduler(self, options, param_space):
        """The Tune scheduler the options name (None: FIFO); ``SweepError`` for settings it cannot run."""
        if options.get("scheduler") == "pbt" and len(self.arms) > 1:
            raise SweepError(
                "--scheduler pbt clones trials into one another, config (and so arm) included, which would "
                f"mix the arms. Expected one arm (--init autoinit, --arms he, ...). Received: arms={list(self.arms)}"
            )
        try:
            return make_scheduler(options, self.context.spec.epochs, param_space)
        except ValueError as error:
            raise SweepError(str(error)) from None

    def _part_done(self, part):
        return self._count(part, ("completed", "diverged")) >= part["samples"] * len(self.arms)

    def _count(self, part, statuses):
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


def __getattr__(name):
    """Experiments saved by earlier releases pickled their progress callback as ``_RayProgressClass``."""
    if name == "_RayProgressClass":
        session.progress_callback()
        return session._ProgressClass
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _ray_train(config, build, data, fit, hyperparameters):
    """The function each Ray trial runs: build the config's candidate, apply its arm, train, report."""
    (x, y), validation = data
    model = prepare_model(build_from_config(build, config, hyperparameters), config,
                          batch_size=fit.get("batch_size"), data=data_batch(x, fit.get("batch_size") or 32))
    # A trial Tune restored (a HyperBand pause, a PBT exploit, a retry) trains only its remaining epochs.
    model.fit(x, y, validation_data=validation, verbose=0, callbacks=[RayReportCallback()],
              initial_epoch=initial_epoch(), **fit)
