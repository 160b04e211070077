"""A sweep's state on disk (``out/sweep.json``): its spec and runs, for resuming and reporting."""

import datetime
import json
import os
import shutil

from autoinit_nas.engines.errors import SweepError
from autoinit_nas.sweeps.spec import IDENTITY, SweepSpec

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
    return SweepSpec.from_dict(state["spec"])


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

    A field the saved spec lacks (written by an older version) counts as its default;
    engine options saved as top-level fields (``tuner``) count as engine options.
    """
    if state is None:
        return
    saved = SweepSpec.from_dict(state.get("spec") or {})
    try:
        previous = saved.identity()
    except (KeyError, ValueError):  # an engine no longer registered, or options it no longer takes
        previous = {**saved.engine_options, **{name: getattr(saved, name) for name in IDENTITY}}
    differences = [
        f"{name}: {previous.get(name)!r} there, {value!r} now"
        for name, value in spec.identity().items()
        if jsonable(previous.get(name)) != jsonable(value)
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
