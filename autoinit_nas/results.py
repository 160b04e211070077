"""Results as pandas tables: every trial of a sweep, paired AutoInit-vs-default comparisons, statistics.

Three steps, each a plain ``DataFrame`` in and out:

```python
from autoinit_nas.results import trials_table, compare_inits, summarize

table = trials_table("out/demo")                       # one row per trial and arm
comparison = compare_inits(table, metric="val_accuracy", mode="max")
summary = summarize(comparison, by="hp_activation")    # wins/ties/losses, CI, Wilcoxon
```

``trials_table`` reads the engines' on-disk stores, never a live process:
the trial records and, through each engine's reader, the engine's own files
for trials without a record. Needs pandas and scipy, not keras-tuner or Ray.
"""

import math
import os

import numpy as np
import pandas as pd

from autoinit_nas.engines.keras_tuner import reader as keras_tuner_reader
from autoinit_nas.engines.ray import reader as ray_reader
from autoinit_nas.trials import records as _records

ARMS = ("autoinit", "default")
MODES = ("max", "min")
BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
# Depth buckets for grouping summaries: (upper bound inclusive, label).
DEPTH_BUCKETS = ((4, "1-4"), (9, "5-9"), (19, "10-19"), (math.inf, "20+"))

# Leading columns of a trials table, in order; hp_*, best_* and final_* follow.
ID_COLUMNS = ["engine", "trial_id", "architecture_id", "arm", "mode", "seed", "execution", "status", "error"]
MODEL_COLUMNS = ["parameter_count", "depth", "init_seconds", "train_seconds", "epochs", "diverged", "divergence"]
EXTRA_COLUMNS = [
    "initialized", "predicted_output_mean", "predicted_output_variance", "layers_without_estimator",
    "autoinit_seed", "objective", "direction", "reloaded_from", "engine_status", "updated_at", "trial_dir",
]

# Each engine's reader of its own on-disk store (status, trials without a record).
READERS = (keras_tuner_reader, ray_reader)


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
    for reader in READERS:
        status = reader.engine_status(directory, files)
        if status is not None:
            return status
    return None


def _orphans(source):
    """Rows for engine trial directories that have no record (failed before a record was written)."""
    if isinstance(source, (list, tuple)):
        return []
    found = []
    for directory, _, files in os.walk(_root(source)):
        if _records.RECORD_FILENAME in files:
            continue
        for reader in READERS:
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
                ARMS.index(frame["arm"].iat[i]) if frame["arm"].iat[i] in ARMS else len(ARMS),
            ),
        )
        frame = frame.iloc[order].reset_index(drop=True)
    return frame


def _natural(trial_id):
    text = "" if trial_id is None or (isinstance(trial_id, float) and math.isnan(trial_id)) else str(trial_id)
    return (0, int(text), text) if text.isdigit() else (1, 0, text)


# Comparing.


def compare_inits(table, metric="val_accuracy", mode="max", value="best"):
    """One row per architecture (and training hyperparameters) with both arms side by side.

    Rows of the two arms are paired when they share ``architecture_id`` and
    every ``hp_*`` value (``hp_tuner_*`` bookkeeping excluded): in "compare"
    sweeps that is the two arms of one trial; across two single-arm sweeps
    it is the same candidate trained under each init. Several rows of one
    arm for a key (executions, repeated trials) are averaged. Keys missing
    an arm are left out and counted in ``comparison.attrs["unpaired"]``.

    Example:
        >>> table = pd.DataFrame({
        ...     "architecture_id": ["a", "a", "b", "b"], "arm": ["autoinit", "default"] * 2,
        ...     "trial_id": ["0", "0", "1", "1"], "depth": [2, 2, 20, 20],
        ...     "diverged": [False, False, False, True], "best_val_loss": [0.5, 0.7, 0.4, 2.3]})
        >>> comparison = compare_inits(table, metric="val_loss", mode="min")
        >>> comparison[["architecture_id", "autoinit_val_loss", "default_val_loss", "difference"]].round(3).values.tolist()
        [['a', 0.5, 0.7, 0.2], ['b', 0.4, 2.3, 1.9]]

    Args:
        table: a ``trials_table``.
        metric: the metric to compare ("val_accuracy", "val_loss", ...).
        mode: "max" if higher is better, "min" if lower is better.
        value: "best" (each arm at its best epoch) or "final" (last epoch).

    Returns:
        A DataFrame: the pair key (``architecture_id``, ``hp_*``), ``depth``,
        ``depth_bucket``, ``parameter_count``, ``trial_ids``, ``autoinit_<metric>``,
        ``default_<metric>``, ``difference`` (positive means AutoInit did better,
        whatever ``mode``; NaN when an arm has no value), ``<arm>_diverged`` and
        ``<arm>_n`` (rows averaged). ``attrs``: metric, mode, value, unpaired.
    """
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
    if value not in ("best", "final"):
        raise ValueError(f"`value` must be 'best' or 'final'. Received: value={value!r}")
    column = f"{value}_{metric}"
    if column not in table:
        available = sorted(c.split("_", 1)[1] for c in table if c.startswith(f"{value}_"))
        raise ValueError(
            f"No metric '{metric}' in the table (looked for column '{column}'). "
            f"Metrics present: {available}. Received: metric={metric!r}"
        )
    hp = [c for c in table if c.startswith("hp_") and not c.startswith("hp_tuner_")]
    key = ["architecture_id"] + hp
    armed = table[table["arm"].isin(ARMS)].copy()
    armed = armed[armed["architecture_id"].notna()]
    armed["_value"] = pd.to_numeric(armed[column], errors="coerce").astype("float64")
    armed["_diverged"] = armed["diverged"].fillna(False).astype(bool) if "diverged" in armed else False
    for name in hp:  # unhashable or mixed hp values group by their text
        armed[name] = armed[name].map(lambda v: v if isinstance(v, (str, int, float, bool, type(None))) else str(v))

    columns = key + ["depth", "depth_bucket", "parameter_count", "trial_ids",
                     f"autoinit_{metric}", f"default_{metric}", "difference",
                     "autoinit_diverged", "default_diverged", "autoinit_n", "default_n"]
    result_rows, unpaired = [], 0
    if len(armed):
        for group_key, group in armed.groupby(key, dropna=False, sort=False):
            arms = {arm: part for arm, part in group.groupby("arm")}
            if set(arms) != set(ARMS):
                unpaired += 1
                continue
            group_key = group_key if isinstance(group_key, tuple) else (group_key,)
            row = dict(zip(key, group_key))
            depth = pd.to_numeric(group["depth"], errors="coerce").dropna() if "depth" in group else pd.Series([])
            params = (pd.to_numeric(group["parameter_count"], errors="coerce").dropna()
                      if "parameter_count" in group else pd.Series([]))
            row["depth"] = int(depth.iloc[0]) if len(depth) else None
            row["depth_bucket"] = depth_bucket(row["depth"])
            row["parameter_count"] = int(params.iloc[0]) if len(params) else None
            row["trial_ids"] = ",".join(dict.fromkeys(str(t) for t in group["trial_id"] if t is not None))
            for arm in ARMS:
                values = arms[arm]["_value"]
                row[f"{arm}_{metric}"] = float(values.mean()) if values.notna().any() else math.nan
                row[f"{arm}_diverged"] = bool(arms[arm]["_diverged"].any())
                row[f"{arm}_n"] = int(len(arms[arm]))
            difference = row[f"autoinit_{metric}"] - row[f"default_{metric}"]
            row["difference"] = difference if mode == "max" else -difference
            result_rows.append(row)
    comparison = pd.DataFrame(result_rows, columns=columns)
    if len(comparison):
        comparison = comparison.sort_values(["depth", "architecture_id"], na_position="last", kind="stable")
        comparison = comparison.reset_index(drop=True)
    comparison["depth"] = comparison["depth"].astype("Int64")
    comparison["parameter_count"] = comparison["parameter_count"].astype("Int64")
    for name in (f"autoinit_{metric}", f"default_{metric}", "difference"):
        comparison[name] = comparison[name].astype("float64")
    comparison.attrs.update(metric=metric, mode=mode, value=value, unpaired=unpaired)
    return comparison


def depth_bucket(depth, buckets=DEPTH_BUCKETS):
    """The label of the bucket ``depth`` falls in ("1-4", "5-9", "10-19", "20+"), None if unknown.

    Example:
        >>> [depth_bucket(d) for d in (1, 9, 10, 30, None)]
        ['1-4', '5-9', '10-19', '20+', None]
    """
    if depth is None or (isinstance(depth, float) and math.isnan(depth)) or depth is pd.NA:
        return None
    for upper, label in buckets:
        if depth <= upper:
            return label
    return None


def summarize(comparison, by=None, tie=0.0, samples=BOOTSTRAP_SAMPLES, seed=BOOTSTRAP_SEED):
    """Win/tie/loss counts, mean and median difference with bootstrap intervals, Wilcoxon p.

    Example:
        >>> comparison = pd.DataFrame({"difference": [0.1, 0.2, 0.0, -0.05, 0.3],
        ...                            "autoinit_diverged": [False] * 5,
        ...                            "default_diverged": [True, False, False, False, True]})
        >>> row = summarize(comparison).iloc[0]
        >>> int(row.wins), int(row.ties), int(row.losses), int(row.default_diverged)
        (3, 1, 1, 2)

    Args:
        comparison: a ``compare_inits`` table (positive ``difference`` =
            AutoInit better).
        by: None for one row over all pairs, or a column name to summarize
            each of its groups (``depth_bucket``, ``hp_activation``,
            ``hp_normalization``, a ``space`` column you added, ...).
        tie: differences with ``|d| <= tie`` count as ties.
        samples: bootstrap resamples (95% percentile intervals, fixed ``seed``).

    Returns:
        A DataFrame, one row per group (the ``by`` column first): ``pairs``
        (rows), ``n`` (pairs with a difference), ``wins``, ``ties``,
        ``losses``, ``mean_difference``, ``mean_low``, ``mean_high``,
        ``median_difference``, ``median_low``, ``median_high``,
        ``wilcoxon_p`` (two-sided signed-rank test of the differences),
        ``autoinit_diverged``, ``default_diverged`` and ``note``. Intervals
        and p are NaN, with a note, when fewer than two differences exist or
        all are zero.
    """
    if "difference" not in comparison:
        raise ValueError(
            "`comparison` must be a compare_inits table with a 'difference' column. "
            f"Received columns: {list(comparison.columns)}"
        )
    if by is None:
        groups = [(None, comparison)]
    else:
        if by not in comparison:
            raise ValueError(
                f"No column '{by}' to group by. Expected one of: {list(comparison.columns)}. Received: by={by!r}"
            )
        keys = comparison[by].map(lambda v: "(none)" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
        order = _group_order(by, keys)
        groups = [(value, comparison[keys == value]) for value in order]
    summary_rows = []
    for value, group in groups:
        row = {} if by is None else {by: value}
        row.update(_summary_row(group, tie, samples, seed))
        summary_rows.append(row)
    return pd.DataFrame(summary_rows)


def _group_order(by, keys):
    values = list(dict.fromkeys(keys))
    if by == "depth_bucket":
        labels = [label for _, label in DEPTH_BUCKETS]
        return sorted(values, key=lambda v: labels.index(v) if v in labels else len(labels))
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _summary_row(group, tie, samples, seed):
    differences = pd.to_numeric(group["difference"], errors="coerce").dropna().to_numpy(dtype=float)
    n = len(differences)
    notes = []
    row = {
        "pairs": int(len(group)),
        "n": int(n),
        "wins": int(np.sum(differences > tie)),
        "ties": int(np.sum(np.abs(differences) <= tie)),
        "losses": int(np.sum(differences < -tie)),
        "mean_difference": float(differences.mean()) if n else math.nan,
        "mean_low": math.nan,
        "mean_high": math.nan,
        "median_difference": float(np.median(differences)) if n else math.nan,
        "median_low": math.nan,
        "median_high": math.nan,
        "wilcoxon_p": math.nan,
    }
    if len(group) > n:
        notes.append(f"{len(group) - n} pair(s) without a value")
    if n < 2:
        notes.append(f"n={n}: no interval or test")
    else:
        rng = np.random.default_rng(seed)
        draws = differences[rng.integers(0, n, size=(samples, n))]
        alpha = (1.0 - CONFIDENCE) / 2.0
        means, medians = draws.mean(axis=1), np.median(draws, axis=1)
        row["mean_low"], row["mean_high"] = (float(q) for q in np.quantile(means, [alpha, 1 - alpha]))
        row["median_low"], row["median_high"] = (float(q) for q in np.quantile(medians, [alpha, 1 - alpha]))
        if np.all(differences == 0):
            notes.append("all differences are zero: no test")
        else:
            row["wilcoxon_p"] = _wilcoxon(differences, notes)
    for arm in ARMS:
        column = f"{arm}_diverged"
        row[column] = int(group[column].fillna(False).astype(bool).sum()) if column in group else 0
    row["note"] = "; ".join(notes)
    return row


def _wilcoxon(differences, notes):
    import warnings

    from scipy import stats

    nonzero = differences[differences != 0]
    if len(nonzero) < len(differences):
        notes.append(f"{len(differences) - len(nonzero)} zero difference(s) dropped by the test")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(stats.wilcoxon(nonzero).pvalue)
    except ValueError as error:
        notes.append(f"no test: {error}")
        return math.nan


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
