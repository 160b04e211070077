"""Pooled rows across cells on synthetic tables with known answers: mean rho, its stratified bootstrap, pairs."""

import math

import numpy as np
import pandas as pd
import pytest

from autoinit_nas import stats as paired_stats
from autoinit_nas.study import fidelity, pooled


def test_pooled_rho_is_the_mean_of_the_cells_rho_and_skips_cells_without_one():
    x = np.arange(8.0)
    swapped = [1, 0, 2, 3, 4, 5, 6, 7]  # rho = 1 - 6 * 2 / (8 * 63)
    rho, low, high, n, cells = pooled.pooled_rho([(x, x), (x, swapped), (np.ones(8), x), ([1, 2], [1, 2])],
                                                 samples=30)
    assert (rho, n, cells) == (pytest.approx((1 + 1 - 12 / 504) / 2), 16, 2)
    assert low <= rho <= high
    assert math.isnan(pooled.pooled_rho([([1, 2], [2, 1])], samples=5)[0])


def test_a_cell_with_fewer_than_eight_candidates_is_not_pooled():
    # A 7-candidate cell with rho -1 would drag the unweighted mean to 0; it must not enter.
    x = np.arange(8.0)
    rho, _, _, n, cells = pooled.pooled_rho([(x, x), (x[:7], -x[:7])], samples=20)
    assert (rho, n, cells) == (1.0, 8, 1)
    assert pooled.pooled_rho([(x[:7], x[:7])], samples=5)[3:] == (0, 0)
    assert pooled.pooled_rho([(x[:7], -x[:7]), (x, x)], samples=5, min_candidates=3)[0] == pytest.approx(0.0)


def test_pooled_interval_is_a_stratified_bootstrap_with_one_seed_per_cell():
    rng = np.random.default_rng(4)
    pairs = [tuple(rng.standard_normal((2, n))) for n in (12, 20)]
    rho, low, high, n, cells = pooled.pooled_rho(pairs, samples=300, seed=10)
    draws = []
    for position, (x, y) in enumerate(pairs):
        picks = paired_stats.resample(len(x), 300, 10 + position)
        draws.append([fidelity.spearman(x[p], y[p]) for p in picks])
    assert (low, high) == pytest.approx(paired_stats.percentile_interval(np.mean(draws, axis=0)))
    assert rho == pytest.approx(np.mean([fidelity.spearman(x, y) for x, y in pairs])) and n == 32


def test_pooled_interval_covers_the_true_mean_rho():
    # Three cells of bivariate normals with Pearson r; Spearman's rho is 6/pi * asin(r/2).
    rng = np.random.default_rng(0)
    correlations = (0.3, 0.5, 0.7)
    truth = np.mean([6 / math.pi * math.asin(r / 2) for r in correlations])
    covered, repeats = 0, 120
    for repeat in range(repeats):
        pairs = []
        for r in correlations:
            x, noise = rng.standard_normal((2, 40))
            pairs.append((x, r * x + math.sqrt(1 - r * r) * noise))
        _, low, high, _, _ = pooled.pooled_rho(pairs, samples=400, seed=repeat)
        covered += low <= truth <= high
    # 95% nominal; a percentile bootstrap of rho at n = 40 runs slightly under. 120 repeats: sd about 2 %.
    assert 0.86 <= covered / repeats <= 1.0


def _cells_table():
    """Cells a and b, 10 candidates: he's budget-1 score follows the reference in a (+1), reverses it in b (-1);
    stratum norm=none holds 8 candidates per cell, norm=every 2 (too few to pool)."""
    rows, reference = [], []
    for cell, sign in (("a", 1), ("b", -1)):
        for c in range(10):
            rows.append((cell, "d", c, "he", 1, sign * c, "none" if c < 8 else "every"))
            reference.append((cell, "d", c, "he", 9, c / 10))
    scores = pd.DataFrame(rows, columns=["space", "dataset", "candidate", "arm", "epoch", "val_accuracy", "norm"])
    reference = pd.DataFrame(reference, columns=["space", "dataset", "candidate", "arm", "seed", "test_accuracy"])
    return scores, reference


def test_pooled_ranking_appends_pooled_rows_per_stratum():
    scores, reference = _cells_table()
    table = pooled.pooled_ranking(scores, reference, [1], strata=["norm"], samples=50)
    cells = table[table["space"] != "all"]
    assert len(cells) == 2 * 3 * 2  # 2 cells x (all + 2 strata) x (own, neutral)
    rows = table[table["space"] == "all"].set_index(["stratum", "reference"])
    assert (rows["dataset"] == "all").all() and rows.index[0] == ("all", "own")
    assert rows.loc[("all", "own"), "spearman"] == pytest.approx(0.0)  # mean of +1 and -1
    assert (rows.loc[("all", "own"), "n"], rows.loc[("all", "own"), "cells"]) == (20, 2)
    assert (rows.loc[("all", "own"), "ci_low"], rows.loc[("all", "own"), "ci_high"]) == pytest.approx((0.0, 0.0))
    assert rows.loc[("norm=none", "own"), "spearman"] == pytest.approx(0.0)
    assert (rows.loc[("norm=none", "own"), "n"], rows.loc[("norm=none", "own"), "cells"]) == (16, 2)
    assert math.isnan(rows.loc[("norm=every", "own"), "spearman"])  # 2 candidates per cell: said, not pooled
    assert (rows.loc[("norm=every", "own"), "n"], rows.loc[("norm=every", "own"), "cells"]) == (0, 0)
    assert (cells["cells"] == 1).all()


def test_pooled_ceiling_per_cell_and_pooled():
    scores, reference = _cells_table()
    outcomes = scores.rename(columns={"val_accuracy": "test_accuracy"})
    table = pooled.pooled_ceiling(outcomes, reference, samples=20)
    assert table[["space", "spearman", "cells"]].values.tolist() == [["a", 1.0, 1], ["b", -1.0, 1], ["all", 0.0, 2]]


def test_paired_outcomes_and_summaries_with_holm_over_every_row():
    rows = [(cell, "d", c, arm, 0.5 + c / 100 + (0.02 if arm == "autoinit" else 0.0), "x" if c % 2 else "y")
            for cell in ("a", "b") for c in range(8) for arm in ("he", "default", "autoinit")]
    outcomes = pd.DataFrame(rows, columns=["space", "dataset", "candidate", "arm", "test_accuracy", "act"])
    scores = outcomes.assign(diverged=False)
    paired = pooled.paired_outcomes(outcomes, scores, ["he", "default"], strata=["act"])
    autoinit = paired[paired["arm"] == "autoinit"]
    assert np.allclose(autoinit["difference_he"], 0.02) and np.allclose(autoinit["difference_default"], 0.02)
    assert set(paired.loc[paired["arm"] == "he", "difference_he"]) == {0.0}
    summary = pooled.paired_summaries(paired, ["he", "default"], strata=["act"], samples=50)
    assert summary["p_holm"].tolist() == paired_stats.holm(summary["p_value"])
    row = summary[(summary["space"] == "all") & (summary["stratum"] == "all") & (summary["arm"] == "autoinit")
                  & (summary["baseline"] == "he")].iloc[0]
    assert (row["n"], row["wins"], row["ties"], row["losses"]) == (16, 16, 0, 0)
    assert row["median_difference"] == pytest.approx(0.02)
    assert row["p_value"] == pytest.approx(paired_stats.wilcoxon_p(np.full(16, 0.02)))
    strata = summary[(summary["space"] == "all") & (summary["stratum"] == "act=x") & (summary["arm"] == "autoinit")]
    assert strata["n"].tolist() == [8, 8]
    # per cell, pooled, per cell and stratum, pooled per stratum; autoinit against he and default, and he
    # against default only (the two baselines meet once)
    pairs = set(zip(summary["arm"], summary["baseline"]))
    assert pairs == {("autoinit", "he"), ("autoinit", "default"), ("he", "default")}
    assert len(summary) == 3 * (2 + 1 + 2 * 2 + 2)
