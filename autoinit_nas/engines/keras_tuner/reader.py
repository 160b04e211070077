"""Reads keras-tuner's own trial files (``trial_<id>/trial.json``), without keras-tuner.

``autoinit_nas.results`` asks this reader for the status keras-tuner gives a
trial, and for a row describing trials that have no record (they failed
before the hypermodel wrote one).
"""

import json
import os

from autoinit_nas.trials.records import last_line

ENGINE = "keras_tuner"
TRIAL_FILE = "trial.json"
# keras-tuner's trial statuses as record statuses.
STATUSES = {"RUNNING": "running", "IDLE": "running", "COMPLETED": "completed",
            "FAILED": "error", "INVALID": "error", "STOPPED": "completed"}


def engine_status(directory, files):
    """keras-tuner's status of the trial in ``directory`` (lower case), or None when it is not one.

    Example:
        >>> engine_status("/nowhere", ["autoinit_record.json"]) is None
        True
    """
    if TRIAL_FILE not in files:
        return None
    trial = _read_trial(directory)
    return None if trial is None else (str(trial.get("status") or "").lower() or None)


def orphan(directory, files):
    """What keras-tuner knows of a trial directory without a record; None if it is not a trial's.

    Returns a dict with ``engine``, ``trial_id``, ``status`` (a record status),
    ``error``, ``engine_status``, ``trial_dir``, ``mode`` and ``hyperparameters``.

    Example:
        >>> orphan("/nowhere", []) is None
        True
    """
    if TRIAL_FILE not in files or not os.path.basename(directory).startswith("trial_"):
        return None
    trial = _read_trial(directory)
    if trial is None:
        return None
    status = str(trial.get("status") or "")
    return {
        "engine": ENGINE,
        "trial_id": None if trial.get("trial_id") is None else str(trial["trial_id"]),
        "status": STATUSES.get(status, status.lower() or None),
        "error": last_line(trial.get("message")),
        "engine_status": status.lower() or None,
        "trial_dir": directory,
        "mode": None,
        "hyperparameters": dict((trial.get("hyperparameters") or {}).get("values") or {}),
    }


def _read_trial(directory):
    try:
        with open(os.path.join(directory, TRIAL_FILE)) as stream:
            trial = json.load(stream)
    except (OSError, ValueError):
        return None
    return trial if isinstance(trial, dict) else None
