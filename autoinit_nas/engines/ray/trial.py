"""One Ray trial in the worker that runs it: its AutoInit, seed, arm and record.

``with_autoinit`` opens a ``Trial`` around the user's trainable; ``prepare_model``
and ``RayReportCallback`` find it through ``current()`` (function trainables
run one at a time per worker process).
"""

import warnings

import keras

from autoinit_nas.core.architecture import describe_model
from autoinit_nas.engines.ray import checkpoints
from autoinit_nas.engines.ray.estimate_cache import SharedEstimateCache
from autoinit_nas.engines.ray.store import RecordWriter, call
from autoinit_nas.trials import arms, lifecycle, records
from autoinit_nas.trials.metrics import best_history_epoch, better_for, summarize_history

ENGINE = "ray"
CACHE_COUNTS = ("hits", "misses", "shared_hits", "shared_misses")

_CURRENT = None  # the Trial running in this worker process


def current():
    """The ``Trial`` running in this process, or None outside a ``with_autoinit`` trial.

    Example:
        >>> current() is None
        True
    """
    return _CURRENT


def set_current(trial):
    """Make ``trial`` (or None) the one ``current()`` returns."""
    global _CURRENT
    _CURRENT = trial


class Trial:
    """One trial's AutoInit, seed and record, in the worker that runs it."""

    def __init__(self, context, config, autoinit, options, thread_info, writer=None, restore=None):
        self.config = dict(config or {})
        self.restore = restore  # (local folder, Tune's path) of the checkpoint Tune restores this trial from
        self.autoinit = autoinit
        self.options = options
        self.arm = arms.arm_of(self.config)
        self.seed = arms.trial_seed(self.config, options.seed)
        self.execution = None
        self.writer = writer if writer is not None else RecordWriter(context)
        self.record = lifecycle.start(
            ENGINE,
            call(context.get_trial_id),
            self.arm,
            seed=self.seed,
            hyperparameters=self.config,
            objective=None if options.metric is None else {"name": options.metric, "direction": options.mode},
        )
        import ray

        self.record["worker"].update(
            node_id=ray.get_runtime_context().get_node_id(),
            trial_name=call(context.get_trial_name),
            threads=thread_info,
        )
        if restore is not None:
            previous = self.writer.read()
            if isinstance(previous, dict) and previous.get("trial_id") == self.record["trial_id"]:
                self.record["executions"] = list(previous.get("executions") or [])  # no record lost
                for name in ("restored_from", "restores"):
                    if previous.get(name):
                        self.record[name] = previous[name]
        self.write()

    # Steps.

    def prepare(self, model, arm, batch_size, data=None, several=False):
        """Apply ``arm`` to ``model`` and open its fields in the record.

        One arm per trial unless ``several``: the trial then trains one arm
        after another (each on the model re-drawn from the trial seed), all in
        one execution of the record.
        """
        if arm != self.arm and not several:
            warnings.warn(
                f"prepare_model got init={arm!r} but the trial's config says {self.arm!r}; "
                f"using {arm!r}.",
                stacklevel=3,
            )
        self.arm = arm
        if self.record["architecture_id"] is None or self.restore is not None:
            self.record.update(describe_model(model))
        if self.execution is None or not several or arm in self.execution["arms"]:
            self._start_execution()
        if several:
            # The record's mode names every arm the trial trained, in order ("he+autoinit").
            self.record["init"] = "+".join([*self.execution["arms"], arm])
        restored = self._restore(model, arm) if self.restore is not None else None
        if restored is None:
            restored = self._initialize(model, arm, batch_size, data, redraw=several)
        self.execution["arms"][arm] = restored
        keras.utils.set_random_seed(self.seed)
        self.write()
        return model

    def arm_fields(self):
        if self.execution is None:
            if self.arm == "autoinit":
                warnings.warn(
                    "Training started before prepare_model(model, config) was called: AutoInit was "
                    "not applied, and the record says so (initialized: false).",
                    stacklevel=4,
                )
            self._start_execution()
            self.execution["arms"][self.arm] = arms.uninitialized_arm(training=True)
        return self.execution["arms"][self.arm]

    def add_epoch(self, values, divergence):
        fields = self.arm_fields()
        lifecycle.add_epoch(fields, values)
        self._summarize(fields, divergence)
        self.write()

    def end_fit(self, seconds, divergence):
        fields = self.arm_fields()
        fields["train_seconds"] = (fields.get("train_seconds") or 0.0) + seconds
        self._summarize(fields, divergence)
        self.write()

    def finish(self):
        if self.execution is None and self.arm == "autoinit":
            warnings.warn(
                "The trial ended without calling prepare_model(model, config); its record has no "
                "init arm.",
                stacklevel=3,
            )
        lifecycle.finish(self.record)
        self.write()

    def fail(self, error):
        lifecycle.fail(self.record, error)
        try:
            self.write()
        except Exception as write_error:  # noqa: BLE001 - never hide the trial's own error
            warnings.warn(f"Could not write the failed trial's record: {write_error}", stacklevel=2)

    def write(self):
        self.writer.write(self.record)

    def epochs_completed(self):
        """Epochs the current arm has trained, counted from its restored checkpoint's."""
        return int(self.arm_fields().get("epochs") or 0)

    def checkpoint_state(self):
        """What a checkpoint of the current arm says of where training stood (``checkpoints.save``'s state)."""
        fields = self.arm_fields()
        return {"epochs_completed": int(fields.get("epochs") or 0), "arm": self.arm,
                "trial_id": self.record["trial_id"], "architecture_id": self.record.get("architecture_id"),
                "history": fields.get("history") or {}}

    # Internals.

    def _restore(self, model, arm):
        """Load the checkpoint Tune restores this trial from; the arm's fields (not initialized), or None.

        None when the checkpoint is another arm's (several arms in one trial):
        that arm is initialized as usual.
        """
        folder, path = self.restore
        state = checkpoints.read_state(folder)
        if state.get("arm", arm) != arm:
            return None
        state = checkpoints.load(model, folder)
        self.restore = None  # once: an arm trained after this one starts afresh
        history = state.get("history") or {}
        epochs = int(state.get("epochs_completed") or 0)
        fields = dict(arms.uninitialized_arm(training=True), history=history, epochs=epochs)
        self._summarize(fields, None)
        restore = {"checkpoint": path, "trial_id": state.get("trial_id"), "epochs_completed": epochs}
        # Every restore, in order: a PBT exploit shows as one from another trial's checkpoint.
        self.record["restores"] = [*(self.record.get("restores") or []), restore]
        self.record["restored_from"] = dict(restore, count=len(self.record["restores"]))
        return fields

    def _start_execution(self):
        self.execution = lifecycle.start_execution(self.record)

    def _initialize(self, model, arm, batch_size, data=None, redraw=False):
        # One Monte Carlo draw per estimate (sampling_seed 0), shared by every trial.
        before = cache_counts(self.autoinit.cache)
        initialized, initializer = arms.apply_arm(arm, model, self.autoinit, self.seed, probe_batch=batch_size,
                                                  data=data, redraw=redraw)
        fields = dict(arms.uninitialized_arm(training=True), **initialized)
        if initializer is not None:
            after = cache_counts(initializer.cache)
            for name in CACHE_COUNTS:
                if name in after:
                    fields[f"cache_{name}"] = after[name] - before.get(name, 0)
        return fields

    def _summarize(self, fields, divergence):
        history = fields.get("history") or {}
        metric = self.options.metric
        score = None if metric is None else (lambda logs: logs.get(metric))
        best = best_history_epoch(history, score, better_for(self.options.mode))
        fields.update(summarize_history(history, best, divergence or fields.get("divergence")))


def finish_stopped(directory):
    """Close the record in ``directory`` of a trial Tune stopped (an ASHA / HyperBand cut, a stop rule).

    Tune ends a stopped function trainable without returning to it, so its
    record still says "running" (in the worker a stop and a pause look the
    same): it becomes "completed" (or "diverged") with ``stopped_by_tune:
    true``. Paused trials (HyperBand, PBT) are not complete, so not closed. Returns the record, or None if there was nothing
    to close.

    Example:
        >>> finish_stopped("/nonexistent") is None
        True
    """
    try:
        record = records.read_record(directory)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("status") != "running" or record.get("engine") != ENGINE:
        return None
    lifecycle.finish(record)
    record["stopped_by_tune"] = True
    records.write_record(directory, record)
    return record


def cache_counts(cache):
    if isinstance(cache, SharedEstimateCache):
        return cache.counts()
    counts = {}
    for name in CACHE_COUNTS:
        value = getattr(cache, name, None)
        if isinstance(value, int):
            counts[name] = value
    return counts
