"""autoinit_nas.stats: the one paired-statistics module, on differences with known answers."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from autoinit_nas import stats


def test_wilcoxon_matches_scipy_on_the_nonzero_differences():
    differences = [0.3, 0.1, 0.2, -0.05, 0.0, 0.25, 0.15, -0.1]
    expected = scipy_stats.wilcoxon([d for d in differences if d != 0]).pvalue
    assert stats.wilcoxon_p(differences) == pytest.approx(expected)
    # Six positive differences, exact two-sided test: 2 / 2**6.
    assert stats.wilcoxon_p([0.5, 0.4, 0.3, 0.2, 0.1, 0.6]) == pytest.approx(2 / 64)


def test_wilcoxon_all_zero_is_one_and_fewer_than_two_is_nan():
    assert stats.wilcoxon_p([0.0, 0.0, 0.0]) == 1.0  # no evidence of a difference
    assert math.isnan(stats.wilcoxon_p([0.4]))
    assert math.isnan(stats.wilcoxon_p([]))
    with pytest.raises(ValueError, match="finite"):
        stats.wilcoxon_p([0.1, float("nan")])


def test_holm_by_hand():
    # Sorted 0.01, 0.03, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04).
    assert stats.holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    adjusted = stats.holm([0.5, float("nan"), 0.2])
    assert adjusted[0] == 0.5 and math.isnan(adjusted[1]) and adjusted[2] == 0.4
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1
    assert stats.holm([]) == []


def test_win_tie_loss():
    assert stats.win_tie_loss([0.2, 0.0, -0.1, 0.01, -0.01], tie=0.01) == (1, 3, 1)
    assert stats.win_tie_loss([0.2, 0.0, -0.1]) == (1, 1, 1)
    with pytest.raises(ValueError, match="tie"):
        stats.win_tie_loss([0.1], tie=-1)


def test_bootstrap_intervals_are_the_percentiles_of_resampled_statistics():
    differences = np.array([0.1, 0.4, -0.2, 0.3, 0.0, 0.25])
    intervals = stats.bootstrap_intervals(differences, samples=500, seed=3)
    picks = np.random.default_rng(3).integers(0, 6, size=(500, 6))
    means, medians = differences[picks].mean(axis=1), np.median(differences[picks], axis=1)
    assert intervals["mean"] == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))
    assert intervals["median"] == pytest.approx(tuple(np.percentile(medians, [2.5, 97.5])))
    assert intervals == stats.bootstrap_intervals(differences, samples=500, seed=3)  # fixed seed
    constant = stats.bootstrap_intervals([0.2] * 5, samples=50)
    assert constant["mean"] == pytest.approx((0.2, 0.2))
    assert all(math.isnan(v) for v in stats.bootstrap_intervals([0.2], samples=50)["mean"])
    with pytest.raises(ValueError, match="statistics"):
        stats.bootstrap_intervals(differences, statistics=("mode",))


def test_percentile_interval_skips_non_finite_values():
    assert stats.percentile_interval([1.0, np.nan, 3.0, np.inf], confidence=0.5) == pytest.approx((1.5, 2.5))
    assert all(math.isnan(v) for v in stats.percentile_interval([np.nan]))
    with pytest.raises(ValueError, match="confidence"):
        stats.percentile_interval([1.0], confidence=95)


def test_holm_is_step_down_with_a_running_maximum():
    # sorted 0.01 x3 = 0.03; 0.011 x2 = 0.022 -> raised to 0.03 (monotone); 0.04 x1 = 0.04
    assert stats.holm([0.04, 0.01, 0.011]) == pytest.approx([0.04, 0.03, 0.03])
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
