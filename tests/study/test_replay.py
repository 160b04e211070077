"""Replayed searches on synthetic curves with known answers, and against the real keras-tuner and Ray code."""

import math
import tempfile
import types

import numpy as np
import pandas as pd
import pytest

from autoinit_nas import stats as paired_stats
from autoinit_nas.study import replay
from autoinit_nas.study.replay import Search


def tables(curve_of, candidates, arms, epochs, test_of):
    """(curves, outcomes) long tables from functions of (candidate, arm, epoch) and (candidate, arm)."""
    curves = pd.DataFrame(
        [(c, a, e, curve_of(c, a, e)) for c in range(candidates) for a in arms for e in range(1, epochs + 1)],
        columns=["candidate", "arm", "epoch", "val_accuracy"])
    outcomes = pd.DataFrame([(c, a, test_of(c, a)) for c in range(candidates) for a in arms],
                            columns=["candidate", "arm", "test_accuracy"])
    return curves, outcomes


# --- the searches' rules, against the libraries' own code -------------------------------------------


def test_hyperband_brackets_equal_keras_tuners():
    import keras_tuner

    assert replay.hyperband_brackets(9, 3) == [[(9, 1), (3, 3), (1, 9)], [(5, 3), (2, 9)], [(3, 9)]]
    for max_epochs, factor in ((9, 3), (12, 3), (27, 3), (16, 2)):
        oracle = keras_tuner.oracles.HyperbandOracle(objective="val_accuracy", max_epochs=max_epochs, factor=factor)
        expected = [[(oracle._get_size(s, r), oracle._get_epochs(s, r)) for r in range(s + 1)]
                    for s in reversed(range(oracle._get_num_brackets()))]
        assert replay.hyperband_brackets(max_epochs, factor) == expected


def real_hyperband(curves, max_epochs, factor):
    """The candidate keras-tuner's HyperbandOracle returns when trials score from ``curves``."""
    import keras_tuner

    oracle = keras_tuner.oracles.HyperbandOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"), max_epochs=max_epochs, factor=factor, seed=0)
    oracle._set_project_dir(tempfile.mkdtemp(), "replay")
    oracle.hyperparameters.Int("c", 0, 10**9)
    fresh, owner = iter(range(len(curves))), {}
    while (trial := oracle.create_trial("tuner0")).status == "RUNNING":
        values = trial.hyperparameters.values
        owner[trial.trial_id] = owner[values["tuner/trial_id"]] if "tuner/trial_id" in values else next(fresh)
        for epoch in range(values["tuner/initial_epoch"], values["tuner/epochs"]):
            oracle.update_trial(trial.trial_id, {"val_accuracy": float(curves[owner[trial.trial_id], epoch])},
                                step=epoch)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return owner[oracle.get_best_trials(1)[0].trial_id]


def test_hyperband_replay_chooses_what_keras_tuner_chooses(capsys):
    rng = np.random.default_rng(0)
    for _ in range(4):  # one decimal: many ties, so the tie rules are exercised too
        curves = np.round(rng.random((replay.hyperband_candidates(9), 9)), 1)
        assert replay.choose_hyperband(curves, 9, 3) == real_hyperband(curves, 9, 3)


def real_asha_stops(curves, max_t, grace_period, reduction_factor):
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    scheduler = ASHAScheduler(metric="val_accuracy", mode="max", max_t=max_t, grace_period=grace_period,
                              reduction_factor=reduction_factor)
    stops = []
    for index, curve in enumerate(curves):
        trial = types.SimpleNamespace(trial_id=str(index))
        scheduler.on_trial_add(None, trial)
        for epoch in range(1, max_t + 1):
            result = {"training_iteration": epoch, "val_accuracy": float(curve[epoch - 1])}
            if scheduler.on_trial_result(None, trial, result) == TrialScheduler.STOP:
                break
        scheduler.on_trial_complete(None, trial, result)
        stops.append(epoch)
    return stops


def test_asha_stops_equal_rays_scheduler():
    rng = np.random.default_rng(1)
    for case in range(30):
        factor, max_t, k = (2, 3, 4)[case % 3], int(rng.integers(2, 13)), int(rng.integers(2, 16))
        curves = np.round(rng.random((k, max_t)), 1)
        assert replay.asha_stops(curves, max_t, 1, factor).tolist() == real_asha_stops(curves, max_t, 1, factor)


def test_asha_stops_a_known_trial_at_rung_one():
    # rf 2, rungs 1 and 2: trial 1 (0.6) is below 0.8 at rung 1, trial 2 (0.3) below the median 0.7.
    curves = [[0.8, 0.8, 0.8, 0.8], [0.6, 0.7, 0.7, 0.7], [0.3, 0.99, 0.99, 0.99], [0.9, 0.9, 0.9, 0.95]]
    assert replay.asha_milestones(4, 1, 2) == [1, 2, 4]
    assert replay.asha_stops(curves, 4, 1, 2).tolist() == [4, 1, 1, 4]
    # The late bloomer was stopped, so ASHA picks trial 3 although trial 2 would have won.
    assert replay.choose_asha(curves, 4, 1, 2) == 3


def test_random_search_picks_the_best_short_score_first_on_ties():
    assert replay.choose_random([[0.1, 0.9], [0.5, 0.2], [0.5, 0.3]], budget=1) == 1
    assert replay.choose_random([[0.1, 0.9], [0.5, 0.2]], budget=2, scope="best") == 0
    with pytest.raises(ValueError, match="Received: budget=3"):
        replay.choose_random([[0.1, 0.9]], budget=3)


# --- common subsets -------------------------------------------------------------------------------


def test_common_subsets_enumerate_every_subset_once_and_repeat_exactly():
    subsets = replay.common_subsets(8, 3, seed=5, draws=10)
    assert len(subsets) == math.comb(8, 3)
    assert len({tuple(sorted(row)) for row in subsets}) == math.comb(8, 3)
    np.testing.assert_array_equal(subsets, replay.common_subsets(8, 3, seed=5, draws=10))
    sampled = replay.common_subsets(30, 10, seed=5, draws=50)
    assert sampled.shape == (50, 10) and all(len(set(row)) == 10 for row in sampled)


def test_few_subsets_are_tiled_in_many_arrival_orders():
    # n == k == 22 (Hyperband at E = 12): one subset; it must come in >= draws independent orders.
    subsets = replay.common_subsets(22, 22, seed=3, draws=500)
    assert subsets.shape == (500, 22)
    assert all(sorted(row) == list(range(22)) for row in subsets)
    assert len({tuple(row) for row in subsets}) == 500  # 22! orders: 500 draws all differ
    np.testing.assert_array_equal(subsets, replay.common_subsets(22, 22, seed=3, draws=500))
    # 56 subsets, 200 draws: 4 copies, each subset exactly 4 times, in different orders.
    tiled = replay.common_subsets(8, 3, seed=5, draws=200)
    assert len(tiled) == 224
    counts = {}
    for row in tiled:
        counts[tuple(sorted(row))] = counts.get(tuple(sorted(row)), 0) + 1
    assert set(counts.values()) == {4} and len(counts) == 56
    assert len({tuple(row) for row in tiled}) > 56


def test_asha_over_one_subset_averages_over_arrival_orders():
    # Every candidate's curve is flat at its worth except a late bloomer (candidate 0, worst at epoch 1,
    # best at E): ASHA keeps it only when it arrives first, so over many orders the hit rate is strictly
    # between 0 and 1, and the replay counts at least `draws` subsets.
    n = 6
    curves, outcomes = tables(lambda c, a, e: (0.0 if e == 1 else 1.0) if c == 0 else c / 10, n, ["he"], 4,
                              lambda c, a: 1.0 if c == 0 else c / 10)
    table, _ = replay.replay(curves, outcomes, [Search("asha", 4, n, factor=2)], baselines=["he"], by=(),
                             draws=300, samples=5, boot_subsets=5)
    row = table.iloc[0]
    assert row["subsets"] >= 300 and 0 < row["hit_rate"] < 1


# --- p-values and pairs ---------------------------------------------------------------------------


def test_normal_p_has_no_resolution_floor_so_holm_keeps_a_clear_effect():
    from scipy import stats

    boot = np.random.default_rng(0).normal(0.05, 0.01, 200)  # no resample crosses zero
    expected = 2 * stats.norm.sf(0.05 / boot.std())
    assert replay.normal_p(0.05, boot) == pytest.approx(expected)
    assert 0 < replay.normal_p(0.05, boot) < 1e-5
    # Holm over 1000 rows: a percentile p of 1/200 would become 1, this one stays far below 0.05.
    assert paired_stats.holm([replay.normal_p(0.05, boot)] + [0.5] * 999)[0] < 1e-2
    assert replay.normal_p(0.0, np.zeros(10)) == 1.0
    assert 0 < replay.normal_p(0.01, np.full(10, 0.01)) < 1e-300  # constant difference: tiny, not 0
    assert replay.normal_p(-0.02, np.array([-0.03, -0.01])) == pytest.approx(2 * stats.norm.sf(2.0))


def test_two_baselines_are_paired_in_one_direction_only():
    noise = np.random.default_rng(5).random((10, 3))
    curves, outcomes = tables(lambda c, a, e: noise[c, e - 1] + (0.1 if a == "he" else 0), 10,
                              ["he", "default", "autoinit"], 3, lambda c, a: noise[c].mean())
    _, paired = replay.replay(curves, outcomes, [Search("random", 1, 4)], baselines=["he", "default"], by=(),
                              samples=10, boot_subsets=5)
    assert sorted(zip(paired["arm"], paired["baseline"])) == [("autoinit", "default"), ("autoinit", "he"),
                                                              ("he", "default")]


def test_three_baselines_meet_once_per_unordered_pair():
    noise = np.random.default_rng(6).random((10, 3))
    curves, outcomes = tables(lambda c, a, e: noise[c, e - 1] + (0.1 if a == "lsuv" else 0), 10,
                              ["he", "default", "lsuv", "autoinit"], 3, lambda c, a: noise[c].mean())
    _, paired = replay.replay(curves, outcomes, [Search("random", 1, 4)], baselines=["he", "default", "lsuv"],
                              by=(), samples=10, boot_subsets=5)
    pairs = list(zip(paired["arm"], paired["baseline"]))
    assert sorted(pairs) == [("autoinit", "default"), ("autoinit", "he"), ("autoinit", "lsuv"),
                             ("default", "lsuv"), ("he", "default"), ("he", "lsuv")]
    baseline_pairs = [frozenset(p) for p in pairs if "autoinit" not in p]
    assert len(baseline_pairs) == len(set(baseline_pairs)) == 3


def test_each_cell_draws_its_own_bootstrap():
    noise = np.random.default_rng(7).random((10, 2))
    curves, outcomes = tables(lambda c, a, e: noise[c, e - 1] + (0.05 * c if a == "he" else 0), 10,
                              ["he", "autoinit"], 2, lambda c, a: noise[c, 1] + (0.02 * c if a == "he" else 0))
    curves = pd.concat([curves.assign(space="s", dataset=d) for d in ("a", "b")])
    outcomes = pd.concat([outcomes.assign(space="s", dataset=d) for d in ("a", "b")])
    table, paired = replay.replay(curves, outcomes, [Search("random", 1, 3)], baselines=["he"], samples=30,
                                  boot_subsets=5)
    cells = paired[paired["dataset"] != "all"].set_index("dataset")
    assert cells.loc["a", "mean_diff"] == pytest.approx(cells.loc["b", "mean_diff"])  # all subsets either way
    assert (cells.loc["a", "ci_low"], cells.loc["a", "ci_high"]) != (cells.loc["b", "ci_low"], cells.loc["b", "ci_high"])


def test_common_regret_uses_the_best_candidate_over_every_arm():
    # Arm "low" scores 0.2 below "high" on every candidate, with the same order: both pick their own best
    # (regret 0), but against the common oracle (high's best) low loses exactly 0.2.
    curves, outcomes = tables(lambda c, a, e: c / 10, 6, ["high", "low"], 2,
                              lambda c, a: c / 10 + (0.2 if a == "high" else 0.0))
    table, _ = replay.replay(curves, outcomes, [Search("random", 1, 3)], baselines=["high"], by=(),
                             samples=5, boot_subsets=5)
    rows = table.set_index("arm")
    assert rows.loc["low", "mean_regret"] == 0 and rows.loc["high", "mean_regret"] == 0
    assert rows.loc["high", "mean_common_regret"] == pytest.approx(0.0)
    assert rows.loc["low", "mean_common_regret"] == pytest.approx(0.2)


# --- whole tables ---------------------------------------------------------------------------------


def test_short_order_equal_to_final_order_gives_no_regret():
    curves, outcomes = tables(lambda c, a, e: c / 20 + e / 100, 17, ["he", "autoinit"], 9, lambda c, a: c / 20)
    searches = [Search("random", 1, 4), Search("hyperband", 9), Search("asha", 9, 4, factor=2)]
    table, _ = replay.replay(curves, outcomes, searches, baselines=["he"], by=(), samples=10, boot_subsets=5)
    assert (table["mean_regret"] == 0).all() and (table["hit_rate"] == 1).all()
    assert table.loc[table.search == "random", "subsets"].tolist() == [math.comb(17, 4)] * 2


def test_identical_arms_differ_by_exactly_zero_with_p_one():
    rng = np.random.default_rng(2)
    noise = rng.random((12, 4))
    curves, outcomes = tables(lambda c, a, e: noise[c, e - 1], 12, ["he", "default", "autoinit"], 4,
                              lambda c, a: noise[c].mean())
    searches = [Search("random", 1, 5), Search("asha", 4, 5, factor=2)]
    _, paired = replay.replay(curves, outcomes, searches, baselines=["he"], by=(), samples=20, boot_subsets=10)
    assert len(paired) == 4
    assert (paired["mean_diff"] == 0).all() and (paired["ci_low"] == 0).all() and (paired["ci_high"] == 0).all()
    assert (paired["p"] == 1).all() and (paired["p_holm"] == 1).all()


def test_a_misleading_arm_loses_and_the_interval_says_so():
    # "good": epoch-1 order = test order; "bad": epoch-1 order reversed. Every bad pick of 4 but
    # the lucky ones misses, so good - bad > 0 on every resample.
    n = 16
    curves, outcomes = tables(lambda c, a, e: c / n if a == "good" or e > 1 else 1 - c / n, n, ["good", "bad"],
                              3, lambda c, a: c / n)
    table, paired = replay.replay(curves, outcomes, [Search("random", 1, 4)], baselines=["bad"], by=(),
                                  samples=50, boot_subsets=20)
    regrets = table.set_index("arm")["mean_regret"]
    assert regrets["good"] == 0 and regrets["bad"] > 0.1
    row = paired.iloc[0]
    assert row["arm"] == "good" and row["mean_diff"] == pytest.approx(regrets["bad"])
    # No resample crosses zero: a percentile p would be exactly 0, which Holm can never raise; the
    # normal approximation gives a small positive p instead.
    assert row["ci_low"] > 0 and 0 < row["p"] < 0.05


def test_cells_strata_and_pooled_rows():
    curves, outcomes = tables(lambda c, a, e: c / 10, 8, ["he", "autoinit"], 2, lambda c, a: c / 10)
    frames = []
    for dataset in ("digits", "wine"):
        for frame in (curves, outcomes):
            frame = frame.assign(space="mlp", dataset=dataset)
            frames.append(frame)
    curves = pd.concat(frames[0::2]).assign(norm=lambda t: np.where(t.candidate < 4, "none", "every"))
    outcomes = pd.concat(frames[1::2])
    table, paired = replay.replay(curves, outcomes, [Search("random", 1, 3)], baselines=["he"], strata=["norm"],
                                  samples=10, boot_subsets=5)
    assert set(table["stratum"]) == {"all", "norm=none", "norm=every"}
    assert table.loc[table.stratum == "norm=none", "n"].tolist() == [4, 4, 4, 4]
    pooled = paired[paired["dataset"] == "all"]
    assert len(pooled) == 1 and pooled.iloc[0]["space"] == "all"
    assert list(paired.columns[:2]) == ["space", "dataset"] and "p_holm" in paired.columns


def test_bad_search_arguments_say_what_was_received():
    with pytest.raises(ValueError, match="Received: search='bohb'"):
        Search("bohb", 4, 8)
    with pytest.raises(ValueError, match="Received: k=None"):
        Search("random", 4)
    curves, outcomes = tables(lambda c, a, e: c, 5, ["he"], 2, lambda c, a: c)
    with pytest.raises(ValueError, match=r"`curves` needs columns .*missing \['space', 'dataset'\]"):
        replay.replay(curves, outcomes, [Search("random", 1, 2)])
    with pytest.raises(ValueError, match=r"needs curves of at least \(17, 9\)"):
        replay.choose_hyperband(np.zeros((5, 9)), 9)


def test_too_few_candidates_give_a_row_that_says_so():
    curves, outcomes = tables(lambda c, a, e: c, 5, ["he", "autoinit"], 9, lambda c, a: c)
    table, paired = replay.replay(curves, outcomes, [Search("hyperband", 9)], by=(), baselines=["he"], samples=5)
    assert table["n"].tolist() == [5, 5] and table["subsets"].tolist() == [0, 0]
    assert table["mean_regret"].isna().all() and paired.empty
