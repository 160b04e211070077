"""Arithmetic ``keras.ops`` nodes: add, subtract, multiply, divide, maximum, minimum.

Of two tensors (independent), or of a tensor and a constant: a number, or a
tensor-shaped constant such as sinusoidal position codes, which a traced custom
layer computes without its inputs. A constant's values are spread over the
output positions, so it acts as an operand independent of the tensor with the
mean and variance of its values. All closed forms.
"""

import math

import keras
import numpy as np
from keras.src.ops import numpy as knp

from autoinit_nas.maths import gaussian
from autoinit_nas.estimators.ops import ElementwiseOpEstimator, OpEstimator, _constants
from autoinit_nas.estimators.registry import register


def _constant_over_tensor(estimator, mean, var, constant):
    """c / x: c times 1/x, so E = mean(C) E[1/x] and E[y^2] = mean(C^2) E[1/x^2]."""
    if constant.size == 1:  # the node itself on the quadrature points, as for any f(x)
        return ElementwiseOpEstimator.estimate(estimator, [mean], [var])
    first, var_out, _ = gaussian.elementwise_moments_on_domain(np.reciprocal, mean, var, (0.0,))
    reciprocal_second = gaussian.second_moment(first, var_out)
    first = float(constant.mean()) * first
    second = float(np.mean(constant**2)) * reciprocal_second
    return first, gaussian.variance_from_moments(first, second)


class AffineConstantEstimator(OpEstimator):
    """x + c, x - c, c - x, x * c, x / c, c / x with a constant c (scalar or tensor-shaped).

    With C the constant's values spread over the output elements (each equally
    often), C acts as an operand independent of x with mean(C) and var(C):
    E[x + c] = m + mean(C), Var = v + var(C); E[x c] = m mean(C),
    E[(x c)^2] = E[x^2] mean(C^2); division by c is multiplication by 1/c.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        mean, var = means_in[0], vars_in[0]
        op = self.node.operation
        args = self.node.arguments.args
        constant = _constants(self.node)[0].ravel()
        tensor_first = isinstance(args[0], keras.KerasTensor)
        if isinstance(op, (knp.Add, knp.Subtract)):
            sign = -1.0 if isinstance(op, knp.Subtract) and tensor_first else 1.0
            flip = -1.0 if isinstance(op, knp.Subtract) and not tensor_first else 1.0
            c_mean, c_var = float(constant.mean()), float(constant.var())
            return flip * mean + sign * c_mean, var + c_var
        if isinstance(op, (knp.Divide, knp.TrueDivide)):
            if not tensor_first:
                return _constant_over_tensor(self, mean, var, constant)
            constant = 1.0 / constant
        first = mean * float(constant.mean())
        second = gaussian.second_moment(mean, var) * float(np.mean(constant**2))
        return first, gaussian.variance_from_moments(first, second)


class BinaryOpEstimator(OpEstimator):
    """Arithmetic of two independent tensors.

    add: (m1 + m2, v1 + v2); subtract: (m1 - m2, v1 + v2); multiply:
    E = m1 m2, E[y^2] = E[x1^2] E[x2^2]; maximum/minimum of independent
    Gaussians: Clark's formulas with theta = sqrt(v1 + v2), a = (m1 - m2)/theta:
    E[max] = m1 Phi(a) + m2 Phi(-a) + theta phi(a),
    E[max^2] = (v1 + m1^2) Phi(a) + (v2 + m2^2) Phi(-a) + (m1 + m2) theta phi(a).
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        (m1, m2), (v1, v2) = means_in[:2], vars_in[:2]
        op = self.node.operation
        if isinstance(op, knp.Add):
            return m1 + m2, v1 + v2
        if isinstance(op, knp.Subtract):
            return m1 - m2, v1 + v2
        if isinstance(op, knp.Multiply):
            first = m1 * m2
            second = gaussian.second_moment(m1, v1) * gaussian.second_moment(m2, v2)
            return first, gaussian.variance_from_moments(first, second)
        return maximum_moments(m1, v1, m2, v2, minimum=isinstance(op, knp.Minimum))


def constant_maximum_moments(mean, var, constant, minimum=False):
    """Moments of max(X, c) (or min) for X ~ N(mean, var), c spread over a constant's values.

    For one c, Clark's formulas with v2 = 0 are exact: a = (m - c) / s,
    E[max] = m Phi(a) + c Phi(-a) + s phi(a), E[max^2] = (v + m^2) Phi(a)
    + c^2 Phi(-a) + (m + c) s phi(a). A tensor-shaped constant (each value
    at its own positions, each equally often) is the mixture over its
    values: the average of those moments.
    """
    if minimum:
        first, variance = constant_maximum_moments(-mean, var, -np.asarray(constant), False)
        return -first, variance
    values, counts = np.unique(np.asarray(constant, dtype=float), return_counts=True)
    weights = counts / counts.sum()
    std = math.sqrt(max(var, 0.0))
    if std == 0.0:
        first = float(np.dot(weights, np.maximum(mean, values)))
        second = float(np.dot(weights, np.maximum(mean, values) ** 2))
        return first, gaussian.variance_from_moments(first, second)
    a = (mean - values) / std
    cdf, cdf_neg, pdf = gaussian.normal_cdf(a), gaussian.normal_cdf(-a), gaussian.normal_pdf(a)
    first = float(np.dot(weights, mean * cdf + values * cdf_neg + std * pdf))
    second = float(np.dot(weights, (var + mean * mean) * cdf + values**2 * cdf_neg + (mean + values) * std * pdf))
    return first, gaussian.variance_from_moments(first, second)


def maximum_moments(m1, v1, m2, v2, minimum=False):
    """Moments of max(X1, X2) (or min) for independent Gaussians (Clark, 1961)."""
    if minimum:
        first, var = maximum_moments(-m1, v1, -m2, v2)
        return -first, var
    theta = math.sqrt(max(v1 + v2, 0.0))
    if theta == 0.0:
        return max(m1, m2), 0.0
    a = (m1 - m2) / theta
    cdf, cdf_neg, pdf = float(gaussian.normal_cdf(a)), float(gaussian.normal_cdf(-a)), float(gaussian.normal_pdf(a))
    first = m1 * cdf + m2 * cdf_neg + theta * pdf
    second = (v1 + m1 * m1) * cdf + (v2 + m2 * m2) * cdf_neg + (m1 + m2) * theta * pdf
    return first, gaussian.variance_from_moments(first, second)


class ArithmeticOpEstimator(OpEstimator):
    """add / subtract / multiply / divide / maximum / minimum nodes.

    Two tensors: ``BinaryOpEstimator``. A tensor and a constant (a number or a
    tensor-shaped array): the affine closed form of
    ``AffineConstantEstimator``, or for maximum/minimum
    ``constant_maximum_moments``.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        if len(self.node.input_tensors) >= 2:
            return BinaryOpEstimator.estimate(self, means_in, vars_in)
        constants = _constants(self.node)
        if not constants:
            return ElementwiseOpEstimator.estimate(self, means_in, vars_in)
        op = self.node.operation
        if isinstance(op, (knp.Maximum, knp.Minimum)):
            constant = np.concatenate([c.ravel() for c in constants])
            return constant_maximum_moments(
                means_in[0], vars_in[0], constant, minimum=isinstance(op, knp.Minimum)
            )
        return AffineConstantEstimator.estimate(self, means_in, vars_in)


register(knp.Add, knp.Subtract, knp.Multiply, knp.TrueDivide, knp.Divide,
         knp.Maximum, knp.Minimum)(ArithmeticOpEstimator)
