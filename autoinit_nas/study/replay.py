"""Replayed searches: what random search, keras-tuner Hyperband and Ray ASHA would choose, per init arm.

Training is deterministic per seed, so a search over recorded candidates can be
replayed from their per-epoch validation curves instead of run again. Each arm is
replayed on **the same candidate subsets in the same arrival orders** (common
random numbers), so arms differ only by what their curves say. The outcome of a
search is the chosen candidate's test accuracy at the final epoch E (its ranked
run) and its regret: the best test accuracy in the subset minus the chosen one's.

What is reproduced, read from the installed sources:

- ``random``: every candidate trains ``budget`` epochs; the pick is the highest
  validation score at that epoch (``scope="last"``, Ray's ``get_best_result``
  default) or over epochs 1..budget (``scope="best"``, keras-tuner's trial score);
  ties go to the earlier arrival (both libraries' stable sort).
- ``hyperband`` (keras_tuner/src/tuners/hyperband.py, one iteration): brackets
  from the highest down, round sizes ``ceil(ceil(1 + log_f E) / (s + 1) * f**(s - r))``
  and epochs ``ceil(E / f**(s - r))``; a round promotes the best of the previous
  round one at a time (top ``size`` by score, earlier trial first on ties); a
  continued trial's score is its best validation over the epochs of its own fit;
  the pick is the best score over every trial (``get_best_trials``).
- ``asha`` (ray/tune/schedulers/async_hyperband.py, one bracket): rungs at
  ``grace_period * rf**k``; a trial reaching a rung stops if its score is below
  ``nanpercentile(scores recorded there so far, (1 - 1/rf) * 100)``, then its
  score is recorded; trials stop at ``max_t``; the pick is the best last-reported
  score (``get_best_result(scope="last")``), the earlier trial on ties.

Not reproduced: keras-tuner samples a fresh candidate for every round-0 slot (the
replay assigns the subset's candidates to those slots in order, so Hyperband's
``k`` is fixed by E and the factor); several Hyperband iterations; ASHA with
several brackets or trials running concurrently (the replay's arrival order is
sequential: each trial runs until stopped before the next starts). A missing
epoch (a run that ended early) scores ``MISSING_SCORE``, below any accuracy.

Example:
    >>> hyperband_brackets(9, factor=3)
    [[(9, 1), (3, 3), (1, 9)], [(5, 3), (2, 9)], [(3, 9)]]
    >>> asha_milestones(max_t=12, grace_period=1, reduction_factor=2)
    [1, 2, 4, 8]
"""

import bisect
import dataclasses
import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from autoinit_nas import stats as paired_stats
from autoinit_nas.study.table import cells, require

SEARCHES = ("random", "hyperband", "asha")
SUBSET_LIMIT = 100_000
DRAWS = 2000
MISSING_SCORE = -1.0
SEED = 0


def hyperband_brackets(max_epochs, factor=3):
    """keras-tuner's Hyperband brackets, in the order it runs them: [[(size, epochs) per round]].

    Example:
        >>> [len(bracket) for bracket in hyperband_brackets(27)]
        [4, 3, 2, 1]
    """
    if int(max_epochs) < 1 or int(factor) < 2:
        raise ValueError(f"`max_epochs` must be >= 1 and `factor` >= 2. "
                         f"Received: max_epochs={max_epochs!r}, factor={factor!r}")
    epochs, count = max_epochs, 0
    while epochs >= 1:  # HyperbandOracle._get_num_brackets (min_epochs = 1)
        epochs, count = epochs / factor, count + 1
    end_size = math.ceil(1 + math.log(max_epochs, factor))
    brackets = []
    for s in reversed(range(count)):
        brackets.append([(math.ceil(end_size / (s + 1) * factor ** (s - r)),
                          math.ceil(max_epochs / factor ** (s - r))) for r in range(s + 1)])
    return brackets


def hyperband_candidates(max_epochs, factor=3):
    """How many distinct candidates one Hyperband iteration trains (its round-0 slots).

    Example:
        >>> hyperband_candidates(9), hyperband_candidates(12)
        (17, 22)
    """
    return sum(bracket[0][0] for bracket in hyperband_brackets(max_epochs, factor))


def choose_hyperband(curves, max_epochs, factor=3):
    """Index (into ``curves``' rows, the arrival order) of the candidate keras-tuner's Hyperband returns.

    ``curves``: (candidates, epochs) validation scores, at least
    ``hyperband_candidates(max_epochs, factor)`` rows and ``max_epochs`` columns.

    Example:
        >>> curves = np.tile(np.arange(17.0)[:, None], (1, 9))
        >>> int(choose_hyperband(curves, 9))
        16
    """
    curves = np.asarray(curves, dtype=float)
    needed = hyperband_candidates(max_epochs, factor)
    if curves.shape[0] < needed or curves.shape[1] < max_epochs:
        raise ValueError(f"Hyperband(max_epochs={max_epochs}, factor={factor}) needs curves of at least "
                         f"({needed}, {max_epochs}). Received: shape {curves.shape}")
    trials = []  # (score, candidate) in creation order
    fresh = iter(range(curves.shape[0]))
    for bracket in hyperband_brackets(max_epochs, factor):
        size, epochs = bracket[0]
        previous = [(float(curves[c, :epochs].max()), c) for c in itertools.islice(fresh, size)]
        trials += previous
        start = epochs
        for size, epochs in bracket[1:]:
            order = sorted(range(len(previous)), key=lambda i: previous[i][0], reverse=True)
            promoted = [previous[i][1] for i in order[:size]]
            previous = [(float(curves[c, start:epochs].max()), c) for c in promoted]
            trials += previous
            start = epochs
    best = max(range(len(trials)), key=lambda i: (trials[i][0], -i))
    return trials[best][1]


def asha_milestones(max_t, grace_period=1, reduction_factor=4):
    """Ray ASHA's rung milestones (one bracket), smallest first.

    Example:
        >>> asha_milestones(9, reduction_factor=3)
        [1, 3, 9]
    """
    if not 0 < grace_period <= max_t or reduction_factor <= 1:
        raise ValueError(f"ASHA needs 0 < grace_period <= max_t and reduction_factor > 1. Received: "
                         f"max_t={max_t!r}, grace_period={grace_period!r}, reduction_factor={reduction_factor!r}")
    rungs = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)
    return [grace_period * reduction_factor**k for k in range(rungs)]


def asha_stops(curves, max_t, grace_period=1, reduction_factor=4):
    """Epochs each trial runs under Ray's ASHA, trials arriving in row order one at a time.

    Example:
        >>> asha_stops([[0.9, 0.9], [0.1, 0.1], [0.4, 0.4]], max_t=2, reduction_factor=2).tolist()
        [2, 1, 1]
    """
    curves = np.asarray(curves, dtype=float)
    if curves.shape[1] < max_t:
        raise ValueError(f"ASHA with max_t={max_t} needs {max_t} epochs per curve. Received: shape {curves.shape}")
    milestones = asha_milestones(max_t, grace_period, reduction_factor)
    recorded = {milestone: [] for milestone in milestones}  # each rung's scores so far, sorted, no NaN
    quantile = (1 - 1 / reduction_factor) * 100
    stops = np.full(curves.shape[0], max_t, dtype=int)
    for trial, curve in enumerate(curves):
        done = set()
        for epoch in range(1, max_t):  # at max_t Ray stops the trial before any rung
            due = [milestone for milestone in milestones if milestone <= epoch and milestone not in done]
            if not due:
                continue
            rung, score = max(due), float(curve[epoch - 1])  # Ray: the highest rung not yet recorded
            done.add(rung)
            below = bool(recorded[rung]) and _below_cutoff(score, recorded[rung], quantile)
            if not math.isnan(score):  # nanpercentile ignores NaN
                bisect.insort(recorded[rung], score)
            if below:
                stops[trial] = epoch
                break
    return stops


def _below_cutoff(score, rung, quantile):
    """Ray's ``score < np.nanpercentile(rung, quantile)`` on a sorted ``rung``; numpy itself decides near ties."""
    position = quantile / 100 * (len(rung) - 1)
    low = int(position)
    high = min(low + 1, len(rung) - 1)
    approximate = rung[low] + (rung[high] - rung[low]) * (position - low)
    if abs(score - approximate) > 1e-9 * (1 + abs(approximate)):
        return score < approximate  # NaN score: False, as in Ray
    return bool(score < np.nanpercentile(rung, quantile))


def choose_asha(curves, max_t, grace_period=1, reduction_factor=4):
    """Index of the trial with the best last-reported score after ASHA (``asha_stops``).

    Example:
        >>> int(choose_asha([[0.5, 0.6], [0.7, 0.8]], max_t=2, reduction_factor=2))
        1
    """
    curves = np.asarray(curves, dtype=float)
    stops = asha_stops(curves, max_t, grace_period, reduction_factor)
    last = curves[np.arange(len(curves)), stops - 1]
    return int(np.argmax(last))  # strict ">" over trials in order: the first best wins


def choose_random(curves, budget, scope="last"):
    """Index of the best candidate after ``budget`` epochs each (``scope``: "last" or "best" epoch).

    Example:
        >>> int(choose_random([[0.2, 0.9], [0.5, 0.6]], budget=1)), int(choose_random([[0.2, 0.9], [0.5, 0.6]], 2))
        (1, 0)
    """
    return int(_random_picks(np.asarray(curves, dtype=float)[None], budget, scope)[0])


def _random_picks(curves, budget, scope):
    """Picks of random search on a stack (subsets, k, epochs) of curves: argmax, first on ties."""
    if scope not in ("last", "best"):
        raise ValueError(f"`scope` must be 'last' or 'best'. Received: scope={scope!r}")
    if not 1 <= int(budget) <= curves.shape[-1]:
        raise ValueError(f"`budget` must lie in 1..{curves.shape[-1]} (the recorded epochs). "
                         f"Received: budget={budget!r}")
    scores = curves[..., budget - 1] if scope == "last" else curves[..., :budget].max(axis=-1)
    return np.argmax(scores, axis=-1)


@dataclasses.dataclass(frozen=True)
class Search:
    """One replayed search: its kind, epoch budget, candidates k, reduction factor and grace period.

    ``budget`` is the epochs each candidate trains (``random``), ``max_epochs``
    (``hyperband``, whose ``k`` follows from it) or ``max_t`` (``asha``).

    Example:
        >>> Search("hyperband", budget=9).k, Search("asha", budget=12, k=16, factor=2).label()
        (17, 'asha')
    """

    search: str
    budget: int
    k: int = None
    factor: int = 3
    grace_period: int = 1
    scope: str = "last"

    def __post_init__(self):
        if self.search not in SEARCHES:
            raise ValueError(f"`search` must be one of {SEARCHES}. Received: search={self.search!r}")
        if self.search == "hyperband":
            object.__setattr__(self, "k", hyperband_candidates(self.budget, self.factor))
        if self.k is None or int(self.k) < 1:
            raise ValueError(f"`k` must be a positive int for {self.search}. Received: k={self.k!r}")
        if self.search == "asha":
            asha_milestones(self.budget, self.grace_period, self.factor)

    def label(self):
        """The ``search`` column's value."""
        return self.search

    def picks(self, curves):
        """Chosen index per subset of a (subsets, k, epochs) stack of curves."""
        if self.search == "random":
            return _random_picks(curves, int(self.budget), self.scope)
        if self.search == "hyperband":
            return np.array([choose_hyperband(c, self.budget, self.factor) for c in curves], dtype=int)
        return np.array([choose_asha(c, self.budget, self.grace_period, self.factor) for c in curves], dtype=int)


def search_grid(budgets, ks, epochs, factors=(2, 3), grace_period=1):
    """The standard replays: random per budget and k, Hyperband (factor 3) and ASHA per k and factor, to ``epochs``.

    Example:
        >>> [(s.search, s.budget, s.k) for s in search_grid([1, 2], [8], 9, factors=(3,))]
        [('random', 1, 8), ('random', 2, 8), ('hyperband', 9, 17), ('asha', 9, 8)]
    """
    grid = [Search("random", int(b), int(k)) for b in budgets for k in ks]
    grid.append(Search("hyperband", int(epochs), factor=3))
    grid += [Search("asha", int(epochs), int(k), factor=f, grace_period=grace_period) for k in ks for f in factors]
    return grid


def common_subsets(n, k, seed=SEED, limit=SUBSET_LIMIT, draws=DRAWS):
    """Ordered candidate subsets shared by every arm: an int array (subsets, k) of indices into 0..n-1.

    Every k-subset when there are at most ``limit`` of them (each in a seeded
    random arrival order), else ``draws`` seeded random ordered subsets. When
    the enumeration has fewer than ``draws`` rows (e.g. n == k: one subset),
    it is repeated, each copy in its own seeded random arrival orders, until
    there are at least ``draws`` rows, so order-dependent searches (ASHA,
    Hyperband) are averaged over many arrival orders, not decided by one.

    Example:
        >>> common_subsets(4, 2, draws=5).shape, common_subsets(30, 10, draws=5).shape
        ((6, 2), (5, 10))
        >>> common_subsets(4, 2, draws=10).shape, common_subsets(3, 3, draws=4).shape
        ((12, 2), (4, 3))
    """
    if not 1 <= int(k) <= int(n):
        raise ValueError(f"`k` must lie in 1..n. Received: n={n!r}, k={k!r}")
    rng = np.random.default_rng(seed)
    if math.comb(n, k) <= limit:
        subsets = np.array(list(itertools.combinations(range(n), k)), dtype=int)
        copies = max(1, math.ceil(int(draws) / len(subsets)))
        return np.concatenate([rng.permuted(subsets, axis=1) for _ in range(copies)])
    return np.argsort(rng.random((int(draws), int(n))), axis=1)[:, :k]


def curve_arrays(curves, outcomes, epochs=None):
    """(candidates, {arm: (scores (n, epochs), test accuracy (n,))}) on the candidates every arm has.

    ``curves``: rows (candidate, arm, epoch, val_accuracy), epochs 1-based;
    ``outcomes``: rows (candidate, arm, test_accuracy). A candidate enters the
    pool only with a test accuracy under every arm, so all arms share it.

    Example:
        >>> curves = pd.DataFrame({"candidate": [0, 0, 1, 1], "arm": "he", "epoch": [1, 2, 1, 2],
        ...                        "val_accuracy": [0.1, 0.2, 0.3, 0.4]})
        >>> outcomes = pd.DataFrame({"candidate": [0, 1], "arm": "he", "test_accuracy": [0.5, 0.6]})
        >>> candidates, arrays = curve_arrays(curves, outcomes)
        >>> candidates, arrays["he"][0].tolist(), arrays["he"][1].tolist()
        ([0, 1], [[0.1, 0.2], [0.3, 0.4]], [0.5, 0.6])
    """
    require(curves, ("candidate", "arm", "epoch", "val_accuracy"), "curves")
    require(outcomes, ("candidate", "arm", "test_accuracy"), "outcomes")
    epochs = int(epochs or curves["epoch"].max())
    test = outcomes.pivot_table(index="candidate", columns="arm", values="test_accuracy").dropna()
    arms = sorted(set(curves["arm"]) & set(test.columns))
    candidates = sorted(set(test.index) & set(curves["candidate"]))
    grid = curves.pivot_table(index=["arm", "candidate"], columns="epoch", values="val_accuracy")
    grid = grid.reindex(columns=range(1, epochs + 1))
    arrays = {}
    for arm in arms:
        scores = grid.reindex(pd.MultiIndex.from_product([[arm], candidates])).to_numpy(dtype=float)
        arrays[arm] = (np.where(np.isnan(scores), MISSING_SCORE, scores), test.loc[candidates, arm].to_numpy(float))
    return candidates, arrays


def _outcomes(search, scores, test, index, common=None):
    """(chosen test accuracy, regret, hit, common regret) per subset for one arm; ``index``: (subsets, k) rows.

    A hit is ``test[chosen] == best`` (exact equality): when several candidates
    tie at the subset's best test accuracy, picking any of them is a hit.
    ``common``: per candidate, the best test accuracy over every arm (the
    common oracle); the common regret is its subset maximum minus the pick's.
    """
    chosen = index[np.arange(len(index)), search.picks(scores[index])]
    best = test[index].max(axis=1)
    common_best = (test if common is None else common)[index].max(axis=1)
    return test[chosen], best - test[chosen], test[chosen] == best, common_best - test[chosen]


def _replay_cell(arrays, search, seed, limit, draws, samples, boot_subsets):
    """{arm: dict of per-subset outcomes and bootstrap means} for one search on one pool; {arm: n} below k."""
    n = len(next(iter(arrays.values()))[1])
    if n < search.k:
        return {arm: n for arm in arrays}
    index = common_subsets(n, search.k, seed, limit, draws)
    pools = paired_stats.resample(n, samples, seed)
    boot = np.concatenate([pool[common_subsets(n, search.k, seed + 1 + b, 0, boot_subsets)]
                           for b, pool in enumerate(pools)])
    common = np.max([test for _, test in arrays.values()], axis=0)
    results = {}
    for arm, (scores, test) in arrays.items():
        accuracy, regret, hit, common_regret = _outcomes(search, scores, test, index, common)
        boot_accuracy, boot_regret, _, _ = _outcomes(search, scores, test, boot)
        results[arm] = dict(accuracy=accuracy, regret=regret, hit=hit, common_regret=common_regret, n=n,
                            boot_accuracy=boot_accuracy.reshape(samples, -1).mean(axis=1),
                            boot_regret=boot_regret.reshape(samples, -1).mean(axis=1))
    return results


def replay(curves, outcomes, searches, baselines=("he", "default", "lsuv"), by=("space", "dataset"), strata=(),
           seed=SEED, limit=SUBSET_LIMIT, draws=DRAWS, samples=200, boot_subsets=50,
           confidence=paired_stats.CONFIDENCE):
    """Replay ``searches`` for every arm on common subsets: (search table, paired table).

    Cells are the ``by`` columns' groups (present in both tables); each cell is
    replayed on all its candidates (``stratum="all"``) and on each value of each
    ``strata`` column (``"normalization=none"``, ...). Intervals resample the
    candidate pool ``samples`` times (``autoinit_nas.stats.resample``) and replay
    ``boot_subsets`` common subsets on each resample: ``ci_low``/``ci_high`` bound
    ``mean_regret`` in the search table and ``mean_diff`` (test accuracy of the
    arm's pick minus the baseline's, same subsets) in the paired table, whose
    ``p`` is the two-sided normal-approximation p from the bootstrap standard
    error (``normal_p``) and ``p_holm`` Holm's correction over every row. Two
    baselines are paired in one direction only (``compared``). Each cell (and
    stratum) draws from its own seed, the same for every arm, so rows with
    ``space == dataset == "all"`` pool independent cells (mean of the cells'
    differences, stratum "all"). ``mean_common_regret``: the best test accuracy
    in the subset over every arm's ranked runs (one oracle for all arms) minus
    the pick's; ``hit_rate``: the share of subsets whose pick ties the subset's
    best under the arm itself (exact equality, so any of tied best candidates is
    a hit).

    Example:
        >>> rows = [(c, a, e, c / 10) for c in range(6) for a in ("he", "autoinit") for e in (1, 2)]
        >>> curves = pd.DataFrame(rows, columns=["candidate", "arm", "epoch", "val_accuracy"])
        >>> outcomes = curves[curves.epoch == 2].rename(columns={"val_accuracy": "test_accuracy"})
        >>> table, paired = replay(curves, outcomes, [Search("random", 1, 3)], baselines=["he"], by=(),
        ...                        samples=20, boot_subsets=5)
        >>> table[["arm", "mean_regret", "hit_rate", "n"]].values.tolist()
        [['autoinit', 0.0, 1.0, 6], ['he', 0.0, 1.0, 6]]
        >>> paired[["arm", "baseline", "mean_diff", "p"]].values.tolist()
        [['autoinit', 'he', 0.0, 1.0]]
    """
    by, replayed = list(by), []
    for index, (key, cell_curves, cell_outcomes) in enumerate(cells(curves, outcomes, by, strata)):
        _, arrays = curve_arrays(cell_curves, cell_outcomes)
        for search in searches:  # a seed per cell (cells' sorted order), spaced so no two cells share one
            if arrays:
                results = _replay_cell(arrays, search, seed + index * (samples + 1), limit, draws, samples,
                                       boot_subsets)
                replayed.append((key, search, results))
    return _search_table(replayed, by, confidence), _paired_table(replayed, baselines, by, confidence)


SEARCH_COLUMNS = ["stratum", "arm", "search", "factor", "budget", "k", "mean_test_accuracy", "mean_regret",
                  "mean_common_regret", "ci_low", "ci_high", "hit_rate", "n", "subsets"]
PAIRED_COLUMNS = ["stratum", "arm", "baseline", "search", "factor", "budget", "k", "mean_diff", "ci_low",
                  "ci_high", "p", "p_holm"]


def _search_table(cells, by, confidence):
    rows = []
    for key, search, results in cells:
        for arm, result in sorted(results.items()):
            if not isinstance(result, dict):  # fewer candidates than k: a row that says so
                rows.append(dict(key, arm=arm, search=search.label(), factor=_factor(search), budget=search.budget,
                                 k=search.k, n=result, subsets=0))
                continue
            low, high = paired_stats.percentile_interval(result["boot_regret"], confidence)
            rows.append(dict(key, arm=arm, search=search.label(), factor=_factor(search), budget=search.budget,
                             k=search.k, mean_test_accuracy=float(result["accuracy"].mean()),
                             mean_regret=float(result["regret"].mean()),
                             mean_common_regret=float(result["common_regret"].mean()), ci_low=low, ci_high=high,
                             hit_rate=float(result["hit"].mean()), n=result["n"], subsets=len(result["regret"])))
    return pd.DataFrame(rows, columns=list(by) + SEARCH_COLUMNS)


def _factor(search):
    return search.factor if search.search != "random" else np.nan


def _paired_table(cells, baselines, by, confidence):
    pairs = {}  # (key items, search) -> [(arm, baseline, diffs, boot diffs)]
    for key, search, results in cells:
        for baseline in baselines:
            for arm in sorted(results):
                if compared(arm, baseline, baselines) and isinstance(results.get(baseline), dict) \
                        and isinstance(results[arm], dict):
                    diff = results[arm]["accuracy"] - results[baseline]["accuracy"]
                    boot = results[arm]["boot_accuracy"] - results[baseline]["boot_accuracy"]
                    pairs.setdefault((tuple(key.items()), search), []).append((arm, baseline, diff.mean(), boot))
    pooled = {}
    for (items, search), entries in pairs.items():
        if dict(items)["stratum"] == "all" and by:
            for arm, baseline, mean, boot in entries:
                pooled.setdefault((search, arm, baseline), []).append((mean, boot))
    rows = [_paired_row(dict(items), search, arm, baseline, mean, boot, confidence)
            for (items, search), entries in pairs.items() for arm, baseline, mean, boot in entries]
    everywhere = dict({column: "all" for column in by}, stratum="all")
    rows += [_paired_row(everywhere, search, arm, baseline, np.mean([m for m, _ in parts]),
                         np.mean([b for _, b in parts], axis=0), confidence)
             for (search, arm, baseline), parts in pooled.items() if len(parts) > 1]
    table = pd.DataFrame(rows, columns=list(by) + PAIRED_COLUMNS)
    table["p_holm"] = paired_stats.holm(table["p"]) if len(table) else []
    return table


def compared(arm, baseline, baselines):
    """Whether ``arm`` is paired against ``baseline``: never itself, and one direction only between two
    baselines (the earlier one against the later: "he vs default", "he vs lsuv", not "default vs he").

    Example:
        >>> [compared(a, b, ("he", "default")) for a, b in [("he", "he"), ("he", "default"), ("default", "he")]]
        [False, True, False]
    """
    baselines = list(baselines)
    if arm == baseline:
        return False
    return not (arm in baselines and baseline in baselines and baselines.index(arm) > baselines.index(baseline))


def normal_p(mean, boot):
    """Two-sided p of ``mean`` = 0 from the bootstrap standard error: z = mean / std(boot), p = 2 (1 - Phi(|z|)).

    A normal approximation, chosen because it has no resolution floor: a
    percentile p from B resamples is a multiple of 1/B and is 0 whenever no
    resample crosses zero, which Holm's correction cannot raise. The standard
    error is floored at ``1e-12`` and p at the smallest positive float, so a
    constant nonzero difference gets a tiny p, never exactly 0; a zero mean
    gives p = 1.

    Example:
        >>> normal_p(0.0, np.zeros(5)), round(normal_p(1.96, np.array([-1.0, 1.0])), 3)
        (1.0, 0.05)
        >>> 0 < normal_p(0.1, np.full(5, 0.1)) < 1e-300
        True
    """
    if mean == 0:
        return 1.0
    scale = max(float(np.std(np.asarray(boot, float))), 1e-12)
    p = 2 * scipy_stats.norm.sf(abs(float(mean)) / scale)
    return float(min(1.0, max(p, np.finfo(float).tiny)))


def _paired_row(key, search, arm, baseline, mean, boot, confidence):
    low, high = paired_stats.percentile_interval(boot, confidence)
    p = normal_p(float(mean), boot)
    return dict(key, arm=arm, baseline=baseline, search=search.label(), factor=_factor(search),
                budget=search.budget, k=search.k, mean_diff=float(mean), ci_low=low, ci_high=high, p=float(p),
                p_holm=np.nan)
