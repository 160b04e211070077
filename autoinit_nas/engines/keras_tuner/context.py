"""The keras-tuner trial behind a ``fit`` call, and the callbacks a trial trains with.

keras-tuner tells a HyperModel nothing about the trial it runs; its
``Tuner.run_trial`` adds a callback holding the tuner and the trial to the
``callbacks`` it passes to ``fit``, which is where this room finds them (from
the arguments of the fit call, never from the call stack). A tuner whose own
``run_trial`` passes no such callback trains outside any known trial: the arm
is still applied (see ``stamp``), but no record is written.
"""

import copy

import keras

from autoinit_nas.trials.metrics import finite

# Callbacks keras-tuner adds for the trial it reports; the default arm of
# "compare" mode trains without them.
TUNER_CALLBACKS = ("SaveBestEpoch", "TensorBoard", "KerasCallback")


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
        """The context of the first callback holding a tuner and a trial (keras-tuner's ``TunerCallback``)."""
        for callback in callbacks or []:
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
    """Whether keras-tuner added ``callback`` for the trial it reports."""
    if hasattr(callback, "tuner") and hasattr(callback, "trial"):
        return True
    return type(callback).__name__ in TUNER_CALLBACKS


def copy_callbacks(callbacks):
    """Deep copies of ``callbacks`` for a second arm; the same objects when they do not copy."""
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
