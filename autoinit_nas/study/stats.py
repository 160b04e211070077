"""The init study's statistics: evaluation fidelity, simulated search regret, paired accuracy.

Input is one long table with a row per (candidate, arm, epoch): the columns
``candidate``, ``arm``, ``epoch`` (1-based), ``score`` (higher is better, e.g.
validation accuracy), optionally ``diverged`` (bool per run), and any split
columns (space, dataset, depth bucket, ...) constant per candidate. Every
function returns a pandas DataFrame; ``by`` names split columns to compute
within. Randomness (bootstrap, simulated searches) comes from a fixed seed.

Example:
    >>> import pandas as pd
    >>> rows = [(c, a, e, c * e) for c in range(5) for a in ("he", "autoinit") for e in (1, 2)]
    >>> table = pd.DataFrame(rows, columns=["candidate", "arm", "epoch", "score"])
    >>> ranking(table, budgets=[1], samples=50)[["arm", "spearman", "n"]].to_dict("records")
    [{'arm': 'autoinit', 'spearman': 1.0, 'n': 5}, {'arm': 'he', 'spearman': 1.0, 'n': 5}]
"""

import numpy as np
import pandas as pd
from scipy import stats

from autoinit_nas import stats as paired_stats
from autoinit_nas.stats import holm  # noqa: F401 - public here since the study's first release

CONVERGED_QUALITY = (
    "Converged quality of a candidate, when ranking arm a, is its best score at the final epoch E "
    "over its runs under every arm except a: the run being ranked never enters its own reference."
)
REQUIRED_COLUMNS = ("candidate", "arm", "epoch", "score")
SAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95


def validate(table):
    """``table`` with the required columns, one row per (candidate, arm, epoch); raises ValueError.

    Example:
        >>> import pandas as pd
        >>> validate(pd.DataFrame({"candidate": [0], "arm": ["he"], "epoch": [1], "score": [0.5]})).shape
        (1, 4)
    """
    missing = [name for name in REQUIRED_COLUMNS if name not in table.columns]
    if missing:
        raise ValueError(
            f"The study table needs columns {list(REQUIRED_COLUMNS)}; missing {missing}. "
            f"Received columns: {list(table.columns)}"
        )
    duplicated = table.duplicated(["candidate", "arm", "epoch"])
    if duplicated.any():
        first = table.loc[duplicated, ["candidate", "arm", "epoch"]].iloc[0].to_dict()
        raise ValueError(
            f"The study table must hold one row per (candidate, arm, epoch); {int(duplicated.sum())} "
            f"duplicates, the first {first}."
        )
    return table


def _groups(table, by):
    by = list(by or [])
    if not by:
        yield {}, table
        return
    for key, group in table.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(by, key)), group


def _final_epoch(table, epochs):
    return int(table["epoch"].max()) if epochs is None else int(epochs)


def scores_at(table, epoch):
    """candidate x arm DataFrame of scores at ``epoch`` (NaN where a run has none).

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"candidate": [0, 0], "arm": ["a", "b"], "epoch": 1, "score": [0.5, 0.6]})
        >>> scores_at(t, 1).loc[0].to_dict()
        {'a': 0.5, 'b': 0.6}
    """
    rows = table[table["epoch"] == epoch]
    return rows.pivot(index="candidate", columns="arm", values="score").astype(float)


def converged_quality(table, epochs=None):
    """candidate x arm DataFrame: for column a, the best final score over the arms other than a.

    See ``CONVERGED_QUALITY``. NaN where no other arm has a final score.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"candidate": 0, "arm": ["a", "b", "c"], "epoch": 3, "score": [0.9, 0.5, 0.7]})
        >>> converged_quality(t).loc[0].to_dict()
        {'a': 0.7, 'b': 0.9, 'c': 0.9}
    """
    final = scores_at(validate(table), _final_epoch(table, epochs))
    values = final.to_numpy()
    quality = np.full_like(values, np.nan)
    for column in range(values.shape[1]):
        others = np.delete(values, column, axis=1)
        present = ~np.isnan(others).all(axis=1) if others.shape[1] else np.zeros(len(values), bool)
        quality[present, column] = np.nanmax(others[present], axis=1)
    return pd.DataFrame(quality, index=final.index, columns=final.columns)


def _rank_correlations(x, y):
    """Spearman rho of each row pair of (draws, n) matrices; NaN where a row is constant."""
    rx = stats.rankdata(x, axis=-1)
    ry = stats.rankdata(y, axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((rx**2).sum(axis=-1) * (ry**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rx * ry).sum(axis=-1) / denominator, np.nan)


def _budget_pairs(group, arm, budget, quality):
    """(scores at budget, converged quality) of ``arm``'s candidates having both."""
    short = scores_at(group, budget)
    if arm not in short.columns or arm not in quality.columns:
        return np.array([]), np.array([])
    joined = pd.concat([short[arm].rename("short"), quality[arm].rename("quality")], axis=1).dropna()
    return joined["short"].to_numpy(), joined["quality"].to_numpy()


def ranking(table, budgets, epochs=None, by=None, samples=SAMPLES, seed=SEED, confidence=CONFIDENCE):
    """Evaluation fidelity: Spearman rho of each arm's score at each budget vs converged quality.

    One row per (split, arm, budget): ``spearman``, a percentile bootstrap
    interval over candidates (``ci_low``, ``ci_high``) and ``n`` candidates.

    Example:
        >>> import pandas as pd
        >>> rows = [(c, a, e, c * e) for c in range(10) for a in ("he", "autoinit") for e in (1, 3)]
        >>> table = pd.DataFrame(rows, columns=["candidate", "arm", "epoch", "score"])
        >>> ranking(table, budgets=[1], samples=20)["spearman"].tolist()
        [1.0, 1.0]
    """
    rows = []
    for key, group in _groups(validate(table), by):
        quality = converged_quality(group, epochs)
        for arm in sorted(group["arm"].unique()):
            for budget in budgets:
                short, target = _budget_pairs(group, arm, int(budget), quality)
                rho, low, high = _rho_with_interval(short, target, samples, seed, confidence)
                rows.append(dict(key, arm=arm, budget=int(budget), spearman=rho, ci_low=low,
                                 ci_high=high, n=len(short)))
    return pd.DataFrame(rows, columns=list(by or []) + ["arm", "budget", "spearman", "ci_low", "ci_high", "n"])


def _rho_with_interval(short, target, samples, seed, confidence):
    if len(short) < 3:
        return np.nan, np.nan, np.nan
    rho = float(_rank_correlations(short[None], target[None])[0])
    picks = paired_stats.resample(len(short), samples, seed)
    low, high = paired_stats.percentile_interval(_rank_correlations(short[picks], target[picks]), confidence)
    return rho, low, high


def ranking_differences(table, budgets, baseline, epochs=None, by=None, samples=SAMPLES, seed=SEED,
                        confidence=CONFIDENCE):
    """Paired bootstrap of rho(arm) - rho(baseline) over the candidates both arms have.

    One row per (split, arm != baseline, budget): ``difference``, ``ci_low``,
    ``ci_high``, ``p_value`` (two-sided: twice the smaller share of bootstrap
    differences on either side of 0) and ``n``. The same resampled
    candidates serve both arms, so what they share cancels.

    Example:
        >>> import pandas as pd
        >>> rows = [(c, a, e, c * e) for c in range(10) for a in ("he", "autoinit") for e in (1, 3)]
        >>> table = pd.DataFrame(rows, columns=["candidate", "arm", "epoch", "score"])
        >>> ranking_differences(table, [1], baseline="he", samples=20)["difference"].tolist()
        [0.0]
    """
    rows = []
    for key, group in _groups(validate(table), by):
        quality = converged_quality(group, epochs)
        for arm in sorted(set(group["arm"].unique()) - {baseline}):
            for budget in budgets:
                short = scores_at(group, int(budget))
                columns = [short.get(arm), quality.get(arm), short.get(baseline), quality.get(baseline)]
                if any(column is None for column in columns):
                    continue
                both = pd.concat(columns, axis=1).dropna().to_numpy().T
                rows.append(dict(key, arm=arm, baseline=baseline, budget=int(budget),
                                 **_paired_rho(both, samples, seed, confidence)))
    return pd.DataFrame(rows, columns=list(by or []) + [
        "arm", "baseline", "budget", "difference", "ci_low", "ci_high", "p_value", "n"])


def _paired_rho(both, samples, seed, confidence):
    n = both.shape[1]
    if n < 3:
        return dict(difference=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan, n=n)
    short, target, base_short, base_target = both
    difference = float(_rank_correlations(short[None], target[None])[0]
                       - _rank_correlations(base_short[None], base_target[None])[0])
    picks = paired_stats.resample(n, samples, seed)
    boot = (_rank_correlations(short[picks], target[picks])
            - _rank_correlations(base_short[picks], base_target[picks]))
    boot = boot[np.isfinite(boot)]
    low, high = paired_stats.percentile_interval(boot, confidence)
    p_value = min(1.0, 2 * min(np.mean(boot <= 0), np.mean(boot >= 0))) if boot.size else np.nan
    return dict(difference=difference, ci_low=low, ci_high=high, p_value=float(p_value), n=n)


def _simulate(short, quality, k, draws, rng):
    """Mean regret and hit rate of picking the best of k by ``short``; ties in ``short`` split evenly."""
    picks = np.argsort(rng.random((draws, len(short))), axis=1)[:, :k]
    chosen_short, chosen_quality = short[picks], quality[picks]
    best = chosen_quality.max(axis=1)
    tied = chosen_short == chosen_short.max(axis=1, keepdims=True)
    # With a random tie-break the expected pick is the mean over the tied candidates.
    picked = (chosen_quality * tied).sum(axis=1) / tied.sum(axis=1)
    hits = ((chosen_quality == best[:, None]) & tied).sum(axis=1) / tied.sum(axis=1)
    return best - picked, hits


def regret(table, budgets, ks=(8, 16), epochs=None, by=None, draws=2000, samples=200, seed=SEED,
           confidence=CONFIDENCE):
    """Simulated budget-limited searches: pick the best of k candidates by the arm's score at a budget.

    Regret = best converged quality among the k minus the pick's (converged
    quality as in ``CONVERGED_QUALITY``, for this arm); ``hit_rate`` is the
    share of searches whose pick is the best of the k. ``mean_regret`` and
    ``hit_rate`` average ``draws`` searches from all candidates; the
    interval resamples the candidate pool ``samples`` times (200 searches
    each). Rows with fewer than k candidates hold NaN.

    Example:
        >>> import pandas as pd
        >>> rows = [(c, a, e, c * e) for c in range(10) for a in ("he", "autoinit") for e in (1, 3)]
        >>> table = pd.DataFrame(rows, columns=["candidate", "arm", "epoch", "score"])
        >>> regret(table, [1], ks=[4], draws=50, samples=5)[["arm", "mean_regret", "hit_rate"]].values.tolist()
        [['autoinit', 0.0, 1.0], ['he', 0.0, 1.0]]
    """
    rows = []
    rng_seed = np.random.SeedSequence(seed)
    for key, group in _groups(validate(table), by):
        quality = converged_quality(group, epochs)
        for arm in sorted(group["arm"].unique()):
            for budget in budgets:
                short, target = _budget_pairs(group, arm, int(budget), quality)
                for k in ks:
                    rng = np.random.default_rng(rng_seed.spawn(1)[0])
                    rows.append(dict(key, arm=arm, budget=int(budget), k=int(k), n=len(short),
                                     **_regret_row(short, target, int(k), draws, samples, rng, confidence)))
    columns = ["arm", "budget", "k", "mean_regret", "ci_low", "ci_high", "hit_rate", "hit_ci_low",
               "hit_ci_high", "n"]
    return pd.DataFrame(rows, columns=list(by or []) + columns)


def _regret_row(short, target, k, draws, samples, rng, confidence):
    if len(short) < k or k < 1:
        return dict(mean_regret=np.nan, ci_low=np.nan, ci_high=np.nan, hit_rate=np.nan,
                    hit_ci_low=np.nan, hit_ci_high=np.nan)
    regrets, hits = _simulate(short, target, k, draws, rng)
    boot_regret, boot_hit = [], []
    for _ in range(samples):
        pool = rng.integers(0, len(short), size=len(short))
        r, h = _simulate(short[pool], target[pool], k, 200, rng)
        boot_regret.append(r.mean())
        boot_hit.append(h.mean())
    low, high = paired_stats.percentile_interval(boot_regret, confidence)
    hit_low, hit_high = paired_stats.percentile_interval(boot_hit, confidence)
    return dict(mean_regret=float(regrets.mean()), ci_low=low, ci_high=high, hit_rate=float(hits.mean()),
                hit_ci_low=hit_low, hit_ci_high=hit_high)


def _diverged(table, final_epoch):
    """candidate x arm booleans: the run's ``diverged`` flag, or no finite final score."""
    final = table[table["epoch"] == final_epoch]
    flags = ~np.isfinite(final.pivot(index="candidate", columns="arm", values="score").astype(float))
    if "diverged" in table.columns:
        marked = table.groupby(["candidate", "arm"])["diverged"].any().unstack("arm")
        marked = marked.reindex(index=flags.index, columns=flags.columns).fillna(False).astype(bool)
        flags = flags | marked
    return flags


def paired(table, references=("default", "he"), epochs=None, split_columns=None):
    """One row per candidate and arm: final score, diverged, and the difference to each reference arm.

    Columns: ``candidate``, ``arm``, ``score`` (at the final epoch),
    ``diverged``, then ``score_<ref>`` and ``difference_<ref>`` (score minus
    the reference's; 0 for the reference itself) per reference arm present,
    then the split columns (default: every column constant per candidate
    other than the required ones).

    Example:
        >>> import pandas as pd
        >>> rows = [(c, a, e, c * e) for c in range(10) for a in ("he", "autoinit") for e in (1, 3)]
        >>> table = pd.DataFrame(rows, columns=["candidate", "arm", "epoch", "score"])
        >>> paired(table, references=["he"]).columns.tolist()
        ['candidate', 'arm', 'score', 'diverged', 'score_he', 'difference_he']
    """
    validate(table)
    final_epoch = _final_epoch(table, epochs)
    final = scores_at(table, final_epoch)
    diverged = _diverged(table, final_epoch).reindex(index=final.index, columns=final.columns).fillna(True)
    splits = _split_columns(table) if split_columns is None else list(split_columns)
    per_candidate = table.groupby("candidate")[splits].first() if splits else None
    rows = []
    for candidate in final.index:
        for arm in final.columns:
            row = {"candidate": candidate, "arm": arm, "score": final.at[candidate, arm],
                   "diverged": bool(diverged.at[candidate, arm])}
            for reference in (r for r in references if r in final.columns):
                row[f"score_{reference}"] = final.at[candidate, reference]
                row[f"difference_{reference}"] = final.at[candidate, arm] - final.at[candidate, reference]
            if per_candidate is not None:
                row.update(per_candidate.loc[candidate].to_dict())
            rows.append(row)
    return pd.DataFrame(rows)


def _split_columns(table):
    extra = [c for c in table.columns if c not in REQUIRED_COLUMNS and c != "diverged"]
    constant = table.groupby("candidate")[extra].nunique(dropna=False).le(1).all() if extra else []
    return [c for c in extra if constant[c]]


def paired_summary(paired_table, reference, tie=0.0, by=None, samples=SAMPLES, seed=SEED,
                   confidence=CONFIDENCE):
    """Each arm against ``reference``: win/tie/loss, median difference with CI, Wilcoxon p, Holm p.

    ``paired_table`` is what ``paired`` returns. Holm's correction runs over
    the arms compared with this reference (within each split). Also gives
    each arm's ``divergence_rate`` and the reference's.

    Example:
        >>> import pandas as pd
        >>> rows = [(c, a, e, c * e) for c in range(10) for a in ("he", "autoinit") for e in (1, 3)]
        >>> table = pd.DataFrame(rows, columns=["candidate", "arm", "epoch", "score"])
        >>> summary = paired_summary(paired(table, references=["he"]), "he")
        >>> summary.loc[0, "arm"], int(summary.loc[0, "ties"]), float(summary.loc[0, "p_holm"])
        ('autoinit', 10, 1.0)
    """
    column = f"difference_{reference}"
    if column not in paired_table.columns:
        raise ValueError(
            f"paired_table has no column {column!r}: was {reference!r} one of paired()'s references "
            f"and an arm of the study? Columns: {list(paired_table.columns)}"
        )
    rows = []
    for key, group in _groups(paired_table, by):
        reference_divergence = float(group.loc[group["arm"] == reference, "diverged"].mean())
        block = []
        for arm in sorted(set(group["arm"]) - {reference}):
            runs = group[group["arm"] == arm]
            differences = runs[column].dropna().to_numpy(float)
            block.append(dict(key, arm=arm, reference=reference,
                              **_difference_summary(differences, tie, samples, seed, confidence),
                              divergence_rate=float(runs["diverged"].mean()),
                              reference_divergence_rate=reference_divergence))
        for row, adjusted in zip(block, holm([row["p_value"] for row in block])):
            row["p_holm"] = adjusted
        rows.extend(block)
    return pd.DataFrame(rows)


def _difference_summary(differences, tie, samples, seed, confidence):
    n = len(differences)
    if not n:
        return dict(n=0, wins=0, ties=0, losses=0, median_difference=np.nan, ci_low=np.nan,
                    ci_high=np.nan, p_value=np.nan)
    wins, ties, losses = paired_stats.win_tie_loss(differences, tie)
    if n < 2:
        low, high = np.nan, np.nan
    else:
        low, high = paired_stats.bootstrap_intervals(differences, ("median",), samples, seed, confidence)["median"]
    return dict(
        n=n, wins=wins, ties=ties, losses=losses, median_difference=float(np.median(differences)),
        ci_low=low, ci_high=high, p_value=paired_stats.wilcoxon_p(differences),
    )
