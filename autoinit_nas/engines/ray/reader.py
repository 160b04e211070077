"""Reads Ray Tune's own trial files (``params.json``, ``result.json``, ``error.txt``), without Ray.

``autoinit_nas.results`` asks this reader for the status Tune gives a trial
directory, and for a row describing trials that have no record.
"""

import json
import os

from autoinit_nas.trials.records import last_line

ENGINE = "ray"
PARAMS_FILE = "params.json"


def engine_status(directory, files):
    """Tune's status of the trial in ``directory`` ("error", "pending", "running", "terminated"), or None.

    Example:
        >>> engine_status("/nowhere", ["trial.json"]) is None
        True
    """
    if PARAMS_FILE not in files:
        return None
    if "error.txt" in files or "error.pkl" in files:
        return "error"
    last = _last_json_line(os.path.join(directory, "result.json"))
    if last is None:
        return "pending"
    return "terminated" if last.get("done") else "running"


def orphan(directory, files):
    """What Tune knows of a trial directory without a record; None if it is not a started trial's.

    Returns the same keys as the keras-tuner reader's ``orphan``; ``mode`` is
    the arm the trial was to train (its config's ``init``), and nested config
    entries are flattened to "outer/inner" names.

    Example:
        >>> orphan("/nowhere", ["params.json"]) is None
        True
    """
    if PARAMS_FILE not in files or not ("result.json" in files or "error.txt" in files):
        return None
    params = _read_json(os.path.join(directory, PARAMS_FILE))
    status = engine_status(directory, files)
    error = None
    if "error.txt" in files:
        try:
            with open(os.path.join(directory, "error.txt")) as stream:
                error = last_line(stream.read())
        except OSError:
            pass
    last = _last_json_line(os.path.join(directory, "result.json")) or {}
    params = dict(params) if isinstance(params, dict) else {}
    return {
        "engine": ENGINE,
        "trial_id": last.get("trial_id") or os.path.basename(directory),
        "status": {"error": "error", "terminated": "completed"}.get(status, "running"),
        "error": error,
        "engine_status": status,
        "trial_dir": directory,
        "mode": params.pop("init", None),
        "hyperparameters": _flatten(params),
    }


def _flatten(params, prefix=""):
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _read_json(path):
    try:
        with open(path) as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return {}


def _last_json_line(path):
    try:
        with open(path) as stream:
            lines = [line for line in stream if line.strip()]
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None
