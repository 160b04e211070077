"""``RayReportCallback``: each epoch to Ray Tune and into the trial record; stops at divergence."""

import time

from autoinit_nas.engines.ray import trial as ray_trial
from autoinit_nas.trials.divergence import DivergenceCallback


class RayReportCallback(DivergenceCallback):
    """Report each epoch to Ray Tune, record it in the trial record, and stop at divergence.

    Every epoch, the epoch's logs (``loss``, ``val_accuracy``, ...) go to
    ``ray.tune.report`` together with ``epoch`` (1-based), ``init`` (the arm)
    and ``diverged``; the trial record gets the history, train seconds and
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
    """

    def __init__(self, report=None):
        super().__init__()
        self.report = report
        self._started = None

    def on_train_begin(self, logs=None):
        self._started = time.perf_counter()
        trial = ray_trial.current()
        if trial is not None:
            trial.arm_fields()  # make sure an execution exists

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
        if trial is not None:
            trial.add_epoch(values, self.divergence)
        if self.report if self.report is not None else trial is not None:
            self._report(epoch, values, None if trial is None else trial.arm)

    def on_train_end(self, logs=None):
        trial = ray_trial.current()
        if trial is not None and self._started is not None:
            trial.end_fit(time.perf_counter() - self._started, self.divergence)
        self._started = None

    def _report(self, epoch, values, arm):
        from ray import tune

        metrics = dict(values, epoch=epoch + 1, diverged=self.divergence is not None)
        if arm is not None:
            metrics["init"] = arm
        if self.divergence is not None:
            metrics["divergence"] = self.divergence
        tune.report(metrics)
