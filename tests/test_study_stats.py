"""The study's statistics on synthetic tables whose answers are known by construction."""

import numpy as np
import pandas as pd
import pytest

from autoinit_nas.study import stats as study_stats

CANDIDATES = 20
FINAL = 4


def table_from(short, final, budget=1, extra=None):
    """Long table: {arm: per-candidate scores} at ``budget`` and at the final epoch."""
    rows = []
    for arm in final:
        for candidate in range(CANDIDATES):
            rows.append((candidate, arm, budget, short[arm][candidate]))
            rows.append((candidate, arm, FINAL, final[arm][candidate]))
    table = pd.DataFrame(rows, columns=["candidate", "arm", "epoch", "score"])
    for name, values in (extra or {}).items():
        table[name] = table["candidate"].map(dict(enumerate(values)))
    return table


QUALITY = np.arange(CANDIDATES) / CANDIDATES


def test_perfect_ranking_gives_one_and_reversed_gives_minus_one():
    short = {"perfect": QUALITY * 3, "reversed": -QUALITY, "third": QUALITY}
    final = {arm: QUALITY for arm in short}
    result = study_stats.ranking(table_from(short, final), budgets=[1], samples=200).set_index("arm")
    assert result.loc["perfect", "spearman"] == pytest.approx(1.0)
    assert result.loc["reversed", "spearman"] == pytest.approx(-1.0)
    assert result.loc["perfect", ["ci_low", "ci_high"]].tolist() == pytest.approx([1.0, 1.0])
    assert result.loc["reversed", ["ci_low", "ci_high"]].tolist() == pytest.approx([-1.0, -1.0])
    assert (result["n"] == CANDIDATES).all()


def test_converged_quality_never_reuses_the_ranked_run():
    # The ranked arm's own final scores would rank its short scores perfectly (rho +1);
    # the other arms' final scores rank them in reverse (rho -1).
    short = {"ranked": QUALITY, "x": QUALITY, "y": QUALITY}
    final = {"ranked": 10 + QUALITY, "x": -QUALITY, "y": -QUALITY}
    table = table_from(short, final)
    quality = study_stats.converged_quality(table)
    np.testing.assert_allclose(quality["ranked"].to_numpy(), -QUALITY)
    np.testing.assert_allclose(quality["x"].to_numpy(), 10 + QUALITY)
    result = study_stats.ranking(table, budgets=[1], samples=50).set_index("arm")
    assert result.loc["ranked", "spearman"] == pytest.approx(-1.0)
    regret = study_stats.regret(table, budgets=[1], ks=[8], draws=300, samples=20).set_index("arm")
    assert regret.loc["ranked", "hit_rate"] == 0.0


def test_oracle_arm_has_zero_regret_and_hits_every_time():
    rng = np.random.default_rng(0)
    others = {"x": rng.random(CANDIDATES), "y": rng.random(CANDIDATES)}
    final = {"oracle": rng.random(CANDIDATES), **others}
    # "oracle" ranks by exactly its converged quality (the best final score of x and y);
    # "x" ranks by the reverse of its own (the best of oracle and y).
    short = {"oracle": np.maximum(others["x"], others["y"]),
             "x": -np.maximum(final["oracle"], others["y"]), "y": others["y"]}
    result = study_stats.regret(table_from(short, final), budgets=[1], ks=[8, 16], draws=500, samples=30)
    oracle = result[result["arm"] == "oracle"]
    assert oracle["mean_regret"].tolist() == [0.0, 0.0]
    assert oracle["hit_rate"].tolist() == [1.0, 1.0]
    assert oracle["ci_high"].max() == pytest.approx(0.0, abs=1e-12)
    reverse = result[result["arm"] == "x"]  # always picks the worst of k: never a hit
    assert (reverse["hit_rate"] == 0.0).all() and (reverse["mean_regret"] > 0).all()


def test_ties_split_the_pick_evenly():
    # A constant short score cannot tell candidates apart: the pick is a random one of k,
    # so the hit rate is exactly 1/k and the regret is max minus mean of the k drawn.
    short = {"flat": np.zeros(CANDIDATES), "x": QUALITY}
    final = {"flat": QUALITY, "x": QUALITY}
    result = study_stats.regret(table_from(short, final), budgets=[1], ks=[8], draws=2000, samples=10)
    flat = result.set_index("arm").loc["flat"]
    assert flat["hit_rate"] == pytest.approx(1 / 8)
    # E[max of 8 of 20 evenly spaced] - E[mean]: (8/9)(21) - 10.5 grid steps of 1/20, sampling error ~1%.
    expected = (8 / 9 * 21 - 1 - 9.5) / CANDIDATES
    assert flat["mean_regret"] == pytest.approx(expected, rel=0.03)


def test_too_few_candidates_for_k_give_nan():
    short = {"a": QUALITY, "b": QUALITY}
    result = study_stats.regret(table_from(short, short), budgets=[1], ks=[CANDIDATES + 1], samples=5)
    assert result["mean_regret"].isna().all() and (result["n"] == CANDIDATES).all()


def test_ranking_difference_is_paired_over_the_same_candidates():
    short = {"good": QUALITY, "bad": -QUALITY, "z": QUALITY}
    final = {arm: QUALITY for arm in short}
    result = study_stats.ranking_differences(table_from(short, final), [1], baseline="bad", samples=100)
    good = result.set_index("arm").loc["good"]
    assert good["difference"] == pytest.approx(2.0)
    assert [good["ci_low"], good["ci_high"]] == pytest.approx([2.0, 2.0])
    assert good["p_value"] == 0.0 and good["n"] == CANDIDATES


def test_holm_matches_hand_computed_values():
    # Sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, max(0.06, 1*0.04).
    assert study_stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = study_stats.holm([0.02, np.nan, 0.5])
    assert adjusted[0] == pytest.approx(0.04) and np.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.5)
    assert study_stats.holm([0.6, 0.7]) == [1.0, 1.0]


def paired_table():
    base = np.linspace(0.5, 0.9, CANDIDATES)
    short = {arm: base for arm in ("default", "he", "better", "same")}
    steps = np.arange(CANDIDATES)
    # Distinct differences, so scipy's Wilcoxon takes its exact distribution.
    final = {"default": base, "he": base + 0.01 + 1e-4 * steps, "better": base + 0.05 + 1e-3 * steps,
             "same": base.copy()}
    final["same"][:4] -= 0.02  # four losses to default, sixteen ties
    final["better"][0] = np.nan  # a diverged run
    extra = {"space": ["a" if c % 2 else "b" for c in range(CANDIDATES)]}
    return table_from(short, final, extra=extra)


def test_paired_has_one_row_per_candidate_and_arm():
    result = study_stats.paired(paired_table())
    assert len(result) == CANDIDATES * 4
    assert {"candidate", "arm", "score", "diverged", "score_default", "difference_default",
            "score_he", "difference_he", "space"} <= set(result.columns)
    row = result[(result["candidate"] == 3) & (result["arm"] == "better")].iloc[0]
    assert row["difference_he"] == pytest.approx(0.04 + 0.0027) and row["space"] == "a"
    assert result[result["arm"] == "better"]["diverged"].sum() == 1


def test_paired_summary_against_default():
    summary = study_stats.paired_summary(study_stats.paired(paired_table()), "default", tie=1e-9)
    summary = summary.set_index("arm")
    better, same, he = summary.loc["better"], summary.loc["same"], summary.loc["he"]
    assert (better["wins"], better["ties"], better["losses"], better["n"]) == (19, 0, 0, 19)
    assert better["median_difference"] == pytest.approx(0.05 + 0.010)  # candidates 1..19: median step 10
    assert better["divergence_rate"] == pytest.approx(1 / CANDIDATES)
    assert (same["wins"], same["ties"], same["losses"]) == (0, 16, 4)
    # All 19 differences positive: exact two-sided Wilcoxon p = 2 / 2**19.
    assert better["p_value"] == pytest.approx(2 / 2**19)
    assert he["p_value"] == pytest.approx(2 / 2**20)
    expected = study_stats.holm([better["p_value"], he["p_value"], same["p_value"]])
    assert [better["p_holm"], he["p_holm"], same["p_holm"]] == pytest.approx(expected)


def test_splits_compute_within_each_group():
    short = {"a": QUALITY, "b": np.where(np.arange(CANDIDATES) % 2, QUALITY, -QUALITY)}
    final = {"a": QUALITY, "b": QUALITY}
    table = table_from(short, final, extra={"space": ["odd" if c % 2 else "even" for c in range(CANDIDATES)]})
    result = study_stats.ranking(table, [1], by=["space"], samples=20).set_index(["space", "arm"])
    assert result.loc[("odd", "b"), "spearman"] == pytest.approx(1.0)
    assert result.loc[("even", "b"), "spearman"] == pytest.approx(-1.0)
    assert result.loc[("even", "b"), "n"] == CANDIDATES // 2


def test_bad_tables_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match=r"missing \['score'\]"):
        study_stats.ranking(pd.DataFrame({"candidate": [0], "arm": ["a"], "epoch": [1]}), [1])
    duplicated = pd.DataFrame({"candidate": [0, 0], "arm": ["a", "a"], "epoch": [1, 1], "score": [0.1, 0.2]})
    with pytest.raises(ValueError, match="one row per"):
        study_stats.converged_quality(duplicated)
    with pytest.raises(ValueError, match="difference_lsuv"):
        study_stats.paired_summary(study_stats.paired(paired_table()), "lsuv")


def test_study_and_sweep_summaries_agree_on_the_same_differences():
    """One statistics module: the study's paired summary and results.summarize give the same numbers."""
    import pandas as pd

    from autoinit_nas import results

    # Multiples of 1/16 on 0.5: the study's score differences are exactly these.
    for differences in ([0.375, 0.125, 0.25, -0.0625, 0.3125, 0.1875, -0.125, 0.0625], [0.0] * 6):
        rows = [(c, arm, 1, 0.5 + (d if arm == "x" else 0.0)) for c, d in enumerate(differences) for arm in ("he", "x")]
        table = pd.DataFrame(rows, columns=["candidate", "arm", "epoch", "score"])
        study = study_stats.paired_summary(study_stats.paired(table, references=["he"]), "he", samples=300).iloc[0]
        sweep = results.summarize(pd.DataFrame({"difference": differences}), samples=300).iloc[0]
        assert study["p_value"] == pytest.approx(sweep["wilcoxon_p"])
        assert [study["ci_low"], study["ci_high"]] == pytest.approx([sweep["median_low"], sweep["median_high"]])
        assert (study["wins"], study["ties"], study["losses"]) == (sweep["wins"], sweep["ties"], sweep["losses"])
    assert study["p_value"] == 1.0  # every difference zero: no evidence of a difference, in both
