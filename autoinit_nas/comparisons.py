"""Paired comparisons of init arms: every arm of a trials table against a baseline arm, and summaries.

``autoinit_nas.results`` re-exports ``compare_inits``, ``summarize`` and
``depth_bucket``; import them from there. The statistics come from
``autoinit_nas.stats``; arm names come from the table (any arm of
``autoinit_nas.init_methods.METHODS``, or any name a record holds).

Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({"architecture_id": ["a"] * 3 + ["b"] * 3, "arm": ["he", "lecun", "lsuv"] * 2,
    ...                       "trial_id": ["0"] * 3 + ["1"] * 3, "best_val_accuracy": [.5, .6, .4, .7, .9, .7]})
    >>> comparison = compare_inits(table, baseline="he")
    >>> comparison[["architecture_id", "arm", "baseline", "difference"]].round(2).values.tolist()
    [['a', 'lecun', 'he', 0.1], ['b', 'lecun', 'he', 0.2], ['a', 'lsuv', 'he', -0.1], ['b', 'lsuv', 'he', 0.0]]
"""

import math

import numpy as np
import pandas as pd

from autoinit_nas import engines  # noqa: F401 - registers each engine's bookkeeping hyperparameters
from autoinit_nas import stats
from autoinit_nas.trials import records
from autoinit_nas.init_methods import DEFAULT_BASELINE

MODES = ("max", "min")
BOOTSTRAP_SAMPLES = stats.SAMPLES
BOOTSTRAP_SEED = stats.SEED
CONFIDENCE = stats.CONFIDENCE
# Depth buckets for grouping summaries: (upper bound inclusive, label).
DEPTH_BUCKETS = ((4, "1-4"), (9, "5-9"), (19, "10-19"), (math.inf, "20+"))


def default_baseline(arms):
    """The baseline arm among ``arms`` (in table order): ``"default"`` when present, else the first.

    Example:
        >>> default_baseline(["autoinit", "default"]), default_baseline(["he", "lecun"]), default_baseline([])
        ('default', 'he', None)
    """
    arms = list(arms)
    if DEFAULT_BASELINE in arms:
        return DEFAULT_BASELINE
    return arms[0] if arms else None


def _checked(table, metric, mode, value):
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
    return column


def furthest_of_each_chain(table):
    """The rows of ``table`` that no other trial continues (Hyperband, PBT): one budget per candidate.

    A continued trial (``reloaded_from``) trains on from its parent's weights, so
    the parent's shorter run and the child's longer one are one candidate at two
    budgets; averaging them would mix budgets. Only the furthest trial is kept.

    Example:
        >>> chain = pd.DataFrame({"trial_id": ["0", "1", "2"], "reloaded_from": [None, "0", None]})
        >>> furthest_of_each_chain(chain)["trial_id"].tolist()
        ['1', '2']
    """
    if "reloaded_from" not in table or "trial_id" not in table:
        return table
    continued = set(table["reloaded_from"].dropna().astype(str))
    return table[~table["trial_id"].astype(str).isin(continued)]


def _armed(table, column, hp):
    table = furthest_of_each_chain(table)
    armed = table[table["arm"].notna() & table["architecture_id"].notna()].copy()
    armed["_value"] = pd.to_numeric(armed[column], errors="coerce").astype("float64")
    armed["_diverged"] = armed["diverged"].fillna(False).astype(bool) if "diverged" in armed else False
    for name in hp:  # unhashable or mixed hp values group by their text
        armed[name] = armed[name].map(lambda v: v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
    return armed


def compare_inits(table, metric="val_accuracy", mode="max", value="best", baseline=None):
    """Every arm against a baseline arm, paired per architecture: one row per (candidate, arm).

    Rows are paired when they share ``architecture_id`` and every ``hp_*``
    value (``hp_tuner_*`` bookkeeping excluded): the arms of one trial, or
    the same candidate trained under each init in separate trials. Several
    rows of one arm for a key (executions, repeats) are averaged; a trial that
    another continues (Hyperband's ``reloaded_from``) is left out, so each
    candidate is read at its furthest budget. Keys that give no pair are
    counted in ``attrs["unpaired"]``.

    Example:
        >>> table = pd.DataFrame({
        ...     "architecture_id": ["a", "a", "b", "b"], "arm": ["autoinit", "default"] * 2,
        ...     "trial_id": ["0", "0", "1", "1"], "depth": [2, 2, 20, 20],
        ...     "diverged": [False, False, False, True], "best_val_loss": [0.5, 0.7, 0.4, 2.3]})
        >>> comparison = compare_inits(table, metric="val_loss", mode="min")
        >>> comparison[["architecture_id", "arm", "baseline", "difference"]].round(3).values.tolist()
        [['a', 'autoinit', 'default', 0.2], ['b', 'autoinit', 'default', 1.9]]

    Args:
        table: a ``trials_table``.
        metric: the metric to compare ("val_accuracy", "val_loss", ...).
        mode: "max" if higher is better, "min" if lower is better.
        value: "best" (each arm at its best epoch) or "final" (last epoch).
        baseline: the arm every other arm is compared with (default:
            ``"default"`` when the table has it, else its first arm).

    Returns:
        A DataFrame sorted by arm (table order), depth and architecture: the
        pair key, ``arm``, ``baseline``, ``depth``, ``depth_bucket``,
        ``parameter_count``, ``trial_ids``, ``arm_value``, ``baseline_value``,
        ``difference`` (positive = the arm did better, whatever ``mode``; NaN
        when a side has no value), ``arm_diverged``, ``baseline_diverged``,
        then per arm of the table ``<arm>_<metric>``, ``<arm>_diverged`` and
        ``<arm>_n`` (rows averaged). ``attrs``: metric, mode, value,
        baseline, arms (compared), unpaired.
    """
    column = _checked(table, metric, mode, value)
    hp = [c for c in table if c.startswith("hp_") and not records.is_bookkeeping_column(c)]
    key = ["architecture_id"] + hp
    armed = _armed(table, column, hp)
    arms = list(dict.fromkeys(armed["arm"]))
    if baseline is None:
        baseline = default_baseline(arms)
    elif baseline not in arms:
        raise ValueError(f"No arm {baseline!r} in the table to compare against. "
                         f"Arms present: {arms}. Received: baseline={baseline!r}")
    compared = [arm for arm in arms if arm != baseline]
    rows, unpaired = [], 0
    for group_key, group in (armed.groupby(key, dropna=False, sort=False) if len(armed) else []):
        pairs = _pair_rows(dict(zip(key, group_key if isinstance(group_key, tuple) else (group_key,))),
                           group, arms, compared, baseline, metric, mode)
        unpaired += not pairs
        rows.extend(pairs)
    return _comparison_frame(rows, key, arms, compared, metric, dict(
        metric=metric, mode=mode, value=value, baseline=baseline, arms=compared, unpaired=unpaired))


def _arm_cells(part):
    values = part["_value"]
    return (float(values.mean()) if values.notna().any() else math.nan, bool(part["_diverged"].any()), int(len(part)))


def _pair_rows(key_values, group, arms, compared, baseline, metric, mode):
    """The rows of one candidate: one per compared arm it trained next to the baseline."""
    cells = {arm: _arm_cells(part) for arm, part in group.groupby("arm", sort=False)}
    if baseline not in cells:
        return []
    depth = pd.to_numeric(group["depth"], errors="coerce").dropna() if "depth" in group else pd.Series([])
    params = (pd.to_numeric(group["parameter_count"], errors="coerce").dropna()
              if "parameter_count" in group else pd.Series([]))
    common = dict(key_values, depth=int(depth.iloc[0]) if len(depth) else None,
                  parameter_count=int(params.iloc[0]) if len(params) else None)
    common["depth_bucket"] = depth_bucket(common["depth"])
    for arm in arms:
        present = cells.get(arm, (math.nan, False, 0))
        common.update({f"{arm}_{metric}": present[0], f"{arm}_diverged": present[1], f"{arm}_n": present[2]})
    rows = []
    for arm in (name for name in compared if name in cells):
        sides = group[group["arm"].isin([arm, baseline])]
        difference = cells[arm][0] - cells[baseline][0]
        rows.append(dict(
            common, arm=arm, baseline=baseline,
            trial_ids=",".join(dict.fromkeys(str(t) for t in sides["trial_id"] if t is not None)),
            arm_value=cells[arm][0], baseline_value=cells[baseline][0],
            difference=difference if mode == "max" else -difference,
            arm_diverged=cells[arm][1], baseline_diverged=cells[baseline][1]))
    return rows


def _comparison_frame(rows, key, arms, compared, metric, attrs):
    per_arm = [f"{arm}_{metric}" for arm in arms] + [f"{arm}_diverged" for arm in arms] + [f"{arm}_n" for arm in arms]
    columns = key + ["arm", "baseline", "depth", "depth_bucket", "parameter_count", "trial_ids", "arm_value",
                     "baseline_value", "difference", "arm_diverged", "baseline_diverged"] + per_arm
    comparison = pd.DataFrame(rows, columns=columns)
    if len(comparison):
        comparison["_arm"] = comparison["arm"].map(compared.index)
        comparison = comparison.sort_values(["_arm", "depth", "architecture_id"], na_position="last", kind="stable")
        comparison = comparison.drop(columns="_arm").reset_index(drop=True)
    for name in ("depth", "parameter_count"):
        comparison[name] = comparison[name].astype("Int64")
    for name in ["arm_value", "baseline_value", "difference"] + [f"{arm}_{metric}" for arm in arms]:
        comparison[name] = comparison[name].astype("float64")
    comparison.attrs.update(attrs)
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
    """Per arm against its baseline: win/tie/loss, mean and median difference with intervals, Wilcoxon, Holm.

    Example:
        >>> comparison = pd.DataFrame({"difference": [0.1, 0.2, 0.0, -0.05, 0.3],
        ...                            "autoinit_diverged": [False] * 5,
        ...                            "default_diverged": [True, False, False, False, True]})
        >>> row = summarize(comparison).iloc[0]
        >>> int(row.wins), int(row.ties), int(row.losses), int(row.default_diverged)
        (3, 1, 1, 2)

    Args:
        comparison: a ``compare_inits`` table (positive ``difference`` = the
            arm did better than its baseline).
        by: None for one row per arm over all its pairs, or a column name to
            summarize each of its groups (``depth_bucket``, ``hp_activation``,
            ``hp_normalization``, a ``space`` column you added, ...).
        tie: differences with ``|d| <= tie`` count as ties.
        samples: bootstrap resamples (95% percentile intervals, fixed ``seed``).

    Returns:
        A DataFrame, one row per arm (and ``by`` group): ``arm``,
        ``baseline`` (when the comparison has them), the ``by`` column,
        ``pairs`` (rows), ``n`` (pairs with a difference), ``wins``,
        ``ties``, ``losses``, ``mean_difference``, ``mean_low``,
        ``mean_high``, ``median_difference``, ``median_low``,
        ``median_high``, ``wilcoxon_p`` (``autoinit_nas.stats.wilcoxon_p``:
        1.0 when every difference is zero), ``p_holm`` (Holm's correction
        over the arms compared, within each ``by`` group), one count per
        ``*_diverged`` column, and ``note``. Intervals and p are NaN, with a
        note, below two differences.
    """
    if "difference" not in comparison:
        raise ValueError(
            "`comparison` must be a compare_inits table with a 'difference' column. "
            f"Received columns: {list(comparison.columns)}"
        )
    if by is not None and by not in comparison:
        raise ValueError(
            f"No column '{by}' to group by. Expected one of: {list(comparison.columns)}. Received: by={by!r}"
        )
    rows = []
    for arm_key, part in _arm_parts(comparison):
        for value, group in _by_parts(part, by):
            row = dict(arm_key)
            if by is not None:
                row[by] = value
            row.update(_summary_row(group, tie, samples, seed))
            rows.append(row)
    summary = pd.DataFrame(rows)
    if len(summary):
        holm_groups = summary[by] if by is not None else pd.Series("", index=summary.index)
        summary.insert(summary.columns.get_loc("wilcoxon_p") + 1, "p_holm", math.nan)
        for _, index in summary.groupby(holm_groups, sort=False, dropna=False).groups.items():
            summary.loc[index, "p_holm"] = stats.holm(summary.loc[index, "wilcoxon_p"])
    return summary


def _arm_parts(comparison):
    if "arm" not in comparison:
        return [({}, comparison)]
    baseline = comparison["baseline"] if "baseline" in comparison else pd.Series(None, index=comparison.index)
    pairs = list(dict.fromkeys(zip(comparison["arm"], baseline)))
    return [({"arm": arm, "baseline": base}, comparison[(comparison["arm"] == arm) & (baseline == base)])
            for arm, base in pairs]


def _by_parts(comparison, by):
    if by is None:
        return [(None, comparison)]
    keys = comparison[by].map(lambda v: "(none)" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
    return [(value, comparison[keys == value]) for value in _group_order(by, keys)]


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
    differences = pd.to_numeric(group["difference"], errors="coerce").to_numpy(dtype=float)
    differences = differences[np.isfinite(differences)]  # an infinite loss is a divergence, not a value
    n = len(differences)
    wins, ties, losses = stats.win_tie_loss(differences, tie)
    intervals = stats.bootstrap_intervals(differences, ("mean", "median"), samples, seed, CONFIDENCE)
    row = {
        "pairs": int(len(group)), "n": int(n), "wins": wins, "ties": ties, "losses": losses,
        "mean_difference": float(differences.mean()) if n else math.nan,
        "mean_low": intervals["mean"][0], "mean_high": intervals["mean"][1],
        "median_difference": float(np.median(differences)) if n else math.nan,
        "median_low": intervals["median"][0], "median_high": intervals["median"][1],
        "wilcoxon_p": math.nan,
    }
    notes = [f"{len(group) - n} pair(s) without a finite value"] if len(group) > n else []
    if n < 2:
        notes.append(f"n={n}: no interval or test")
    else:
        row["wilcoxon_p"] = _wilcoxon(differences, notes)
    for column in (c for c in group.columns if c.endswith("_diverged")):
        row[column] = int(group[column].fillna(False).astype(bool).sum())
    row["note"] = "; ".join(notes)
    return row


def _wilcoxon(differences, notes):
    zeros = int(np.sum(differences == 0))
    if zeros == len(differences):
        notes.append("all differences are zero: p = 1 (no evidence of a difference)")
    elif zeros:
        notes.append(f"{zeros} zero difference(s) dropped by the test")
    try:
        return stats.wilcoxon_p(differences)
    except ValueError as error:
        notes.append(f"no test: {error}")
        return math.nan
