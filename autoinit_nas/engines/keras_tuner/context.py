"""The keras-tuner trial behind a ``fit`` call, and the callbacks a trial trains with.

keras-tuner tells a HyperModel nothing about the trial it runs; its
``Tuner.run_trial`` adds a callback holding the tuner and the trial, which is
where this room finds them.
"""

import copy
import sys

import keras

from autoinit_nas.trials.metrics import finite

# Callbacks keras-tuner adds for the trial it reports; the default arm of
# "compare" mode trains without them.
TUNER_CALLBACKS = ("SaveBestEpoch", "TensorBoard", "KerasCallback")
# keras-tuner's own methods that build a hypermodel for its bookkeeping: a trial's
# build (its fit applies the arm, with the trial's batch size), search-space
# discovery and reloading a checkpoint (whose weights replace any init).
_TUNER_BUILDERS = frozenset({"_build_and_fit_model", "_activate_all_conditions", "load_model"})


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


def built_by_tuner():
    """True when keras-tuner's engine itself is building (a trial, space discovery, a reload).

    Example:
        >>> built_by_tuner()
        False
    """
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name in _TUNER_BUILDERS and "keras_tuner" in code.co_filename:
            return True
        frame = frame.f_back
    return False


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
