"""Ranking fidelity on synthetic tables with known rho; the zero-cost proxies against hand computations."""

import math

import keras
import numpy as np
import pandas as pd
import pytest

from autoinit_nas.study import fidelity, proxies

ARMS = ("he", "default", "autoinit")


def study_tables(n=8):
    """scores (epoch 1 and 2), reference and ranked outcomes with known orders.

    Reference test accuracy rises with the candidate under he and autoinit and falls (slightly)
    under default; ``neutral``, their mean, rises. he's epoch-1 score follows the candidate (rho +1
    against own and neutral), default's is reversed (+1 against its own reference, -1 against
    neutral); autoinit's epoch 1 is the order [0, 2, 1, 3, ...] pairwise swapped.
    """
    epoch1 = {"he": lambda c: c, "default": lambda c: -c, "autoinit": lambda c: c + (1 if c % 2 else -1) * 1.5}
    scores = pd.DataFrame([(c, a, e, epoch1[a](c) if e == 1 else c, "none" if c < n // 2 else "every")
                           for c in range(n) for a in ARMS for e in (1, 2)],
                          columns=["candidate", "arm", "epoch", "val_accuracy", "norm"])
    reference = pd.DataFrame([(c, a, 99, 0.5 + (-c / 1000 if a == "default" else c / 100) + 0.01 * i)
                              for c in range(n) for i, a in enumerate(ARMS)],
                             columns=["candidate", "arm", "seed", "test_accuracy"])
    return scores, reference


def test_spearman_known_values():
    assert fidelity.spearman([1, 2, 3, 4, 5], [2, 4, 8, 16, 32]) == 1.0
    assert fidelity.spearman([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == -1.0
    assert fidelity.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(fidelity.spearman([1, 1, 1], [1, 2, 3]))
    assert fidelity.spearman_interval([1, 2, 3, 4], [4, 3, 2, 1], samples=50)[:3] == (-1.0, -1.0, -1.0)


def test_bootstrap_interval_matches_the_sampling_error_of_rho():
    # Bivariate normal, Pearson 0.5: Spearman rho is 6/pi * asin(0.25); its standard error is about
    # (1 - rho^2) * sqrt((1 + rho^2 / 2) / (n - 3)) (Bonett & Wright 2000).
    n = 400
    x, noise = np.random.default_rng(3).standard_normal((2, n))
    y = 0.5 * x + math.sqrt(0.75) * noise
    rho, low, high, count = fidelity.spearman_interval(x, y, samples=2000, seed=1)
    truth = 6 / math.pi * math.asin(0.25)
    error = (1 - truth**2) * math.sqrt((1 + truth**2 / 2) / (n - 3))
    assert count == n and abs(rho - truth) < 4 * error
    assert low < rho < high
    # The width's own relative error: about 1/sqrt(2n) (3.5 %) from the sample plus about 3 % from
    # 2000 resamples' tail percentiles; 20 % is more than 4 of those.
    assert 0.8 < (high - low) / (2 * 1.96 * error) < 1.2


def test_ranking_against_own_and_neutral_references():
    scores, reference = study_tables()
    table = fidelity.ranking(scores, reference, budgets=[1, 2], by=(), samples=50)
    rho = table.set_index(["arm", "budget", "reference"])["spearman"]
    assert rho["he", 1, "own"] == 1.0 and rho["he", 1, "neutral"] == 1.0
    assert rho["default", 1, "own"] == 1.0 and rho["default", 1, "neutral"] == -1.0
    swapped = fidelity.spearman(range(8), [c + (1.5 if c % 2 else -1.5) for c in range(8)])
    assert 0 < swapped < 1 and rho["autoinit", 1, "own"] == pytest.approx(swapped)
    assert (table.loc[(table.budget == 2) & (table.arm != "default"), "spearman"] == 1.0).all()
    assert set(table["n"]) == {8} and list(table.columns) == fidelity.RANKING_COLUMNS


def test_others_leaves_the_ranked_arm_out_of_the_reference():
    # Arm a's reference (10 c) dominates the mean: neutral = 4.5 c rises, so a's own run "agrees" with
    # neutral (+1); against the other arm's reference (-c) it disagrees (-1). For b, others = a's (+1).
    scores = pd.DataFrame([(c, arm, 1, c) for c in range(6) for arm in ("a", "b")],
                          columns=["candidate", "arm", "epoch", "val_accuracy"])
    reference = pd.DataFrame([(c, arm, 5, 10 * c if arm == "a" else -c) for c in range(6) for arm in ("a", "b")],
                             columns=["candidate", "arm", "seed", "test_accuracy"])
    rho = fidelity.ranking(scores, reference, [1], by=(), samples=20).set_index(["arm", "reference"])["spearman"]
    assert rho.to_dict() == {("a", "own"): 1.0, ("a", "neutral"): 1.0, ("a", "others"): -1.0,
                             ("b", "own"): -1.0, ("b", "neutral"): 1.0, ("b", "others"): 1.0}


def test_neutral_is_the_mean_over_arms_and_needs_every_arm():
    _, reference = study_tables(4)
    reference = reference[~((reference.candidate == 3) & (reference.arm == "he"))]
    targets = fidelity.reference_targets(reference)
    assert list(targets.index) == [0, 1, 2]
    assert targets.loc[1, "neutral"] == pytest.approx(0.5 + (0.01 - 0.001 + 0.01 + 0.01 + 0.02) / 3)


def test_strata_and_zero_cost_rows_at_budget_zero():
    scores, reference = study_tables()
    zero = pd.DataFrame([(c, name, value) for c in range(8) for name, value in (("params", 100 + c), ("synflow", -c))],
                        columns=["candidate", "proxy", "value"])
    table = fidelity.ranking(scores, reference, budgets=[1], proxies=zero, by=(), strata=["norm"], samples=50)
    baselines = table[table.budget == 0].set_index(["stratum", "arm"])
    assert set(baselines["reference"]) == {"neutral"}
    assert baselines.loc[("all", "params"), "spearman"] == 1.0
    assert baselines.loc[("all", "synflow"), "spearman"] == -1.0
    assert baselines.loc[("norm=none", "params"), "n"] == 4


def test_noise_ceiling_per_arm():
    _, reference = study_tables()
    outcomes = reference.assign(test_accuracy=np.where(reference.arm == "default", reference.candidate,
                                                       reference.test_accuracy))  # default's reference falls
    table = fidelity.ceiling(outcomes, reference, by=(), samples=50).set_index("arm")["spearman"]
    assert table.to_dict() == {"autoinit": 1.0, "default": -1.0, "he": 1.0}


def test_errors_name_what_is_missing():
    with pytest.raises(ValueError, match=r"missing \['test_accuracy'\]"):
        fidelity.reference_targets(pd.DataFrame({"candidate": [0], "arm": ["he"]}))
    with pytest.raises(ValueError, match="Received: shapes"):
        fidelity.spearman_interval([1, 2, 3], [1, 2])


# --- zero-cost proxies ------------------------------------------------------------------------------


def tiny_model():
    inputs = keras.Input((2,))
    hidden = keras.layers.Dense(3, activation="relu", use_bias=False)(inputs)
    logits = keras.layers.Dense(2, use_bias=False, name="logits")(hidden)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(logits))
    first = np.array([[0.5, -1.0, 2.0], [-0.25, 0.75, -1.5]], "float32")
    second = np.array([[1.0, -2.0], [0.5, 0.25], [-3.0, 1.0]], "float32")
    model.layers[1].kernel.assign(first)
    model.layers[2].kernel.assign(second)
    return model, first, second


def test_synflow_equals_the_hand_computation_and_restores_weights():
    model, first, second = tiny_model()
    a, b = np.abs(first), np.abs(second)
    x = np.ones(2)
    # R = 1^T (x^T A) B 1; dR/dA[i, j] = x_i (B 1)_j; dR/dB[j, k] = (x^T A)_j.
    by_hand = np.sum(a * np.outer(x, b.sum(axis=1))) + np.sum(b * np.outer(x @ a, np.ones(2)))
    assert proxies.synflow(model) == pytest.approx(by_hand, rel=1e-6)
    assert by_hand == pytest.approx(2 * (x @ a @ b).sum())  # two homogeneous layers: 2 R
    np.testing.assert_array_equal(model.layers[1].kernel.numpy(), first)
    np.testing.assert_array_equal(model.layers[2].kernel.numpy(), second)
    assert proxies.zero_cost(model)["params"] == 12
