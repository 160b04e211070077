"""Ranking fidelity against independent references: Spearman rho with intervals, the noise ceiling, zero cost.

A short budget ranks candidates well when its order matches what the
candidates are worth. Worth is read on the test split from **reference runs**
(their own seed: another weight draw, data order and dropout), never from the
run being ranked:

- ``own``: the same arm's reference run (what a pipeline using that init ships);
- ``neutral``: the mean of the candidate's reference runs over every arm (one
  truth for all arms; candidates need a reference under every arm);
- ``others``: the mean of the candidate's reference runs over every arm except
  the ranked one (``neutral`` without the arm's own reference run in it).

The **noise ceiling** of an arm is rho between its ranked run's and its
reference run's test accuracy at E: two runs of one candidate agree no better
than that, so no short budget can be expected to beat it. Zero-cost baselines
(``autoinit_nas.study.proxies``) rank at budget 0 against ``neutral``. Intervals
are percentile bootstraps over candidates (``autoinit_nas.stats.resample``).

Tables: ``scores`` (candidate, arm, epoch, val_accuracy), ``reference``
(candidate, arm, seed, test_accuracy), ``outcomes`` (candidate, arm,
test_accuracy: the ranked run at E), ``proxies`` (candidate, proxy, value); each
with the ``by`` columns; strata columns live in ``scores``.

Example:
    >>> spearman([1, 2, 3, 4], [10, 20, 30, 40]), spearman([1, 2, 3, 4], [4, 3, 2, 1])
    (1.0, -1.0)
"""

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from autoinit_nas import stats as paired_stats
from autoinit_nas.study.table import cells, require

SAMPLES = 1000
SEED = 0
REFERENCES = ("own", "neutral", "others")
RANKING_COLUMNS = ["stratum", "arm", "budget", "reference", "spearman", "ci_low", "ci_high", "n"]
CEILING_COLUMNS = ["stratum", "arm", "spearman", "ci_low", "ci_high", "n"]


def spearman(x, y):
    """Spearman rho of two equal-length sequences (average ranks for ties); NaN if either is constant.

    Example:
        >>> round(spearman([1, 2, 3], [1, 3, 2]), 3)
        0.5
    """
    return float(rows_spearman(np.asarray(x, float)[None], np.asarray(y, float)[None])[0])


def rows_spearman(x, y):
    """rho of each row pair of two (rows, n) arrays (Pearson correlation of the rows' ranks); NaN where constant.

    Example:
        >>> rows_spearman([[1, 2, 3], [1, 2, 3]], [[1, 2, 3], [3, 2, 1]]).tolist()
        [1.0, -1.0]
    """
    rank_x = scipy_stats.rankdata(x, axis=1)
    rank_y = scipy_stats.rankdata(y, axis=1)
    rank_x -= rank_x.mean(axis=1, keepdims=True)
    rank_y -= rank_y.mean(axis=1, keepdims=True)
    scale = np.sqrt((rank_x * rank_x).sum(axis=1) * (rank_y * rank_y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, (rank_x * rank_y).sum(axis=1) / scale, np.nan)


def spearman_interval(x, y, samples=SAMPLES, seed=SEED, confidence=paired_stats.CONFIDENCE):
    """(rho, ci_low, ci_high, n): rho with a bootstrap interval over the pairs; NaNs below 3 pairs.

    Example:
        >>> spearman_interval(range(10), range(10), samples=100)
        (1.0, 1.0, 1.0, 10)
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"`x` and `y` must be 1-D and of one length. Received: shapes {x.shape} and {y.shape}")
    if len(x) < 3:
        return np.nan, np.nan, np.nan, len(x)
    picks = paired_stats.resample(len(x), samples, seed)
    low, high = paired_stats.percentile_interval(rows_spearman(x[picks], y[picks]), confidence)
    return spearman(x, y), low, high, len(x)


def reference_targets(reference):
    """Per candidate: each arm's mean reference test accuracy and their mean, ``neutral`` (every arm needed).

    Example:
        >>> reference = pd.DataFrame({"candidate": [0, 0, 1], "arm": ["he", "lsuv", "he"], "seed": 7,
        ...                           "test_accuracy": [0.5, 0.7, 0.4]})
        >>> reference_targets(reference).round(3).to_dict("index")
        {0: {'he': 0.5, 'lsuv': 0.7, 'neutral': 0.6}}
    """
    require(reference, ("candidate", "arm", "test_accuracy"), "reference")
    targets = reference.pivot_table(index="candidate", columns="arm", values="test_accuracy").dropna()
    targets.columns = list(targets.columns)
    return targets.assign(neutral=targets.mean(axis=1))


def ranking(scores, reference, budgets, proxies=None, by=("space", "dataset"), strata=(), samples=SAMPLES,
            seed=SEED, confidence=paired_stats.CONFIDENCE):
    """rho of each arm's b-epoch validation score against ``own``, ``neutral`` and ``others`` references
    (``ranking.csv``; ``others`` only where another arm has reference runs).

    With ``proxies``, rows ``arm=<proxy>`` at budget 0 rank the proxy's value against ``neutral``.

    Example:
        >>> scores = pd.DataFrame([(c, "he", 1, c / 10) for c in range(5)],
        ...                       columns=["candidate", "arm", "epoch", "val_accuracy"])
        >>> reference = scores.rename(columns={"val_accuracy": "test_accuracy"}).assign(seed=1)
        >>> ranking(scores, reference, [1], by=(), samples=20)[["arm", "reference", "spearman", "n"]].values.tolist()
        [['he', 'own', 1.0, 5], ['he', 'neutral', 1.0, 5]]
    """
    rows = [dict(key, arm=arm, budget=budget, reference=name, **_rho_fields(x, y, samples, seed, confidence))
            for key, arm, budget, name, x, y in ranking_pairs(scores, reference, budgets, proxies, by, strata)]
    return pd.DataFrame(rows, columns=list(by) + RANKING_COLUMNS)


def ranking_pairs(scores, reference, budgets, proxies=None, by=("space", "dataset"), strata=()):
    """What ``ranking`` correlates: (key, arm, budget, reference, x, y) per row, x and y in candidate order.

    ``key`` holds the ``by`` columns and ``stratum``; x is the b-epoch score, y
    the reference (``own``, ``neutral`` or ``others``), on the candidates having both.

    Example:
        >>> scores = pd.DataFrame({"candidate": [0, 1], "arm": "he", "epoch": 1, "val_accuracy": [0.2, 0.1]})
        >>> reference = scores.rename(columns={"val_accuracy": "test_accuracy"})
        >>> [(arm, name, x.tolist()) for _, arm, _, name, x, _ in ranking_pairs(scores, reference, [1], by=())]
        [('he', 'own', [0.2, 0.1]), ('he', 'neutral', [0.2, 0.1])]
    """
    require(scores, ("candidate", "arm", "epoch", "val_accuracy"), "scores")
    if proxies is not None:
        scores = pd.concat([scores, _proxy_scores(proxies, scores, by)], ignore_index=True)
    for key, cell, cell_reference in cells(scores, reference, by, strata):
        targets = reference_targets(cell_reference)
        for arm in sorted(cell["arm"].unique()):
            for budget in sorted(set(int(b) for b in budgets) | {0}):
                short = cell[(cell["arm"] == arm) & (cell["epoch"] == budget)].set_index("candidate")["val_accuracy"]
                if short.empty:
                    continue
                for name in REFERENCES:
                    target = reference_target(targets, arm, name)
                    if target is not None:
                        yield (key, arm, budget, name) + _joined(short, target)


def reference_target(targets, arm, name):
    """The ``name`` reference of ``arm`` from ``reference_targets``' table, a Series per candidate (None if none).

    Example:
        >>> targets = pd.DataFrame({"he": [0.2], "lsuv": [0.4], "autoinit": [0.9]}).assign(neutral=0.5)
        >>> [round(float(reference_target(targets, "autoinit", n)[0]), 3) for n in REFERENCES]
        [0.9, 0.5, 0.3]
        >>> reference_target(targets, "params", "others") is None
        True
    """
    arms = [column for column in targets.columns if column != "neutral"]
    if name == "neutral":
        return targets["neutral"] if "neutral" in targets.columns else None
    if arm not in arms or (name == "others" and len(arms) < 2):
        return None
    return targets[arm] if name == "own" else targets[[a for a in arms if a != arm]].mean(axis=1)


def _proxy_scores(proxies, scores, by):
    """Proxy values as score rows at epoch 0, ``arm`` = the proxy's name, strata copied from ``scores``."""
    require(proxies, ("candidate", "proxy", "value"), "proxies")
    keys = list(by) + ["candidate"]
    extra = [column for column in scores.columns
             if column not in keys + ["arm", "epoch", "val_accuracy"] and column not in proxies.columns]
    per_candidate = scores[keys + extra].drop_duplicates(keys)
    rows = proxies.rename(columns={"proxy": "arm", "value": "val_accuracy"}).assign(epoch=0)
    return rows.merge(per_candidate, on=keys, how="left") if extra else rows


def ceiling(outcomes, reference, by=("space", "dataset"), strata_table=None, strata=(), samples=SAMPLES,
            seed=SEED, confidence=paired_stats.CONFIDENCE):
    """Noise ceiling per arm: rho between the ranked run's and the reference run's test accuracy (``ceiling.csv``).

    ``strata_table``: a table with ``candidate``, the ``by`` and the ``strata``
    columns (e.g. ``scores``), when the ceiling is wanted per stratum too.

    Example:
        >>> outcomes = pd.DataFrame({"candidate": range(4), "arm": "he", "test_accuracy": [0.1, 0.2, 0.3, 0.4]})
        >>> reference = outcomes.assign(test_accuracy=[0.2, 0.1, 0.4, 0.3], seed=9)
        >>> ceiling(outcomes, reference, by=(), samples=20)[["arm", "spearman", "n"]].values.tolist()
        [['he', 0.6, 4]]
    """
    rows = [dict(key, arm=arm, **_rho_fields(x, y, samples, seed, confidence))
            for key, arm, x, y in ceiling_pairs(outcomes, reference, by, strata_table, strata)]
    return pd.DataFrame(rows, columns=list(by) + CEILING_COLUMNS)


def ceiling_pairs(outcomes, reference, by=("space", "dataset"), strata_table=None, strata=()):
    """What ``ceiling`` correlates: (key, arm, ranked test accuracy, reference test accuracy), candidate order.

    Example:
        >>> outcomes = pd.DataFrame({"candidate": [1, 0], "arm": "he", "test_accuracy": [0.2, 0.1]})
        >>> [(arm, x.tolist(), y.tolist()) for _, arm, x, y in ceiling_pairs(outcomes, outcomes, by=())]
        [('he', [0.1, 0.2], [0.1, 0.2])]
    """
    require(outcomes, ("candidate", "arm", "test_accuracy"), "outcomes")
    if strata_table is not None and strata:
        columns = list(by) + ["candidate"] + list(strata)
        outcomes = outcomes.merge(strata_table[columns].drop_duplicates(), on=list(by) + ["candidate"])
    for key, cell, cell_reference in cells(outcomes, reference, by, strata if strata_table is not None else ()):
        targets = reference_targets(cell_reference) if len(cell_reference) else pd.DataFrame()
        ranked = cell.pivot_table(index="candidate", columns="arm", values="test_accuracy")
        for arm in sorted(set(ranked.columns) & set(targets.columns)):
            yield (key, arm) + _joined(ranked[arm], targets[arm])


def _joined(x, y):
    """(x, y) as float arrays on the candidates both series have, in candidate order."""
    joined = pd.concat([x, y], axis=1, join="inner").dropna().sort_index()
    return joined.iloc[:, 0].to_numpy(float), joined.iloc[:, 1].to_numpy(float)


def _rho_fields(x, y, samples, seed, confidence):
    return dict(zip(("spearman", "ci_low", "ci_high", "n"), spearman_interval(x, y, samples, seed, confidence)))
