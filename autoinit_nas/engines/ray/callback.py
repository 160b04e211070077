"""``RayReportCallback``: each epoch to Ray Tune and into the trial record; stops at divergence."""

import shutil
import tempfile
import time

from autoinit_nas.engines.ray import checkpoints
from autoinit_nas.engines.ray import trial as ray_trial
from autoinit_nas.trials.divergence import DivergenceCallback


class RayReportCallback(DivergenceCallback):
    """Report each epoch to Ray Tune, record it in the trial record, and stop at divergence.

    Every epoch, the epoch's logs (``loss``, ``val_accuracy``, ...) go to
    ``ray.tune.report`` together with ``epoch`` (1-based, this fit's),
    ``epochs_completed`` (counted from a restored checkpoint's epoch: the
    schedulers' ``time_attr``), ``init`` (the arm) and ``diverged``; the trial record gets the history, train seconds and
    best and final metrics after each ``fit``. At the first non-finite
    ``loss`` or ``val_loss`` (after any batch or epoch) training stops and the
    trial is recorded as diverged.

    Example:
        >>> callback = RayReportCallback()
        >>> callback.divergence is None
        True

    Args:
        report: True reports to Tune, False only records; None (default)
            reports inside a ``with_autoinit`` trial and not elsewhere.
        checkpoint: True saves a checkpoint (``checkpoints.save``: weights,
            optimizer state, epochs completed) with each report, False never;
            None (default) follows ``with_autoinit(checkpoint=...)``.
    """

    def __init__(self, report=None, checkpoint=None):
        super().__init__()
        self.report = report
        self.checkpoint = checkpoint
        self._started = None
        self._epochs = 0

    def on_train_begin(self, logs=None):
        self._started = time.perf_counter()
        trial = ray_trial.current()
        if trial is not None:
            trial.arm_fields()  # make sure an execution exists
        self._epochs = 0 if trial is None else trial.epochs_completed()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self.check(logs, f"epoch {epoch}")
        values = {}
        for name, value in logs.items():
            try:
                values[name] = float(value)
            except (TypeError, ValueError):
                continue
        trial = ray_trial.current()
        self._epochs += 1
        if trial is not None:
            trial.add_epoch(values, self.divergence)
        if self.report if self.report is not None else trial is not None:
            self._report(epoch, values, trial)

    def on_train_end(self, logs=None):
        trial = ray_trial.current()
        if trial is not None and self._started is not None:
            trial.end_fit(time.perf_counter() - self._started, self.divergence)
        self._started = None

    def _report(self, epoch, values, trial):
        from ray import tune

        metrics = dict(values, epoch=epoch + 1, epochs_completed=self._epochs, diverged=self.divergence is not None)
        if trial is not None:
            metrics["init"] = trial.arm
        if self.divergence is not None:
            metrics["divergence"] = self.divergence
        wanted = self.checkpoint if self.checkpoint is not None else trial is not None and trial.options.checkpoint
        if not wanted or self.divergence is not None:  # diverged weights are no place to resume from
            tune.report(metrics)
            return
        folder = tempfile.mkdtemp(prefix="autoinit_nas_checkpoint_")
        try:
            state = trial.checkpoint_state() if trial is not None else {"epochs_completed": self._epochs}
            checkpoints.save(self.model, folder, state)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
