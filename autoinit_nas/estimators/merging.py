"""Merge layers: Add, Subtract, Average, Multiply, Concatenate, WeightedSum."""

import keras

from autoinit_nas.maths import gaussian
from autoinit_nas.estimators.base import LayerOutputDistributionEstimator
from autoinit_nas.estimators.registry import register
from autoinit_nas.estimators.layers import WeightedSum


@register(keras.layers.Add)
class AddEstimator(LayerOutputDistributionEstimator):
    """Sum of independent inputs.

    E[sum X_i] = sum E[X_i]; for independent inputs Var(sum X_i) = sum Var(X_i).
    Approximation: branches of a residual block share their input, so they
    are correlated; the rule is exact only when the branches are independent.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        return sum(means_in), sum(vars_in)


@register(keras.layers.Subtract)
class SubtractEstimator(LayerOutputDistributionEstimator):
    """X_0 - X_1 for independent inputs: E = m_0 - m_1, Var = v_0 + v_1."""

    method = "exact"

    def estimate(self, means_in, vars_in):
        return means_in[0] - means_in[1], vars_in[0] + vars_in[1]


@register(keras.layers.Average)
class AverageEstimator(LayerOutputDistributionEstimator):
    """(1/n) sum X_i, independent: E = mean of m_i, Var = sum v_i / n^2."""

    method = "exact"

    def estimate(self, means_in, vars_in):
        count = len(means_in)
        return sum(means_in) / count, sum(vars_in) / count**2


@register(keras.layers.Multiply)
class MultiplyEstimator(LayerOutputDistributionEstimator):
    """Product of independent inputs.

    E[prod X_i] = prod m_i and E[(prod X_i)^2] = prod E[X_i^2], so
    Var = prod (v_i + m_i^2) - prod m_i^2.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        first = 1.0
        second = 1.0
        for mean, var in zip(means_in, vars_in):
            first *= mean
            second *= gaussian.second_moment(mean, var)
        return first, gaussian.variance_from_moments(first, second)


@register(keras.layers.Concatenate)
class ConcatenateEstimator(LayerOutputDistributionEstimator):
    """Concatenation: a mixture of the inputs weighted by their share of the axis.

    With w_i = size_i / sum_j size_j along the concatenation axis, an element
    drawn from the output is from input i with probability w_i, so
    E = sum w_i m_i and E[y^2] = sum w_i (v_i + m_i^2); Var = E[y^2] - E^2.
    Unknown sizes count equally.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        axis = self.layer.axis
        sizes = []
        for shape in self.input_shapes or [None] * len(means_in):
            size = shape[axis] if shape is not None else None
            sizes.append(size if size else 1)
        total = float(sum(sizes))
        first = sum(size / total * mean for size, mean in zip(sizes, means_in))
        second = sum(
            size / total * gaussian.second_moment(mean, var)
            for size, mean, var in zip(sizes, means_in, vars_in)
        )
        return first, gaussian.variance_from_moments(first, second)


@register(WeightedSum)
class WeightedSumEstimator(LayerOutputDistributionEstimator):
    """sum c_i X_i with fixed coefficients, independent inputs.

    E = sum c_i m_i, Var = sum c_i^2 v_i.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        coefficients = self.layer.coefficients
        first = sum(c * m for c, m in zip(coefficients, means_in))
        var = sum(c * c * v for c, v in zip(coefficients, vars_in))
        return first, var


@register(keras.layers.Maximum, keras.layers.Minimum)
class MaximumEstimator(LayerOutputDistributionEstimator):
    """Elementwise max (or min) of independent Gaussian inputs (Clark, 1961).

    Two inputs: exact, with theta^2 = v_1 + v_2 and a = (m_1 - m_2) / theta,
    E[max] = m_1 Phi(a) + m_2 Phi(-a) + theta phi(a) and
    E[max^2] = (v_1 + m_1^2) Phi(a) + (v_2 + m_2^2) Phi(-a) + (m_1 + m_2) theta phi(a).
    More inputs fold pairwise, treating each partial maximum as Gaussian
    (Clark's approximation). min(X, Y) = -max(-X, -Y).
    """

    method = "exact (2 inputs)"

    def estimate(self, means_in, vars_in):
        from autoinit_nas.estimators.ops_arithmetic import maximum_moments

        minimum = isinstance(self.layer, keras.layers.Minimum)
        mean, var = means_in[0], vars_in[0]
        for other_mean, other_var in zip(means_in[1:], vars_in[1:]):
            mean, var = maximum_moments(mean, var, other_mean, other_var, minimum=minimum)
        return mean, var


@register(keras.layers.Dot)
class DotEstimator(LayerOutputDistributionEstimator):
    """Dot products of two independent inputs over K summed elements.

    y = sum_k a_k b_k: E = K m_a m_b, Var = K (E[a^2] E[b^2] - m_a^2 m_b^2).
    With ``normalize=True`` both vectors are first scaled to unit length, so
    each element has second moment about 1/K and mean about m / sqrt(K E[x^2])
    (large-K approximation); the same rule then applies.
    """

    method = "exact (normalize: large-K approximation)"

    def estimate(self, means_in, vars_in):
        axes = self.layer.axes
        axis = axes[0] if isinstance(axes, (list, tuple)) else axes
        count = (self.input_shapes[0][axis] if self.input_shapes else None) or 1
        (m_a, m_b), (v_a, v_b) = means_in[:2], vars_in[:2]
        if self.layer.normalize:
            scaled = []
            for mean, var in ((m_a, v_a), (m_b, v_b)):
                second = gaussian.second_moment(mean, var)
                root = (count * second) ** 0.5 if second > 0 else 1.0
                scaled.append((mean / root, gaussian.variance_from_moments(mean / root, 1.0 / count)))
            (m_a, v_a), (m_b, v_b) = scaled
        first = count * m_a * m_b
        product = gaussian.second_moment(m_a, v_a) * gaussian.second_moment(m_b, v_b)
        return first, count * max(product - (m_a * m_b) ** 2, 0.0)
