"""Paired statistics, defined once: bootstrap intervals, Wilcoxon signed-rank, Holm, win/tie/loss.

Every comparison of init arms in the package (``autoinit_nas.results`` for
sweeps, ``autoinit_nas.study.stats`` for the study) reads its numbers from
here, so the same differences give the same interval and p everywhere.
Pure numpy/scipy: no pandas, no Keras.

Conventions:

- Differences are paired (one per candidate), positive = the arm did better.
- Intervals are percentile bootstrap intervals (``CONFIDENCE``) over
  ``samples`` resamples of the pairs drawn from ``numpy.random.default_rng(seed)``.
- ``wilcoxon_p``: two-sided signed-rank test; zero differences are dropped
  (Wilcoxon's own rule). Fewer than two differences: NaN (no test). **Every
  difference zero: 1.0** -- the data give no evidence of a difference, which
  is what a p of 1 says; NaN would drop such groups from Holm's correction.

Example:
    >>> d = [0.1, 0.2, 0.0, -0.05, 0.3]
    >>> win_tie_loss(d), round(wilcoxon_p(d), 3), wilcoxon_p([0.0, 0.0])
    ((3, 1, 1), 0.25, 1.0)
"""

import warnings

import numpy as np
from scipy import stats as _scipy_stats

CONFIDENCE = 0.95
SAMPLES = 10_000
SEED = 0


def _values(differences, name="differences"):
    values = np.asarray(differences, dtype=float).ravel()
    if values.size and not np.all(np.isfinite(values)):
        raise ValueError(f"`{name}` must be finite numbers (drop NaN first). Received: {values.tolist()}")
    return values


def resample(n, samples=SAMPLES, seed=SEED):
    """Indices of ``samples`` bootstrap resamples of ``n`` pairs: an int array (samples, n).

    Example:
        >>> resample(3, samples=2, seed=0).shape
        (2, 3)
    """
    if int(n) < 1 or int(samples) < 1:
        raise ValueError(f"`n` and `samples` must be positive. Received: n={n!r}, samples={samples!r}")
    return np.random.default_rng(seed).integers(0, int(n), size=(int(samples), int(n)))


def percentile_interval(values, confidence=CONFIDENCE):
    """(low, high): the central ``confidence`` percentile interval of the finite ``values``; NaNs if none.

    Example:
        >>> [round(v, 6) for v in percentile_interval(range(101), 0.9)]
        [5.0, 95.0]
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must lie in (0, 1). Received: confidence={confidence!r}")
    values = np.asarray(list(values) if not hasattr(values, "__array__") else values, dtype=float).ravel()
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_intervals(differences, statistics=("mean", "median"), samples=SAMPLES, seed=SEED,
                        confidence=CONFIDENCE):
    """{statistic: (low, high)}: paired bootstrap intervals of the differences' mean and/or median.

    All statistics read the same resamples. Fewer than two differences: NaN intervals.

    Example:
        >>> intervals = bootstrap_intervals([1.0, 2.0, 3.0, 4.0], samples=2000)
        >>> [round(v, 2) for v in intervals["mean"]]
        [1.5, 3.5]
    """
    functions = {"mean": np.mean, "median": np.median}
    unknown = [name for name in statistics if name not in functions]
    if unknown:
        raise ValueError(f"`statistics` must name {sorted(functions)}. Received: statistics={list(statistics)!r}")
    values = _values(differences)
    if values.size < 2:
        return {name: (float("nan"), float("nan")) for name in statistics}
    draws = values[resample(values.size, samples, seed)]
    return {name: percentile_interval(functions[name](draws, axis=1), confidence) for name in statistics}


def wilcoxon_p(differences):
    """Two-sided Wilcoxon signed-rank p of paired differences (zeros dropped).

    NaN with fewer than two differences; 1.0 when every difference is zero
    (no evidence of a difference; see the module docstring).

    Example:
        >>> round(wilcoxon_p([0.5, 0.4, 0.3, 0.2, 0.1, 0.6]), 4), wilcoxon_p([0.2])
        (0.0312, nan)
    """
    values = _values(differences)
    if values.size < 2:
        return float("nan")
    nonzero = values[values != 0]
    if not nonzero.size:
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on small samples; the exact test is used there
        return float(_scipy_stats.wilcoxon(nonzero).pvalue)


def holm(p_values):
    """Holm-Bonferroni adjusted p-values, in the input order; NaN stays NaN and is not counted.

    Example:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float).ravel()
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - position) * p[index]))
        adjusted[index] = running
    return [float(round(value, 12)) for value in adjusted]


def win_tie_loss(differences, tie=0.0):
    """(wins, ties, losses): differences above ``tie``, within ``|d| <= tie``, below ``-tie``.

    Example:
        >>> win_tie_loss([0.2, 0.01, -0.3], tie=0.05)
        (1, 1, 1)
    """
    if tie < 0:
        raise ValueError(f"`tie` must be >= 0. Received: tie={tie!r}")
    values = _values(differences)
    return int(np.sum(values > tie)), int(np.sum(np.abs(values) <= tie)), int(np.sum(values < -tie))
