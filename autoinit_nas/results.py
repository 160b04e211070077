"""Results as pandas tables: every trial of a sweep, paired comparisons of any arms against a baseline arm.

Three steps, each a plain ``DataFrame`` in and out:

```python
from autoinit_nas.results import trials_table, compare_inits, summarize

table = trials_table("out/demo")                       # one row per trial and arm
comparison = compare_inits(table, metric="val_accuracy", mode="max")   # baseline="he" picks the baseline arm
summary = summarize(comparison, by="hp_activation")    # per arm: wins/ties/losses, CI, Wilcoxon, Holm
```

``trials_table`` reads the engines' on-disk stores, never a live process:
the trial records and, through each engine's reader, the engine's own files
for trials without a record. Needs pandas and scipy, not keras-tuner or Ray.
"""

import math
import os

import pandas as pd

from autoinit_nas.engines import ENGINES
from autoinit_nas.comparisons import (  # noqa: F401 - the comparisons' public home is here
    BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, CONFIDENCE, DEPTH_BUCKETS, MODES, compare_inits, default_baseline,
    depth_bucket, summarize,
)
from autoinit_nas.trials import records as _records
from autoinit_nas.trials.arms import ARMS as _ARM_ORDER

# Leading columns of a trials table, in order; hp_*, best_* and final_* follow.
ID_COLUMNS = ["engine", "trial_id", "architecture_id", "arm", "mode", "seed", "execution", "status", "error"]
MODEL_COLUMNS = ["parameter_count", "depth", "init_seconds", "train_seconds", "epochs", "diverged", "divergence"]
EXTRA_COLUMNS = [
    "initialized", "predicted_output_mean", "predicted_output_variance", "layers_without_estimator",
    "autoinit_seed", "objective", "direction", "reloaded_from", "engine_status", "updated_at", "trial_dir",
]



def readers():
    """Each registered engine's reader of its own on-disk store (``autoinit_nas.engines.ENGINES``).

    Example:
        >>> all(hasattr(reader, "orphan") for reader in readers())
        True
    """
    found = (engine.reader_module() for engine in ENGINES.values())
    return [reader for reader in found if reader is not None]


# Reading.


def trials_table(source):
    """One tidy row per trial and init arm (and execution), read from disk.

    Example:
        >>> from autoinit_nas.trials import records
        >>> record = records.new_record("keras_tuner", "0", "autoinit", seed=1,
        ...                             hyperparameters={"depth": 3}, depth=3)
        >>> record["executions"] = [{"execution": 0, "arms": {"autoinit": {
        ...     "init_seconds": 0.01, "train_seconds": 1.2, "diverged": False,
        ...     "metrics": {"val_accuracy": 0.9}, "final_metrics": {"val_accuracy": 0.8}}}}]
        >>> table = trials_table([record])
        >>> table[["trial_id", "arm", "hp_depth", "best_val_accuracy", "final_val_accuracy"]].values.tolist()
        [['0', 'autoinit', 3, 0.9, 0.8]]

    Args:
        source: what to read:
            - a keras-tuner tuner (its ``project_dir`` is read),
            - a Ray Tune ``ResultGrid`` (its ``experiment_path``),
            - a directory: a keras-tuner project, a Ray experiment, a sweep
              output directory, or anything above them (searched recursively),
            - or a list of record dicts (``records.read_records`` output).

    Returns:
        A ``pandas.DataFrame``: ``ID_COLUMNS``, one ``hp_<name>`` per
        hyperparameter, ``MODEL_COLUMNS``, ``best_<metric>`` (at the arm's best
        epoch) and ``final_<metric>`` (last epoch) per metric, then bookkeeping.
        A trial with no trained arm yet has one row with ``arm`` missing; in
        "compare" mode a trial completes even when its default arm diverged
        (that arm's ``diverged`` says so). Non-finite metric values are NaN.
    """
    found = _collect(source)
    table_rows = []
    for record, trial_dir, engine_status in found:
        for row in _records.rows(record):
            row = _tidy(row, trial_dir, engine_status)
            if "hp_init" in row and row["hp_init"] in (row.get("arm"), row.get("mode")):
                del row["hp_init"]  # Ray puts the arm in the trial config; it is the `arm` column
            table_rows.append(row)
    table_rows.extend(_orphans(source))
    return _frame(table_rows)


def _collect(source):
    """[(record, trial directory or None, engine status or None)] from ``source``."""
    if isinstance(source, (list, tuple)):
        if not all(isinstance(item, dict) for item in source):
            raise TypeError(
                "A list `source` must hold record dicts (autoinit_nas.trials.records). "
                f"Received items of types {sorted({type(item).__name__ for item in source})}"
            )
        return [(record, None, None) for record in source]
    root = _root(source)
    found = []
    for directory, _, files in os.walk(root):
        if _records.RECORD_FILENAME in files:
            record = _records.read_record(os.path.join(directory, _records.RECORD_FILENAME))
            if record is not None:
                found.append((record, directory, _engine_status(directory, files)))
    return found


def _root(source):
    """The directory behind a tuner, a ResultGrid or a path."""
    if isinstance(source, (str, os.PathLike)):
        root = os.fspath(source)
    elif hasattr(source, "project_dir"):  # keras_tuner Tuner
        root = source.project_dir
    elif hasattr(source, "experiment_path"):  # ray.tune.ResultGrid
        root = source.experiment_path
        if "://" in str(root):
            scheme, _, rest = str(root).partition("://")
            if scheme != "file":
                raise ValueError(
                    "trials_table reads local experiment directories. Received a ResultGrid stored at "
                    f"{root!r}; sync it to a local directory and pass that path."
                )
            root = rest
    else:
        raise TypeError(
            "`source` must be a keras-tuner tuner, a Ray ResultGrid, a directory path or a list of "
            f"records. Received: {source!r} of type {type(source).__name__}"
        )
    if not os.path.isdir(root):
        raise FileNotFoundError(f"No results directory at '{root}'. Received: source={source!r}")
    return root


def _engine_status(directory, files):
    """The engine's own view of a trial directory's status, when it leaves one."""
    for reader in readers():
        status = reader.engine_status(directory, files)
        if status is not None:
            return status
    return None


def _orphans(source):
    """Rows for engine trial directories that have no record (failed before a record was written)."""
    if isinstance(source, (list, tuple)):
        return []
    found, engine_readers = [], readers()
    for directory, _, files in os.walk(_root(source)):
        if _records.RECORD_FILENAME in files:
            continue
        for reader in engine_readers:
            trial = reader.orphan(directory, files)
            if trial is not None:
                hyperparameters = trial.pop("hyperparameters")
                trial.update({_hp_column(name): value for name, value in hyperparameters.items()})
                trial["arm"] = None
                found.append(trial)
                break
    return found


def _hp_column(name):
    return "hp_" + str(name).replace("/", "_")


def _tidy(row, trial_dir, engine_status):
    tidy = {"trial_dir": trial_dir, "engine_status": engine_status}
    for key, value in row.items():
        if key.startswith("hp/"):
            tidy[_hp_column(key[3:])] = value
        elif key.startswith("best/"):
            tidy["best_" + key[5:]] = value
        elif key.startswith("final/"):
            tidy["final_" + key[6:]] = value
        elif key.startswith("worker/"):
            tidy["worker_" + key[7:]] = value
        elif key == "reason":
            tidy["error"] = value
        else:
            tidy[key] = value
    return tidy


def _frame(table_rows):
    frame = pd.DataFrame(table_rows)
    for column in ID_COLUMNS + MODEL_COLUMNS:
        if column not in frame:
            frame[column] = None
    hp = sorted(column for column in frame if column.startswith("hp_"))
    metric_names = sorted({column.split("_", 1)[1] for column in frame if column.startswith(("best_", "final_"))})
    metrics = [f"{kind}_{name}" for name in metric_names for kind in ("final", "best") if f"{kind}_{name}" in frame]
    extra = [column for column in EXTRA_COLUMNS if column in frame]
    rest = sorted(set(frame.columns) - set(ID_COLUMNS + MODEL_COLUMNS + hp + metrics + extra))
    frame = frame[ID_COLUMNS + hp + MODEL_COLUMNS + metrics + extra + rest]
    for column in metrics + ["init_seconds", "train_seconds", "predicted_output_mean", "predicted_output_variance"]:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in ("parameter_count", "depth", "epochs", "execution", "layers_without_estimator"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in ("diverged", "initialized"):
        if column in frame:
            frame[column] = frame[column].astype("boolean")
    if len(frame):
        order = sorted(
            range(len(frame)),
            key=lambda i: (
                str(frame["engine"].iat[i] or ""),
                _natural(frame["trial_id"].iat[i]),
                str(frame["trial_dir"].iat[i] or "") if "trial_dir" in frame else "",
                -1 if pd.isna(frame["execution"].iat[i]) else int(frame["execution"].iat[i]),
                _ARM_ORDER.index(frame["arm"].iat[i]) if frame["arm"].iat[i] in _ARM_ORDER else len(_ARM_ORDER),
            ),
        )
        frame = frame.iloc[order].reset_index(drop=True)
    return frame


def _natural(trial_id):
    text = "" if trial_id is None or (isinstance(trial_id, float) and math.isnan(trial_id)) else str(trial_id)
    return (0, int(text), text) if text.isdigit() else (1, 0, text)


# Exporting.


def to_csv(table, path):
    """Write ``table`` to ``path`` as CSV (no index; NaN as empty cells); returns the path.

    Same as ``table.to_csv(path, index=False)``, creating missing folders.
    """
    _parent(path)
    table.to_csv(path, index=False)
    return os.fspath(path)


def to_parquet(table, path):
    """Write ``table`` to ``path`` as Parquet (needs ``pyarrow``); returns the path.

    Same as ``table.to_parquet(path, index=False)`` after turning columns of
    mixed types into text (Parquet columns have one type), creating folders.

    Raises:
        ImportError: pyarrow is not installed (``pip install "autoinit_nas[results]"``).
    """
    try:
        import pyarrow  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "Writing Parquet needs pyarrow: pip install pyarrow (or the `results` extra)."
        ) from error
    frame = table.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            kinds = {type(v) for v in frame[column] if v is not None and not (isinstance(v, float) and math.isnan(v))}
            if len(kinds) > 1 or (kinds and not kinds <= {str, bool, int, float}):
                frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    _parent(path)
    frame.to_parquet(path, index=False)
    return os.fspath(path)


def _parent(path):
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
