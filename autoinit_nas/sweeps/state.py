"""A sweep's state on disk (``out/sweep.json``): its spec and runs, for resuming and reporting."""

import dataclasses
import datetime
import json
import os
import shutil

from autoinit_nas.engines.errors import SweepError
from autoinit_nas.sweeps.spec import SweepSpec

SPEC_FILE = "sweep.json"


def read_spec(out):
    """The ``SweepSpec`` saved in ``out/sweep.json``, or None.

    Example:
        >>> read_spec("/nonexistent") is None
        True
    """
    state = read_state(os.path.join(out, SPEC_FILE))
    if not state or not isinstance(state.get("spec"), dict):
        return None
    fields = {field.name for field in dataclasses.fields(SweepSpec)}
    return SweepSpec(**{key: value for key, value in state["spec"].items() if key in fields})


def read_state(path):
    """The JSON state at ``path``, or None when absent; ``SweepError`` when it is not JSON."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as stream:
        try:
            return json.load(stream)
        except ValueError:
            raise SweepError(f"'{path}' is not valid JSON; delete it or use --overwrite.") from None


def write_state(path, state):
    """Write ``state`` to ``path`` as JSON, atomically."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(jsonable(state), stream, indent=1, sort_keys=True)
    os.replace(temporary, path)


def check_resumable(state, spec):
    """Raise ``SweepError`` when ``state`` holds a sweep other than ``spec`` (an ``IDENTITY`` field differs).

    A field the saved spec lacks (written by an older version) counts as its default.
    """
    if state is None:
        return
    previous = state.get("spec") or {}
    defaults = {field.name: field.default for field in dataclasses.fields(SweepSpec)}
    differences = [
        f"{name}: {previous.get(name, defaults.get(name))!r} there, {value!r} now"
        for name, value in spec.identity().items()
        if jsonable(previous.get(name, defaults.get(name))) != jsonable(value)
    ]
    if differences:
        raise SweepError(
            f"'{spec.out}' holds a different sweep ({'; '.join(differences)}). Use another --out, "
            "pass the same settings to resume it, or --overwrite to start over."
        )


def clear(out, folders):
    """Delete the sweep state, the report and the engines' ``folders`` under ``out``."""
    if not os.path.isdir(out):
        return
    for name in (SPEC_FILE, "report", *folders):
        path = os.path.join(out, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def jsonable(value):
    """``value`` as it reads back from JSON (tuples as lists, unknown objects as text)."""
    return json.loads(json.dumps(value, default=str))


def now():
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
