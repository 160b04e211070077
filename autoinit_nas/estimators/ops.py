"""``keras.ops`` calls inside Functional graphs (``x + y``, ``ops.matmul``, ...).

Keras records every symbolic ``keras.ops`` call as a node whose operation is an
instance of an op class (``keras.src.ops.numpy.Add``, ``...nn.Softmax``). These
estimators are registered on those classes, so ops are recognised by class,
never by name. Constant operands (``2.0 * x``) are read from the node's
arguments (``self.node``).

Families:
* elementwise functions of one tensor (tanh, exp, relu, clip, power with a
  constant exponent, multiplication by a constant, ...): the node itself is
  evaluated on the quadrature nodes, so any constants and options it carries
  are honoured; piecewise-linear ones (relu, relu6, leaky_relu, clip, abs,
  hard_*) use the exact closed form;
* arithmetic of two tensors, or of a tensor and a constant (add, subtract,
  multiply, divide, maximum, minimum): closed forms, in ``ops_arithmetic``;
* matmul / einsum / dot / tensordot of two independent tensors: sums of K
  products, K the contracted size;
* reductions (sum, mean, max, min over axes) of independent elements;
* shape ops (reshape, transpose, expand_dims, slicing, ...): identity;
  concatenate / stack: mixtures; softmax-like ops: Monte Carlo.
"""

import hashlib
import math

import keras
import numpy as np
from keras.src.activations import activations as keras_activations
from keras.src.ops import math as kmath
from keras.src.ops import nn as knn
from keras.src.ops import numpy as knp
from scipy import special

from autoinit_nas.maths import gaussian
from autoinit_nas.estimators.activations import (
    NUMPY_ACTIVATIONS,
    _elu,
    _gelu,
    _hard_sigmoid,
    affine_pieces,
    evaluate,
    vector_function_moments,
)
from autoinit_nas.estimators.base import LayerOutputDistributionEstimator, PassThroughEstimator
from autoinit_nas.estimators.registry import register
from autoinit_nas.estimators.values import to_numpy


def _classes(module, names):
    return tuple(getattr(module, name) for name in names if hasattr(module, name))


# Elementwise ops of one tensor (plus constants). Values: kinks.
_PIECEWISE = {
    knn.Relu: (0.0,), knn.Relu6: (0.0, 6.0), knn.LeakyRelu: (0.0,),
    knn.HardSigmoid: (-3.0, 3.0), knn.HardTanh: (-1.0, 1.0),
    knn.HardShrink: None, knn.SoftShrink: None, knn.SparseSigmoid: (-1.0, 1.0),
    knp.Abs: (0.0,), knp.Absolute: (0.0,), knp.Fabs: (0.0,), knp.Negative: (),
}
_SMOOTH = _classes(knp, [
    "Tanh", "Exp", "Exp2", "Expm1", "Sin", "Cos", "Sinh", "Cosh", "Arctan", "Arcsinh",
    "Square", "Sqrt", "Cbrt", "Log", "Log1p", "Log2", "Log10", "Reciprocal", "Power",
    "Clip", "Sign", "Sinc",
]) + _classes(knn, [
    "Sigmoid", "Gelu", "Silu", "Elu", "Selu", "Celu", "Softplus", "Softsign", "LogSigmoid",
    "HardSilu", "Squareplus", "SparsePlus", "TanhShrink", "Threshold",
]) + _classes(kmath, ["Erf", "Erfc", "Rsqrt"])
# Lower edge of the domain of functions undefined below it (NaN there).
_DOMAIN_EDGES = {
    knp.Log: 0.0, knp.Log2: 0.0, knp.Log10: 0.0, knp.Sqrt: 0.0, knp.Power: 0.0, knp.Log1p: -1.0,
    kmath.Rsqrt: 0.0,
}
_KINKS = {
    knn.Elu: (0.0,), knn.Selu: (0.0,), knn.Celu: (0.0,), knn.HardSilu: (-3.0, 3.0),
    knn.SparsePlus: (-1.0, 1.0), knp.Sign: (0.0,), knp.Sqrt: (0.0,), knp.Log1p: (-1.0,),
}
_RELU_OP = getattr(keras_activations, "ReLU", None)


_SELU = NUMPY_ACTIVATIONS[keras.activations.selu]
# Elementwise op classes in float64 numpy (see activations.NUMPY_ACTIVATIONS):
# op -> f(x). Used when the node's only argument is the tensor (attributes
# such as negative_slope live on the op).
_NUMPY_OPS = {
    knp.Tanh: lambda op: np.tanh, knp.Exp: lambda op: np.exp, knp.Exp2: lambda op: np.exp2,
    knp.Expm1: lambda op: np.expm1, knp.Sin: lambda op: np.sin, knp.Cos: lambda op: np.cos,
    knp.Sinh: lambda op: np.sinh, knp.Cosh: lambda op: np.cosh, knp.Arctan: lambda op: np.arctan,
    knp.Arcsinh: lambda op: np.arcsinh, knp.Square: lambda op: np.square, knp.Sqrt: lambda op: np.sqrt,
    knp.Cbrt: lambda op: np.cbrt, knp.Log: lambda op: np.log, knp.Log1p: lambda op: np.log1p,
    knp.Log2: lambda op: np.log2, knp.Log10: lambda op: np.log10, knp.Reciprocal: lambda op: np.reciprocal,
    knp.Sign: lambda op: np.sign, knp.Sinc: lambda op: np.sinc, knp.Abs: lambda op: np.abs,
    knp.Absolute: lambda op: np.abs, knp.Fabs: lambda op: np.abs, knp.Negative: lambda op: np.negative,
    kmath.Erf: lambda op: special.erf, kmath.Erfc: lambda op: special.erfc,
    kmath.Rsqrt: lambda op: lambda x: 1.0 / np.sqrt(x),
    knn.Sigmoid: lambda op: special.expit, knn.Silu: lambda op: lambda x: x * special.expit(x),
    knn.Softplus: lambda op: lambda x: np.logaddexp(0.0, x),
    knn.Softsign: lambda op: lambda x: x / (1.0 + np.abs(x)),
    knn.LogSigmoid: lambda op: lambda x: -np.logaddexp(0.0, -x),
    knn.TanhShrink: lambda op: lambda x: x - np.tanh(x),
    knn.Gelu: lambda op: lambda x: _gelu(x, op.approximate),
    knn.Elu: lambda op: lambda x: _elu(x, float(op.alpha)),
    knn.Selu: lambda op: _SELU,
    knn.Celu: lambda op: lambda x: np.maximum(x, 0.0) + float(op.alpha) * np.expm1(
        np.minimum(x, 0.0) / float(op.alpha)),
    knn.Squareplus: lambda op: lambda x: 0.5 * (x + np.sqrt(x * x + float(op.b))),
    knn.SparsePlus: lambda op: NUMPY_ACTIVATIONS[keras.activations.sparse_plus],
    knn.HardSilu: lambda op: NUMPY_ACTIVATIONS[keras.activations.hard_silu],
    knn.Relu: lambda op: NUMPY_ACTIVATIONS[keras.activations.relu],
    knn.Relu6: lambda op: NUMPY_ACTIVATIONS[keras.activations.relu6],
    knn.LeakyRelu: lambda op: lambda x: np.where(x >= 0.0, x, float(op.negative_slope) * x),
    knn.HardSigmoid: lambda op: _hard_sigmoid,
    knn.HardTanh: lambda op: NUMPY_ACTIVATIONS[keras.activations.hard_tanh],
    knn.HardShrink: lambda op: lambda x: np.where(np.abs(x) > float(op.threshold), x, 0.0),
    knn.SoftShrink: lambda op: lambda x: np.where(
        x > float(op.threshold), x - float(op.threshold),
        np.where(x < -float(op.threshold), x + float(op.threshold), 0.0)),
    knn.SparseSigmoid: lambda op: NUMPY_ACTIVATIONS[keras.activations.sparse_sigmoid],
}


def numpy_op_function(node):
    """The node's elementwise op as a float64 numpy function, or None.

    Only for ops in ``_NUMPY_OPS`` called on the tensor alone (no constants).
    """
    arguments = node.arguments
    make = _NUMPY_OPS.get(type(node.operation))
    if make is None or len(arguments.args) != 1 or arguments.kwargs:
        return None
    function = make(node.operation)

    def reference(values):
        return function(np.asarray(values, dtype=float))

    reference.numpy_float64 = True  # evaluate() calls it directly
    return reference


def _single_tensor_function(node):
    """f(t): the node's op applied with t in place of its one symbolic input."""
    reference = numpy_op_function(node)
    if reference is not None:
        return reference
    tensor = node.input_tensors[0]

    def function(values):
        args, kwargs = node.arguments.fill_in({id(tensor): values})
        return node.operation(*args, **kwargs)

    return function


def _constant_array(value):
    """``value`` as a float64 array when it is a constant operand, else None.

    Numbers, numpy arrays, and (inside traced custom layers) backend tensors
    and variables computed without the inputs, such as sinusoidal codes.
    """
    if isinstance(value, (bool, keras.KerasTensor)):
        return None
    if isinstance(value, (int, float, np.ndarray, np.number)):
        return np.asarray(value, dtype=float)
    if isinstance(value, keras.Variable):
        value = value.value  # converting the variable itself warns
    if keras.ops.is_tensor(value):
        return to_numpy(value, dtype=float)
    return None


def _constants(node):
    """Numeric (non-symbolic) positional arguments of the node, as float64 arrays."""
    found = (_constant_array(value) for value in node.arguments.args)
    return [array for array in found if array is not None]


def _constant_key(array):
    # Small constants by value (readable); tensor-shaped ones by a digest.
    if array.size <= 16:
        return repr(array.tolist())
    return f"{array.shape}:{hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()}"


class OpEstimator(LayerOutputDistributionEstimator):
    """Base: gives estimators of op nodes a readable signature for memoization."""

    def signature(self):
        op = self.node.operation
        attributes = tuple(
            sorted((k, repr(v)) for k, v in vars(op).items() if not k.startswith("_") and k != "name")
        )
        constants = tuple(_constant_key(c) for c in _constants(self.node))
        return (type(op).__name__, attributes, constants)


class ElementwiseOpEstimator(OpEstimator):
    """An elementwise function f of one Gaussian tensor (constants allowed).

    E[f(X)] and E[f(X)^2] by split Gauss-Legendre quadrature, evaluating the
    node itself on the quadrature points (so ``x ** 2``, ``clip(x, a, b)``,
    ``ops.relu`` all use exactly Keras's function). Piecewise-linear ops are
    integrated in closed form from their affine pieces.
    Functions with a restricted domain (log, sqrt) whose Gaussian input
    reaches outside it: the moments are conditioned on the domain (a
    non-negative signal such as abs(x) is not Gaussian), and the dropped
    probability is reported once per call (cause ``outside_domain``).
    An input wholly outside the domain (every quadrature node undefined:
    the edge more than 12 standard deviations away, or a constant input
    beyond it) has the domain's edge as its limit: see ``at_domain_edge``.
    """

    method = "exact or quadrature"

    def estimate(self, means_in, vars_in):
        mean, var = means_in[0], vars_in[0]
        function = _single_tensor_function(self.node)
        op = self.node.operation
        kinks = _PIECEWISE.get(type(op))
        if type(op) in _PIECEWISE:
            if kinks is None:  # shrink ops: kinks at +-threshold
                threshold = float(getattr(op, "threshold", 0.5))
                kinks = (-threshold, threshold)
            pieces = self.memoized("pieces", self.signature(), (), lambda: affine_pieces(function, kinks))
            return gaussian.piecewise_linear_moments(mean, var, pieces)
        if _RELU_OP is not None and isinstance(op, _RELU_OP):
            kinks = {0.0, float(op.threshold)}
            if op.max_value is not None:
                kinks.add(float(op.max_value))
            pieces = self.memoized("pieces", self.signature(), (), lambda: affine_pieces(function, sorted(kinks)))
            return gaussian.piecewise_linear_moments(mean, var, pieces)
        kinks = list(_KINKS.get(type(op), (0.0,)))
        if isinstance(op, knp.Clip):
            kinks += [float(op.x_min), float(op.x_max)]
        first, var_out, undefined = self.memoized(
            "quadrature", self.signature(), (mean, var),
            lambda: gaussian.elementwise_moments_on_domain(
                lambda x: evaluate(function, x), mean, var, kinks
            ),
        )
        if undefined >= 1.0 or math.isnan(first):
            first, var_out, undefined = (*self.at_domain_edge(function, op), 1.0)
        if undefined > 0.0:
            self.diagnostics.record(
                "outside_domain", self.layer.name,
                f"P(undefined) = {undefined:.2g} for input N({mean:.3g}, {var:.3g})",
            )
        return first, var_out

    @staticmethod
    def at_domain_edge(function, op):
        """(f(edge), 0): the moments of an input wholly outside f's domain [edge, inf).

        The real layer outputs NaN for every element of such an input, so
        no moments are right; this is the named fallback (cause
        ``outside_domain``, P(undefined) = 1). It is the limit of the rule
        above (moments conditioned on the domain): with the edge a =
        (edge - m) / sd > 12 standard deviations above the mean, N(m, v)
        conditioned on X >= edge is, to O(1 / a^2), edge + Exp(scale
        sd / a), which collapses onto the edge as a grows (a constant input,
        v = 0, is the limit itself); so f(X) -> f(edge), variance 0.
        f(edge) may be infinite (log(0), rsqrt(0)): the overflow clamp of
        ``checked_moments`` then applies.
        """
        edge = _DOMAIN_EDGES.get(type(op), 0.0)
        value = float(np.asarray(evaluate(function, np.asarray([edge], dtype=float))).ravel()[0])
        return value, 0.0


register(*(tuple(_PIECEWISE) + _SMOOTH))(ElementwiseOpEstimator)
if _RELU_OP is not None:
    register(_RELU_OP)(ElementwiseOpEstimator)


@register(knp.Matmul, knp.Einsum, knp.Dot, knp.Tensordot, knp.Inner, knp.Outer)
class ContractionOpEstimator(OpEstimator):
    """Products summed over K contracted indices, inputs independent.

    y = sum_k a_k b_k: E[y] = K m_a m_b, Var = K (E[a^2] E[b^2] - m_a^2 m_b^2)
    (independent terms). K is the product of the contracted dimensions:
    the last axis of ``a`` for matmul/dot, the labels missing from the output
    for einsum, the given axes for tensordot, 1 for outer. Unknown sizes: 1.
    """

    method = "exact"

    def contracted_size(self):
        op = self.node.operation
        shapes = self.input_shapes
        if isinstance(op, knp.Outer):
            return 1
        if isinstance(op, knp.Einsum):
            inputs, output = op.subscripts.replace(" ", "").split("->")
            sizes = {}
            for labels, shape in zip(inputs.split(","), shapes):
                for label, dim in zip(labels.replace("...", ""), shape[-len(labels.replace("...", "")):]):
                    sizes[label] = dim
            contracted = [sizes.get(label) for label in set(inputs.replace(",", "")) - set(output) if label != "."]
            return math.prod(dim or 1 for dim in contracted)
        if isinstance(op, knp.Tensordot):
            axes = op.axes
            if isinstance(axes, int):
                return math.prod(dim or 1 for dim in shapes[0][len(shapes[0]) - axes:])
            return math.prod(shapes[0][a] or 1 for a in np.atleast_1d(axes[0]))
        return shapes[0][-1] or 1

    def estimate(self, means_in, vars_in):
        if len(means_in) < 2:
            return self.estimate_with_constant(means_in[0], vars_in[0])
        (m1, m2), (v1, v2) = means_in[:2], vars_in[:2]
        count = self.contracted_size()
        first = count * m1 * m2
        second_term = gaussian.second_moment(m1, v1) * gaussian.second_moment(m2, v2)
        return first, count * max(second_term - (m1 * m2) ** 2, 0.0)

    def estimate_with_constant(self, mean, var):
        """One operand is a constant array C (a fixed, not drawn, weight).

        Its entries are treated as exchangeable with mean mu = mean(C) and
        second moment s = mean(C^2); for y = sum over K of c_k x_k:
        E[y] = K mu m and Var(y) = K (s E[x^2] - mu^2 m^2). K is the size of
        the contracted axis on the tensor's side.
        """
        constant = np.concatenate([c.ravel() for c in _constants(self.node)])
        args = self.node.arguments.args
        shape = self.input_shapes[0]
        tensor_first = isinstance(args[0], keras.KerasTensor)
        op = self.node.operation
        if isinstance(op, knp.Outer):
            count = 1
        elif isinstance(op, (knp.Einsum, knp.Tensordot)):
            output = self.output_shapes[0] if self.output_shapes else shape
            count = max(
                math.prod(d or 1 for d in shape[1:]) // max(math.prod(d or 1 for d in output[1:]), 1), 1
            )
        else:
            count = (shape[-1] if tensor_first else shape[-2 if len(shape) > 2 else -1]) or 1
        mu, second = float(constant.mean()), float(np.mean(constant**2))
        first = count * mu * mean
        variance = count * (second * gaussian.second_moment(mean, var) - (mu * mean) ** 2)
        return first, max(variance, 0.0)


register(
    knp.Reshape, knp.Transpose, knp.ExpandDims, knp.Squeeze, knp.Swapaxes, knp.Moveaxis,
    knp.GetItem, knp.Ravel, knp.Flip, knp.Roll, knp.Tile, knp.Repeat, knp.BroadcastTo,
    knp.Copy, knp.Take, knp.TakeAlongAxis, knp.Fliplr, knp.Flipud, knp.Rot90,
)(PassThroughEstimator)


@register(knp.Concatenate, knp.Stack, knp.Hstack, knp.Vstack, knp.Dstack)
class ConcatenateOpEstimator(OpEstimator):
    """A mixture of the inputs, weighted by their number of elements.

    E = sum w_i m_i, E[y^2] = sum w_i (v_i + m_i^2), w_i = size_i / total.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        sizes = [math.prod(dim or 1 for dim in shape[1:]) for shape in self.input_shapes]
        total = float(sum(sizes)) or 1.0
        first = sum(s / total * m for s, m in zip(sizes, means_in))
        second = sum(s / total * gaussian.second_moment(m, v) for s, m, v in zip(sizes, means_in, vars_in))
        return first, gaussian.variance_from_moments(first, second)


def _reduced_count(estimator):
    op = estimator.node.operation
    shape = estimator.input_shapes[0]
    axis = getattr(op, "axis", None)
    if axis is None:
        return math.prod(dim or 1 for dim in shape[1:])
    axes = np.atleast_1d(axis)
    return math.prod(shape[int(a)] or 1 for a in axes)


@register(knp.Sum, knp.Mean, knp.Average, knp.Max, knp.Min, knp.Amax, knp.Amin)
class ReductionOpEstimator(OpEstimator):
    """Reductions over n independent elements.

    sum: (n m, n v); mean: (m, v / n); max/min: order statistics of n
    i.i.d. Gaussians (``max_of_normals_moments``).
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        mean, var = means_in[0], vars_in[0]
        count = _reduced_count(self)
        op = self.node.operation
        if isinstance(op, knp.Sum):
            return count * mean, count * var
        if isinstance(op, (knp.Mean, knp.Average)):
            return mean, var / count
        if isinstance(op, (knp.Min, knp.Amin)):
            first, var_out = gaussian.max_of_normals_moments(-mean, var, count)
            return -first, var_out
        return gaussian.max_of_normals_moments(mean, var, count)


@register(knn.Softmax, knn.LogSoftmax, knn.Sparsemax)
class SoftmaxOpEstimator(OpEstimator):
    """Softmax-like ops along an axis: Monte Carlo, as the Softmax layer."""

    method = "sampled"

    def estimate(self, means_in, vars_in):
        op = self.node.operation
        axis = getattr(op, "axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) else axis
        size = self.input_shapes[0][axis] or 1
        function = {knn.Softmax: keras.activations.softmax, knn.LogSoftmax: keras.activations.log_softmax,
                    knn.Sparsemax: keras.activations.sparsemax}[type(op)]
        samples = self.estimator_config["monte_carlo_samples"]
        seed = self.sampling_seed()
        return self.memoized(
            "vector", (type(op).__name__, size), (means_in[0], vars_in[0]),
            lambda: vector_function_moments(function, means_in[0], vars_in[0], size, samples, seed),
        )
