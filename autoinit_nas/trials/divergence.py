"""The one divergence check: stop training at the first non-finite loss, and say where.

Both engines train with ``DivergenceCallback`` (Ray's report callback is one),
so a trial diverges for the same reason, at the same step, whichever engine
runs it.
"""

import keras

from autoinit_nas.trials.metrics import finite


def logs_divergence(logs, where):
    """Why one step's Keras ``logs`` diverged: a non-finite ``loss`` or ``val_loss`` "at ``where``"; else None.

    Example:
        >>> logs_divergence({"loss": float("nan")}, "epoch 0, batch 3")
        'non-finite loss (nan) at epoch 0, batch 3'
    """
    for key in ("loss", "val_loss"):
        if key in (logs or {}) and not finite(logs[key]):
            return f"non-finite {key} ({float(logs[key])}) at {where}"
    return None


class DivergenceCallback(keras.callbacks.Callback):
    """Stops training at the first non-finite ``loss`` or ``val_loss``, after any batch or epoch.

    Like ``keras.callbacks.TerminateOnNaN``, and it keeps the reason.

    Example:
        >>> callback = DivergenceCallback()
        >>> callback.divergence is None
        True
    """

    def __init__(self):
        super().__init__()
        self.divergence = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.check(logs, f"epoch {self.epoch}, batch {batch}")

    def on_epoch_end(self, epoch, logs=None):
        self.check(logs, f"epoch {epoch}")

    def check(self, logs, where):
        """Record the first divergence in ``logs`` and stop training; returns the reason (or None)."""
        if self.divergence is None and logs:
            self.divergence = logs_divergence(logs, where)
            if self.divergence is not None:
                self.model.stop_training = True
        return self.divergence
