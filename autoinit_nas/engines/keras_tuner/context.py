"""The keras-tuner trial behind a ``fit`` call, and the callbacks a trial trains with.

keras-tuner tells a HyperModel nothing about the trial it runs; its
``Tuner.run_trial`` adds a callback holding the tuner and the trial to the
``callbacks`` it passes to ``fit``, which is where this room finds them (from
the arguments of the fit call, never from the call stack). A tuner whose own
``run_trial`` passes no such callback trains outside any known trial: the arm
is still applied (see ``stamp``), but no record is written.

The trial is read from the ``tuner`` and ``trial`` attributes of keras-tuner's
``TunerCallback`` (``keras_tuner.src.engine.tuner_utils``, a keras-tuner
internal: keras-tuner exports neither it nor ``SaveBestEpoch``). Both are
matched by class; only where that module cannot be imported (another
keras-tuner version) are they matched by duck typing: a callback holding a
tuner and a trial, or a class named ``TunerCallback`` / ``SaveBestEpoch``.
The user's own callbacks (a ``TensorBoard`` included) train every arm.
"""

import copy
import os

import keras

from autoinit_nas.trials.metrics import finite

try:  # keras-tuner's own trial callbacks (internal classes; see the module docstring)
    from keras_tuner.src.engine.tuner_utils import SaveBestEpoch, TunerCallback
except ImportError:  # pragma: no cover - another keras-tuner layout: duck typing
    SaveBestEpoch = TunerCallback = None

# Class names of keras-tuner's trial callbacks, for the duck-typed fallback.
TUNER_CALLBACKS = ("TunerCallback", "SaveBestEpoch")


class TrialContext:
    """The tuner and trial behind a fit call, found among its callbacks.

    Example:
        >>> TrialContext.find([]) is None
        True
    """

    def __init__(self, tuner, trial):
        self.tuner = tuner
        self.trial = trial
        self.trial_id = str(trial.trial_id)
        self.trial_dir = tuner.get_trial_dir(trial.trial_id)
        self.tuner_id = getattr(tuner, "tuner_id", None)
        self.executions_per_trial = max(int(getattr(tuner, "executions_per_trial", 1) or 1), 1)
        self.objective = getattr(getattr(tuner, "oracle", None), "objective", None)

    @classmethod
    def find(cls, callbacks):
        """The context of keras-tuner's ``TunerCallback`` among ``callbacks`` (else of one holding a tuner and trial)."""
        callbacks = list(callbacks or [])
        if TunerCallback is not None:  # keras-tuner's own first, then any duck-typed trial callback
            callbacks.sort(key=lambda callback: not isinstance(callback, TunerCallback))
        for callback in callbacks:
            tuner = getattr(callback, "tuner", None)
            trial = getattr(callback, "trial", None)
            if tuner is not None and hasattr(trial, "trial_id") and hasattr(tuner, "get_trial_dir"):
                return cls(tuner, trial)
        return None

    def objective_fields(self):
        """The objective as the record stores it: {"name", "direction"}, or None."""
        if self.objective is None:
            return None
        return {"name": self.objective.name, "direction": getattr(self.objective, "direction", None)}


def is_tuner_callback(callback):
    """Whether keras-tuner added ``callback`` for the trial it reports (the other arms train without it).

    keras-tuner's ``TunerCallback`` and ``SaveBestEpoch`` (by class, or by
    duck typing where keras-tuner's internal module is missing), any other
    callback holding a tuner and a trial, and the TensorBoard hparams
    callback keras-tuner pairs with a ``TensorBoard``; never a user's own.

    Example:
        >>> import keras
        >>> is_tuner_callback(keras.callbacks.TensorBoard()), is_tuner_callback(keras.callbacks.History())
        (False, False)
    """
    if TunerCallback is not None and isinstance(callback, (TunerCallback, SaveBestEpoch)):
        return True
    if hasattr(callback, "tuner") and hasattr(callback, "trial"):
        return True
    kind = type(callback)
    if kind.__name__ == "KerasCallback" and kind.__module__.startswith("tensorboard.plugins.hparams"):
        return True
    return TunerCallback is None and kind.__name__ in TUNER_CALLBACKS


def arm_callbacks(callbacks, arm):
    """Copies of the user's ``callbacks`` (keras-tuner's left out) for another ``arm`` of the trial.

    A ``TensorBoard`` callback logs that arm under ``<log_dir>/<arm>``, so
    the arms' curves stay apart.

    Example:
        >>> import keras
        >>> (board,) = arm_callbacks([keras.callbacks.TensorBoard("logs")], "default")
        >>> board.log_dir == os.path.join("logs", "default")
        True
    """
    originals = [callback for callback in callbacks if not is_tuner_callback(callback)]
    copies = copy_callbacks(originals)
    for callback in copies:
        if isinstance(callback, keras.callbacks.TensorBoard) and not any(callback is c for c in originals):
            callback.log_dir = os.path.join(str(callback.log_dir), arm)
    return copies


def copy_callbacks(callbacks):
    """Deep copies of ``callbacks`` for a second arm; the same objects when they do not copy.

    Example:
        >>> copy_callbacks([]) == []
        True
    """
    try:
        return copy.deepcopy(callbacks)
    except Exception:  # noqa: BLE001 - fall back to sharing them
        return list(callbacks)


class SaveBestWeights(keras.callbacks.Callback):
    """Save weights at the best epoch by ``objective``, as keras-tuner does for the arm it reports.

    Example:
        >>> SaveBestWeights(None, "/tmp/w.weights.h5").best is None
        True
    """

    def __init__(self, objective, filepath):
        super().__init__()
        self.objective = objective
        self.filepath = filepath
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.objective is None or not self.objective.has_value(logs):
            self.model.save_weights(self.filepath)
            return
        value = self.objective.get_value(logs)
        if not finite(value):
            return
        if self.best is None or self.objective.better_than(value, self.best):
            self.best = value
            self.model.save_weights(self.filepath)
