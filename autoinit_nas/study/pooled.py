"""Pooled rows across cells: mean rho with a stratified bootstrap, and the paired test accuracy of the arms.

A cell is one (space, dataset): every statistic is computed within cells, then
pooled into rows with ``space == dataset == "all"``; no cell is ever chosen.

- **Pooled rho** (``pooled_ranking``, ``pooled_ceiling``): the unweighted
  mean of the cells' Spearman rho: every cell counts once whatever its number
  of candidates, so the estimate is the typical cell's rho (a large cell does
  not outvote the others). Its interval is a stratified bootstrap: each draw
  resamples the candidates within every cell (cell ``i`` of the sorted cells
  draws from seed ``seed + i``, the same draws for every arm, budget and
  reference), computes each cell's rho and averages them; the interval is the
  percentile interval of those means. Cells with fewer than
  ``MIN_CELL_CANDIDATES`` (8) candidates or a constant score do not enter (a
  rho on a handful of candidates is mostly noise); the pooled row's ``cells``
  column counts the cells that entered (0: no estimate). Strata pool the same
  way over the cells that hold the stratum (``stratum="normalization=none"``, ...).
- **Paired test accuracy** (``paired_outcomes``, ``paired_summaries``): per
  candidate, an arm's ranked-run test accuracy at E minus a baseline arm's
  (``he``, ``default``); summarized per cell, per stratum and pooled over every
  candidate (win/tie/loss, median difference with a bootstrap interval,
  Wilcoxon p) with Holm's correction over every row of the summary. Two
  baselines are compared in one direction only ("he" against "default").

Example:
    >>> import numpy as np
    >>> x = np.arange(8.0)
    >>> [round(v, 3) for v in pooled_rho([(x, x), (x, -x)], samples=50)[:3]]
    [0.0, 0.0, 0.0]
"""

import numpy as np
import pandas as pd

from autoinit_nas import stats as paired_stats
from autoinit_nas.study import fidelity
from autoinit_nas.study import stats as study_stats
from autoinit_nas.study.replay import compared

CELL = ("space", "dataset")
ALL = "all"
MIN_CELL_CANDIDATES = 8  # a cell with fewer candidates does not enter a pooled rho
TIE = 0.005  # test-accuracy differences within half a point count as ties
SUMMARY_COLUMNS = ["space", "dataset", "stratum", "arm", "baseline", "n", "wins", "ties", "losses",
                   "median_difference", "ci_low", "ci_high", "p_value", "p_holm", "divergence_rate",
                   "baseline_divergence_rate"]


def pooled_rho(pairs, samples=fidelity.SAMPLES, seed=fidelity.SEED, confidence=paired_stats.CONFIDENCE,
               seeds=None, min_candidates=MIN_CELL_CANDIDATES):
    """(mean rho, ci_low, ci_high, n, cells) over cells given as [(x, y)]: the stratified bootstrap above.

    The mean is unweighted (each cell once). ``seeds``: one bootstrap seed per
    cell (default ``seed + position``); a cell enters with at least
    ``min_candidates`` pairs and a finite rho; n is the candidates of the cells
    that enter. No cell enters: NaNs, n = 0, cells = 0.

    Example:
        >>> x = np.arange(8.0)
        >>> pooled_rho([(x, x), (x, x ** 2), (x[:7], x[:7]), ([1, 2], [2, 1])], samples=20)
        (1.0, 1.0, 1.0, 16, 2)
    """
    seeds = list(range(seed, seed + len(pairs))) if seeds is None else list(seeds)
    rhos, draws, n = [], [], 0
    for (x, y), cell_seed in zip(pairs, seeds):
        x, y = np.asarray(x, float), np.asarray(y, float)
        rho = fidelity.spearman(x, y) if len(x) >= max(3, min_candidates) else np.nan
        if not np.isfinite(rho):
            continue
        picks = paired_stats.resample(len(x), samples, cell_seed)
        rhos.append(rho)
        draws.append(fidelity.rows_spearman(x[picks], y[picks]))
        n += len(x)
    if not rhos:
        return np.nan, np.nan, np.nan, 0, 0
    low, high = paired_stats.percentile_interval(np.mean(draws, axis=0), confidence)
    return float(np.mean(rhos)), low, high, n, len(rhos)


def _pool(entries, group_keys, by, samples, seed, confidence):
    """Pooled rows from entries (cell key, group, x, y): one row per group, the ``by`` columns "all"."""
    order = sorted({tuple(key[column] for column in by) for key, _, _, _ in entries})
    position = {cell: index for index, cell in enumerate(order)}
    groups = {}
    for key, group, x, y in entries:
        groups.setdefault(group, []).append((position[tuple(key[column] for column in by)], x, y))
    rows = []
    for group, parts in groups.items():
        rho, low, high, n, count = pooled_rho([(x, y) for _, x, y in parts], samples, seed, confidence,
                                              seeds=[seed + index for index, _, _ in parts])
        rows.append(dict({column: ALL for column in by}, **dict(zip(group_keys, group)), spearman=rho,
                         ci_low=low, ci_high=high, n=n, cells=count))
    return rows


def pooled_ranking(scores, reference, budgets, proxies=None, by=CELL, strata=(), samples=fidelity.SAMPLES,
                   seed=fidelity.SEED, confidence=paired_stats.CONFIDENCE):
    """``fidelity.ranking``'s rows per cell followed by its pooled rows (``ranking.csv``).

    Example:
        >>> scores = pd.DataFrame([(s, c, "he", 1, c) for s in "ab" for c in range(8)],
        ...                       columns=["space", "candidate", "arm", "epoch", "val_accuracy"])
        >>> reference = scores.rename(columns={"val_accuracy": "test_accuracy"})
        >>> table = pooled_ranking(scores, reference, [1], by=["space"], samples=20)
        >>> table[table.space == "all"][["reference", "spearman", "n", "cells"]].values.tolist()
        [['own', 1.0, 16, 2], ['neutral', 1.0, 16, 2]]
    """
    by = list(by)
    cells = fidelity.ranking(scores, reference, budgets, proxies, by, strata, samples, seed, confidence)
    entries = [(key, (key["stratum"], arm, budget, name), x, y)
               for key, arm, budget, name, x, y in fidelity.ranking_pairs(scores, reference, budgets, proxies, by,
                                                                          strata)]
    pooled = _pool(entries, ("stratum", "arm", "budget", "reference"), by, samples, seed, confidence)
    return _stack(pooled, cells)


def pooled_ceiling(outcomes, reference, by=CELL, strata_table=None, strata=(), samples=fidelity.SAMPLES,
                   seed=fidelity.SEED, confidence=paired_stats.CONFIDENCE):
    """``fidelity.ceiling``'s rows per cell followed by its pooled rows (``ceiling.csv``).

    Example:
        >>> outcomes = pd.DataFrame([(s, c, "he", c) for s in "ab" for c in range(8)],
        ...                         columns=["space", "candidate", "arm", "test_accuracy"])
        >>> table = pooled_ceiling(outcomes, outcomes, by=["space"], samples=20)
        >>> table[["space", "spearman", "n", "cells"]].values.tolist()
        [['a', 1.0, 8, 1], ['b', 1.0, 8, 1], ['all', 1.0, 16, 2]]
    """
    by = list(by)
    cells = fidelity.ceiling(outcomes, reference, by, strata_table, strata, samples, seed, confidence)
    entries = [(key, (key["stratum"], arm), x, y)
               for key, arm, x, y in fidelity.ceiling_pairs(outcomes, reference, by, strata_table, strata)]
    return _stack(_pool(entries, ("stratum", "arm"), by, samples, seed, confidence), cells)


def _stack(pooled, cells):
    """The per-cell table (``cells`` = 1), then the pooled rows by stratum ("all" first), in the cells' order
    within one; ``cells`` counts the cells a pooled row averages."""
    cells = cells.assign(cells=1)
    pooled = pd.DataFrame(pooled, columns=cells.columns)
    if pooled.empty:
        return cells
    pooled = pooled.assign(_first=pooled["stratum"] != ALL).sort_values(["_first", "stratum"], kind="stable")
    return pd.concat([cells, pooled.drop(columns="_first")], ignore_index=True)


def paired_outcomes(outcomes, scores, baselines, by=CELL, strata=()):
    """Per candidate and arm (``paired.csv``): test accuracy, diverged, and per baseline b present
    ``test_accuracy_<b>`` and ``difference_<b>`` (the arm's minus b's; 0 for b itself), plus the strata.

    Example:
        >>> outcomes = pd.DataFrame({"candidate": [0, 0], "arm": ["he", "autoinit"], "test_accuracy": [0.5, 0.7]})
        >>> scores = outcomes.assign(diverged=False)
        >>> paired_outcomes(outcomes, scores, ["he"], by=()).round(3).values.tolist()
        [[0, 'autoinit', 0.7, False, 0.5, 0.2], [0, 'he', 0.5, False, 0.5, 0.0]]
    """
    keys = list(by) + ["candidate"]
    wide = outcomes.pivot_table(index=keys, columns="arm", values="test_accuracy")
    flags = scores.groupby(keys + ["arm"])["diverged"].any() if "diverged" in scores.columns else None
    per_candidate = scores.groupby(keys)[list(strata)].first() if strata else None
    rows = []
    for index, values in wide.iterrows():
        index = index if isinstance(index, tuple) else (index,)
        for arm in sorted(values.dropna().index):
            row = dict(zip(keys, index), arm=arm, test_accuracy=values[arm],
                       diverged=bool(flags.get(index + (arm,), False)) if flags is not None else False)
            for baseline in (b for b in baselines if b in values.index and np.isfinite(values[b])):
                row[f"test_accuracy_{baseline}"] = values[baseline]
                row[f"difference_{baseline}"] = values[arm] - values[baseline]
            if per_candidate is not None:
                row.update(per_candidate.loc[index if len(index) > 1 else index[0]].to_dict())
            rows.append(row)
    return pd.DataFrame(rows)


def _groupings(by, strata):
    """(group columns, stratum column or None): per cell, pooled, then each stratum per cell and pooled."""
    levels = [by, []] if by else [[]]
    return [(level, None) for level in levels] + [(level + [column], column) for column in strata
                                                  for level in levels]


def paired_summaries(paired, baselines, by=CELL, strata=(), tie=TIE, samples=fidelity.SAMPLES,
                     seed=fidelity.SEED):
    """Each arm against each baseline per cell, pooled over every candidate ("all"), and per stratum of
    both; Holm's correction over every row (``paired_summary.csv``). Two baselines meet once
    (``replay.compared``: "he" against "default", not also "default" against "he").

    Example:
        >>> paired = pd.DataFrame({"candidate": range(6), "arm": "autoinit", "diverged": False,
        ...                        "difference_he": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
        >>> row = paired_summaries(paired, ["he"], by=(), samples=50).iloc[0]
        >>> int(row["wins"]), round(float(row["p_value"]), 4), round(float(row["p_holm"]), 4)
        (6, 0.0312, 0.0312)
    """
    by = list(by)
    parts = []
    for baseline in baselines:
        if f"difference_{baseline}" not in paired.columns:
            continue
        kept = paired[[arm == baseline or compared(arm, baseline, baselines) for arm in paired["arm"]]]
        for grouping, stratum in _groupings(by, strata):
            summary = study_stats.paired_summary(kept, baseline, tie, grouping or None, samples, seed)
            if summary.empty:
                continue
            for column in by:
                summary[column] = summary[column] if column in grouping else ALL
            summary["stratum"] = ALL if stratum is None else [f"{stratum}={v}" for v in summary[stratum]]
            parts.append(summary.rename(columns={"reference": "baseline",
                                                 "reference_divergence_rate": "baseline_divergence_rate"}))
    columns = [column for column in SUMMARY_COLUMNS if column not in CELL or column in by]
    if not parts:
        return pd.DataFrame(columns=columns)
    table = pd.concat(parts, ignore_index=True)[columns]
    table["p_holm"] = paired_stats.holm(table["p_value"])
    return table
