"""The Gaussian moment maths against closed forms, scipy quadrature and sampling.

Closed forms and ``scipy.integrate.quad`` are compared at 1e-9 relative
precision (the module promises quadrature errors below 1e-9). Sampling checks
use 4 standard errors computed from the sample itself.
"""

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from autoinit_nas.maths import gaussian
from tests.conftest import mean_standard_error, variance_standard_error

INF = math.inf
SQRT_2PI = math.sqrt(2.0 * math.pi)
RELU = [(-INF, 0.0, 0.0), (0.0, 1.0, 0.0)]


def quad_expectation(function, mean, std, lower=-INF, upper=INF):
    """E[function(X) 1{lower < X < upper}], X ~ N(mean, std^2), by scipy.quad."""
    density = stats.norm(mean, std).pdf
    lo = max(lower, mean - 14 * std)
    hi = min(upper, mean + 14 * std)
    if lo >= hi:
        return 0.0
    points = [p for p in (mean,) if lo < p < hi]
    value, _ = integrate.quad(lambda x: function(x) * density(x), lo, hi,
                              points=points or None, epsabs=1e-13, epsrel=1e-12, limit=200)
    return value


def assert_sampled(samples, mean, var):
    samples = np.asarray(samples, dtype=float)
    assert abs(samples.mean() - mean) <= 4 * mean_standard_error(samples)
    assert abs(samples.var() - var) <= 4 * variance_standard_error(samples)


# truncated_partial_moments


@pytest.mark.parametrize(
    "mean, std, lower, upper",
    [
        (0.0, 1.0, -INF, INF),
        (0.0, 1.0, 0.0, INF),
        (0.3, 2.0, -1.0, 0.5),
        (-1.5, 0.4, -INF, -1.0),
        (2.0, 0.7, 1.0, 6.0),
        (0.0, 1.0, 3.0, 4.0),
    ],
)
def test_truncated_partial_moments_match_quadrature(mean, std, lower, upper):
    prob, m1, m2 = gaussian.truncated_partial_moments(mean, std, lower, upper)
    for got, power in ((prob, 0), (m1, 1), (m2, 2)):
        want = quad_expectation(lambda x, p=power: x**p, mean, std, lower, upper)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_truncated_partial_moments_whole_line_are_the_raw_moments():
    prob, m1, m2 = gaussian.truncated_partial_moments(0.7, 1.3, -INF, INF)
    assert prob == pytest.approx(1.0, abs=1e-15)
    assert m1 == pytest.approx(0.7, rel=1e-14)
    assert m2 == pytest.approx(0.7**2 + 1.3**2, rel=1e-14)


def test_truncated_partial_moments_point_mass():
    assert gaussian.truncated_partial_moments(0.5, 0.0, 0.0, 1.0) == (1.0, 0.5, 0.25)
    assert gaussian.truncated_partial_moments(1.5, 0.0, 0.0, 1.0) == (0.0, 0.0, 0.0)


def test_truncated_partial_moments_match_sampling(rng):
    mean, std, lower, upper = 0.4, 1.7, -0.5, 2.5
    x = mean + std * rng.standard_normal(400_000)
    inside = (x > lower) & (x < upper)
    prob, m1, m2 = gaussian.truncated_partial_moments(mean, std, lower, upper)
    for got, values in ((prob, inside * 1.0), (m1, x * inside), (m2, x * x * inside)):
        assert abs(values.mean() - got) <= 4 * mean_standard_error(values)


# piecewise_linear_moments


def test_relu_standard_normal_closed_form():
    mean, var = gaussian.piecewise_linear_moments(0.0, 1.0, RELU)
    assert mean == pytest.approx(1.0 / SQRT_2PI, rel=1e-14)
    assert var == pytest.approx(0.5 - 1.0 / (2.0 * math.pi), rel=1e-14)


def test_implicit_zero_piece_before_the_first_start():
    """Pieces not starting at -inf are preceded by the zero function."""
    explicit = gaussian.piecewise_linear_moments(0.3, 2.0, RELU)
    implicit = gaussian.piecewise_linear_moments(0.3, 2.0, [(0.0, 1.0, 0.0)])
    assert implicit == pytest.approx(explicit, rel=1e-15)


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.5, -0.3])
def test_leaky_relu_standard_normal_closed_form(slope):
    # E f = (1 - a) phi(0); E f^2 = (1 + a^2) / 2.
    mean, var = gaussian.piecewise_linear_moments(0.0, 1.0, [(-INF, slope, 0.0), (0.0, 1.0, 0.0)])
    want_mean = (1.0 - slope) / SQRT_2PI
    assert mean == pytest.approx(want_mean, rel=1e-13)
    assert var == pytest.approx((1.0 + slope**2) / 2.0 - want_mean**2, rel=1e-13)


@pytest.mark.parametrize("mean, var", [(1.0, 1.0), (-0.7, 0.3), (2.5, 4.0), (-3.0, 0.5)])
def test_relu_non_zero_mean_closed_form(mean, var):
    # E relu = m Phi(m/s) + s phi(m/s); E relu^2 = (m^2 + s^2) Phi(m/s) + m s phi(m/s).
    s = math.sqrt(var)
    cdf, pdf = stats.norm.cdf(mean / s), stats.norm.pdf(mean / s)
    first = mean * cdf + s * pdf
    second = (mean**2 + var) * cdf + mean * s * pdf
    got_mean, got_var = gaussian.piecewise_linear_moments(mean, var, RELU)
    assert got_mean == pytest.approx(first, rel=1e-12)
    assert got_var == pytest.approx(second - first**2, rel=1e-10)


@pytest.mark.parametrize("mean, var", [(0.0, 1.0), (0.8, 2.5), (-1.2, 0.6)])
def test_piecewise_with_jumps_and_intercepts_matches_sampling_and_quad(rng, mean, var):
    """A clipped, discontinuous, non-monotone piecewise-linear function."""
    pieces = [(-INF, 0.1, -1.0), (-1.0, 1.0, 0.0), (0.5, -2.0, 3.0), (2.0, 0.0, 0.25)]

    def f(x):
        x = np.asarray(x, dtype=float)
        return np.select(
            [x < -1.0, x < 0.5, x < 2.0], [0.1 * x - 1.0, x, -2.0 * x + 3.0], 0.25
        )

    got_mean, got_var = gaussian.piecewise_linear_moments(mean, var, pieces)
    s = math.sqrt(var)
    first = sum(quad_expectation(lambda x, a=a, b=b: a * x + b, mean, s, lo, hi)
                for (lo, a, b), hi in zip(pieces, [p[0] for p in pieces[1:]] + [INF]))
    second = sum(quad_expectation(lambda x, a=a, b=b: (a * x + b) ** 2, mean, s, lo, hi)
                 for (lo, a, b), hi in zip(pieces, [p[0] for p in pieces[1:]] + [INF]))
    assert got_mean == pytest.approx(first, rel=1e-9, abs=1e-12)
    assert got_var == pytest.approx(second - first**2, rel=1e-9)
    assert_sampled(f(mean + s * rng.standard_normal(400_000)), got_mean, got_var)


def test_piecewise_zero_variance_is_the_function_value():
    mean, var = gaussian.piecewise_linear_moments(1.5, 0.0, [(-INF, 0.0, 0.0), (0.0, 2.0, 1.0)])
    assert mean == pytest.approx(4.0)
    assert var == 0.0


# elementwise_moments


@pytest.mark.parametrize("mean, var", [(0.0, 1.0), (0.5, 2.0), (-1.0, 0.25)])
def test_tanh_matches_quad_and_sampling(rng, mean, var):
    got_mean, got_var = gaussian.elementwise_moments(np.tanh, mean, var)
    s = math.sqrt(var)
    first = quad_expectation(np.tanh, mean, s)
    second = quad_expectation(lambda x: np.tanh(x) ** 2, mean, s)
    assert got_mean == pytest.approx(first, rel=1e-9, abs=1e-12)
    assert got_var == pytest.approx(second - first**2, rel=1e-9)
    assert_sampled(np.tanh(mean + s * rng.standard_normal(400_000)), got_mean, got_var)


def test_tanh_standard_normal_documented_value():
    assert gaussian.elementwise_moments(np.tanh, 0.0, 1.0)[1] == pytest.approx(0.394294, abs=5e-6)


@pytest.mark.parametrize("mean, var", [(0.0, 1.0), (0.3, 0.5), (-1.0, 2.0), (1.0, 4.0)])
def test_exp_is_exact_lognormal(mean, var):
    # E e^X = e^(m + v/2); Var e^X = (e^v - 1) e^(2m + v).
    got_mean, got_var = gaussian.elementwise_moments(np.exp, mean, var)
    assert got_mean == pytest.approx(math.exp(mean + var / 2), rel=1e-10)
    assert got_var == pytest.approx(math.expm1(var) * math.exp(2 * mean + var), rel=1e-9)


@pytest.mark.parametrize("mean, var", [(0.0, 1.0), (0.6, 0.8), (-2.0, 1.5)])
def test_kinked_function_abs_closed_form(mean, var):
    # |X|, X ~ N(m, s^2): folded normal, E|X| = s sqrt(2/pi) e^(-m^2/2s^2) + m (1 - 2 Phi(-m/s)).
    s = math.sqrt(var)
    first = s * math.sqrt(2 / math.pi) * math.exp(-mean**2 / (2 * var)) + mean * (
        1 - 2 * stats.norm.cdf(-mean / s)
    )
    got_mean, got_var = gaussian.elementwise_moments(np.abs, mean, var, kinks=(0.0,))
    assert got_mean == pytest.approx(first, rel=1e-10)
    assert got_var == pytest.approx(mean**2 + var - first**2, rel=1e-10)


@pytest.mark.parametrize("threshold", [-0.4, 0.0, 1.3])
def test_step_function_with_its_kink(threshold):
    # 1{X > c}: Bernoulli(p), p = Phi((m - c)/s); exact when the jump is a cut.
    mean, var = 0.2, 0.9
    p = stats.norm.cdf((mean - threshold) / math.sqrt(var))
    got_mean, got_var = gaussian.elementwise_moments(
        lambda x: (x > threshold).astype(float), mean, var, kinks=(threshold,)
    )
    assert got_mean == pytest.approx(p, rel=1e-10)
    assert got_var == pytest.approx(p * (1 - p), rel=1e-9)


def test_elu_kink_matches_quad():
    f = lambda x: np.where(x > 0, x, 0.7 * np.expm1(np.minimum(x, 0)))  # noqa: E731
    got_mean, got_var = gaussian.elementwise_moments(f, 0.3, 1.7, kinks=(0.0,))
    s = math.sqrt(1.7)
    first = quad_expectation(f, 0.3, s, -INF, 0.0) + quad_expectation(f, 0.3, s, 0.0, INF)
    second = quad_expectation(lambda x: f(x) ** 2, 0.3, s, -INF, 0.0) + quad_expectation(
        lambda x: f(x) ** 2, 0.3, s, 0.0, INF
    )
    assert got_mean == pytest.approx(first, rel=1e-10)
    assert got_var == pytest.approx(second - first**2, rel=1e-9)


def test_elementwise_zero_variance():
    assert gaussian.elementwise_moments(np.tanh, 0.5, 0.0) == (pytest.approx(math.tanh(0.5)), 0.0)


# max_of_normals_moments


def test_max_of_two_closed_form():
    # E max(Z1, Z2) = 1/sqrt(pi); E max^2 = 1 (max^2 + min^2 = Z1^2 + Z2^2, symmetric).
    first, second = gaussian.max_of_normals_standard_moments(2)
    assert first == pytest.approx(1.0 / math.sqrt(math.pi), rel=1e-12)
    assert second == pytest.approx(1.0, rel=1e-12)
    mean, var = gaussian.max_of_normals_moments(0.0, 1.0, 2)
    assert var == pytest.approx(1.0 - 1.0 / math.pi, rel=1e-12)


def test_max_of_three_closed_form():
    # E max of 3 = 3 / (2 sqrt(pi)); E max^2 = 1 + sqrt(3) / (2 pi).
    first, second = gaussian.max_of_normals_standard_moments(3)
    assert first == pytest.approx(1.5 / math.sqrt(math.pi), rel=1e-12)
    assert second == pytest.approx(1.0 + math.sqrt(3.0) / (2.0 * math.pi), rel=1e-12)


def test_max_of_one_is_the_input():
    assert gaussian.max_of_normals_standard_moments(1) == (0.0, 1.0)
    assert gaussian.max_of_normals_moments(0.3, 2.0, 1) == pytest.approx((0.3, 2.0))


def test_max_of_zero_raises():
    with pytest.raises(ValueError, match="count"):
        gaussian.max_of_normals_standard_moments(0)


@pytest.mark.parametrize("count, mean, var", [(9, 0.0, 1.0), (9, -0.5, 2.0), (27, 1.0, 0.3), (100, 0.0, 1.0)])
def test_max_of_normals_matches_sampling(rng, count, mean, var):
    got_mean, got_var = gaussian.max_of_normals_moments(mean, var, count)
    draws = rng.standard_normal((max(2_000_000 // count, 20_000), count))
    maxima = mean + math.sqrt(var) * draws.max(axis=1)
    assert_sampled(maxima, got_mean, got_var)


def test_max_of_normals_matches_order_statistic_quadrature():
    # Independent route: E[M^p] = int z^p d/dz Phi(z)^k, via scipy.quad.
    for count in (5, 9, 64):
        density = lambda z, k=count: k * stats.norm.pdf(z) * special.ndtr(z) ** (k - 1)  # noqa: E731
        first = integrate.quad(lambda z: z * density(z), -12, 12, epsabs=1e-13, limit=200)[0]
        second = integrate.quad(lambda z: z * z * density(z), -12, 12, epsabs=1e-13, limit=200)[0]
        got = gaussian.max_of_normals_standard_moments(count)
        assert got == pytest.approx((first, second), rel=1e-9)
