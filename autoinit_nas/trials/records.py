"""The trial record: one JSON file per trial, written atomically next to the engine's own files.

The format (version 1) is documented in docs/engines.md; ``rows`` flattens a
record into the rows result tables use. A record is readable without the
engine or the process that wrote it.

Example:
    >>> record = new_record("keras_tuner", "00", "autoinit", seed=1)
    >>> record["format"], record["version"], record["status"]
    ('autoinit_nas.trial_record', 1, 'running')
"""

import datetime
import json
import math
import os
import socket
import tempfile

FORMAT = "autoinit_nas.trial_record"
VERSION = 1
# Versions this code reads; a newer version is refused with a message rather than misread.
READABLE_VERSIONS = (1,)
RECORD_FILENAME = "autoinit_record.json"
STATUSES = ("running", "completed", "diverged", "error")
# Prefixes of hyperparameter names engines keep for their own bookkeeping ("tuner/" of
# keras-tuner); the engines register them (``autoinit_nas.engines.register_engine``).
_BOOKKEEPING = set()


def add_bookkeeping(prefixes):
    """Treat hyperparameter names starting with any of ``prefixes`` as engine bookkeeping."""
    _BOOKKEEPING.update(str(prefix) for prefix in prefixes)


def is_bookkeeping(name):
    """Whether hyperparameter ``name`` is an engine's bookkeeping, not part of the candidate.

    Example:
        >>> add_bookkeeping(["tuner/"])
        >>> is_bookkeeping("tuner/epochs"), is_bookkeeping("units")
        (True, False)
    """
    return any(str(name).startswith(prefix) for prefix in _BOOKKEEPING)


def is_bookkeeping_column(column):
    """Whether a results-table column (``hp_<name>``, "/" as "_") holds an engine's bookkeeping.

    Example:
        >>> add_bookkeeping(["tuner/"])
        >>> is_bookkeeping_column("hp_tuner_epochs"), is_bookkeeping_column("hp_units")
        (True, False)
    """
    return any(str(column).startswith("hp_" + prefix.replace("/", "_")) for prefix in _BOOKKEEPING)


def new_record(engine, trial_id, init, seed=None, hyperparameters=None, **fields):
    """A fresh record dict with every top-level key of the format.

    Example:
        >>> record = new_record("keras_tuner", "00", "autoinit", seed=1)
        >>> record["status"], record["executions"]
        ('running', [])

    Args:
        engine: who writes it, e.g. "keras_tuner" or "ray_tune".
        trial_id: the engine's trial id (a string).
        init: "autoinit", "default" or "compare".
        seed: the trial's seed.
        hyperparameters: dict of hyperparameter values.
        **fields: any other top-level key of the format (architecture_id, ...).
    """
    record = {
        "format": FORMAT,
        "version": VERSION,
        "engine": engine,
        "trial_id": None if trial_id is None else str(trial_id),
        "status": "running",
        "reason": None,
        "init": init,
        "seed": seed,
        "hyperparameters": dict(hyperparameters or {}),
        "architecture_id": None,
        "parameter_count": None,
        "depth": None,
        "objective": None,
        "reloaded_from": None,
        "worker": {"host": socket.gethostname(), "pid": os.getpid()},
        "updated_at": None,
        "executions": [],
    }
    unknown = set(fields) - set(record)
    if unknown:
        raise ValueError(
            f"Unknown record fields {sorted(unknown)}. Expected some of: {sorted(record)}"
        )
    record.update(fields)
    return record


def write_record(directory, record):
    """Write ``record`` to ``directory/RECORD_FILENAME`` atomically; returns the path.

    The file is written next to it and renamed into place, so a reader never
    sees half a record. ``updated_at`` is set to now (UTC).
    """
    if record.get("status") not in STATUSES:
        raise ValueError(
            f"Record `status` must be one of {STATUSES}. Received: status={record.get('status')!r}"
        )
    os.makedirs(directory, exist_ok=True)
    record["updated_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    text = json.dumps(json_safe(record), indent=1, sort_keys=True, allow_nan=False)
    path = os.path.join(directory, RECORD_FILENAME)
    handle, temporary = tempfile.mkstemp(prefix=".autoinit_record.", dir=directory)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def read_record(path):
    """The record at ``path`` (a record file or a trial directory), or None if absent."""
    if os.path.isdir(path):
        path = os.path.join(path, RECORD_FILENAME)
    if not os.path.exists(path):
        return None
    with open(path) as stream:
        record = json.load(stream)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(
            f"'{path}' is not an autoinit_nas trial record. Expected a JSON object with "
            f"\"format\": \"{FORMAT}\". Received: {str(record)[:80]}"
        )
    if record.get("version", 1) not in READABLE_VERSIONS:
        raise ValueError(
            f"'{path}' is a trial record of version {record.get('version')!r}; this autoinit_nas reads "
            f"versions {list(READABLE_VERSIONS)}. Upgrade autoinit_nas to read it."
        )
    return record


def read_records(root):
    """Every record under ``root`` (searched recursively), sorted by trial id.

    Example:
        >>> read_records("/nonexistent/project")
        []
    """
    found = []
    for directory, _, files in os.walk(root):
        if RECORD_FILENAME in files:
            record = read_record(os.path.join(directory, RECORD_FILENAME))
            if record is not None:
                found.append(record)
    return sorted(found, key=lambda record: (str(record.get("trial_id")), record.get("engine") or ""))


def rows(record):
    """One flat dict per (execution, arm) of ``record``.

    Keys: the record's scalar top-level fields (``trial_id``, ``status``,
    ``init`` renamed ``mode``, ``seed``, ``architecture_id``, ...), ``arm``
    and ``execution``, the arm's scalar fields (``init_seconds``,
    ``diverged``, ...), ``hp/<name>`` per hyperparameter, ``best/<metric>``
    and ``final/<metric>`` per metric. A record with no execution yet gives
    one row with ``arm`` None.

    Example:
        >>> [row["arm"] for row in rows(new_record("keras_tuner", "00", "default"))]
        [None]
    """
    base = {
        key: value
        for key, value in record.items()
        if key not in ("executions", "hyperparameters", "objective", "worker", "init", "format")
    }
    base["mode"] = record.get("init")
    objective = record.get("objective") or {}
    base["objective"] = objective.get("name")
    base["direction"] = objective.get("direction")
    for key, value in (record.get("worker") or {}).items():
        base[f"worker/{key}"] = value
    for name, value in (record.get("hyperparameters") or {}).items():
        base[f"hp/{name}"] = value
    result = []
    for execution in record.get("executions") or []:
        for arm, fields in (execution.get("arms") or {}).items():
            row = dict(base, arm=arm, execution=execution.get("execution"))
            for key, value in fields.items():
                if key == "metrics":
                    row.update({f"best/{name}": v for name, v in (value or {}).items()})
                elif key == "final_metrics":
                    row.update({f"final/{name}": v for name, v in (value or {}).items()})
                elif key in ("history", "estimates", "unsupported_layers"):
                    continue
                else:
                    row[key] = value
            result.append(row)
    if not result:
        result.append(dict(base, arm=None, execution=None))
    return result



def json_safe(value):
    """``value`` with numpy scalars made Python, tuples made lists, non-finite floats None."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
        if isinstance(value, (bool, int, str)):
            return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


def last_line(text):
    """The last non-blank line of ``text`` (an error message, a traceback), stripped; None if none.

    Example:
        >>> last_line("Traceback ...\\n  ValueError: boom\\n")
        'ValueError: boom'
    """
    lines = [line.strip() for line in str(text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else None
