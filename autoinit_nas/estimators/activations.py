"""Activation functions and activation layers.

``activation_moments(function, mean, var, ...)`` is the one entry point: every
layer with an ``activation`` argument and every activation layer goes through
it. It picks, per function:

* closed form (piecewise-linear functions: relu, relu6, leaky_relu,
  hard_sigmoid, hard_tanh, hard_shrink, soft_shrink, sparse_sigmoid, linear):
  the function is read off Keras itself at two points per linear piece and
  integrated exactly with truncated-normal partial moments;
* quadrature (every other elementwise function, Keras's or a user's
  callable): composite Gauss-Legendre over the Gaussian, cut at the
  function's kinks (see ``autoinit_nas.maths.gaussian.elementwise_moments``);
* Monte Carlo (functions that mix a whole axis: softmax, log_softmax,
  sparsemax): seeded, ``monte_carlo_samples`` scalar draws, memoized;
* glu halves its last axis, a * sigmoid(b), with a and b independent:
  E = E[a] E[sigmoid(b)], E[y^2] = E[a^2] E[sigmoid(b)^2].

Keras's own activations are evaluated by float64 numpy twins
(``NUMPY_ACTIVATIONS``, each checked against Keras on every backend in
tests/core/test_reliability.py), so estimates, and hence seeded weights, are
the same on TensorFlow, JAX and PyTorch; any other function is evaluated
through Keras, so the maths always matches what the layer computes.
"""

import contextlib
import math

import keras
import numpy as np

from scipy import special

from autoinit_nas.maths import gaussian
from autoinit_nas.estimators.base import LayerOutputDistributionEstimator
from autoinit_nas.estimators.registry import register
from autoinit_nas.estimators.values import to_numpy

_A = keras.activations

# Kinks of piecewise-linear activations: between them the function is affine.
PIECEWISE_LINEAR_KINKS = {
    _A.linear: (),
    _A.relu: (0.0,),
    _A.relu6: (0.0, 6.0),
    _A.leaky_relu: (0.0,),
    _A.hard_sigmoid: (-3.0, 3.0),
    _A.hard_tanh: (-1.0, 1.0),
    _A.hard_shrink: (-0.5, 0.5),
    _A.soft_shrink: (-0.5, 0.5),
    _A.sparse_sigmoid: (-1.0, 1.0),
}

# Points where other elementwise activations (or a derivative) jump; the
# quadrature cuts its panels there.
QUADRATURE_KINKS = {
    _A.elu: (0.0,),
    _A.selu: (0.0,),
    _A.celu: (0.0,),
    _A.hard_silu: (-3.0, 3.0),
    _A.hard_swish: (-3.0, 3.0),
    _A.sparse_plus: (-1.0, 1.0),
}

# Functions that normalize across the last axis; no cheap exact form.
VECTOR_FUNCTIONS = (_A.softmax, _A.log_softmax, _A.sparsemax)

_MONTE_CARLO_CHUNK = 1 << 20


def _numpy_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=-1, keepdims=True)


def _numpy_log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# Same functions as Keras's, in numpy: no backend round trip per chunk.
_NUMPY_VECTOR_FUNCTIONS = {_A.softmax: _numpy_softmax, _A.log_softmax: _numpy_log_softmax}


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _hard_sigmoid(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


def _elu(x, alpha=1.0):
    return np.where(x >= 0.0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _gelu(x, approximate=False):
    if approximate:
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + special.erf(x / math.sqrt(2.0)))


# Keras's elementwise activations in float64 numpy, with Keras's default
# arguments. The quadrature evaluates these instead of the backend: the same
# numbers on TensorFlow, JAX and PyTorch (their float32 kernels differ in the
# last bits, and JAX computes float64 only with x64 enabled), so a seed gives
# the same weights on each backend. tests/core/test_reliability.py checks each
# against Keras on every backend.
NUMPY_ACTIVATIONS = {
    _A.linear: lambda x: x,
    _A.relu: lambda x: np.maximum(x, 0.0),
    _A.relu6: lambda x: np.clip(x, 0.0, 6.0),
    _A.leaky_relu: lambda x: np.where(x >= 0.0, x, 0.2 * x),
    _A.hard_sigmoid: _hard_sigmoid,
    _A.hard_tanh: lambda x: np.clip(x, -1.0, 1.0),
    _A.hard_shrink: lambda x: np.where(np.abs(x) > 0.5, x, 0.0),
    _A.soft_shrink: lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0.0)),
    _A.sparse_sigmoid: lambda x: np.clip(0.5 * (x + 1.0), 0.0, 1.0),
    _A.tanh: np.tanh,
    _A.sigmoid: special.expit,
    _A.exponential: np.exp,
    _A.softplus: lambda x: np.logaddexp(0.0, x),
    _A.softsign: lambda x: x / (1.0 + np.abs(x)),
    _A.silu: lambda x: x * special.expit(x),
    _A.gelu: _gelu,
    _A.elu: _elu,
    _A.selu: lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA),
    _A.celu: lambda x: np.maximum(x, 0.0) + np.expm1(np.minimum(x, 0.0)),
    _A.mish: lambda x: x * np.tanh(np.logaddexp(0.0, x)),
    _A.log_sigmoid: lambda x: -np.logaddexp(0.0, -x),
    _A.hard_silu: lambda x: x * _hard_sigmoid(x),
    _A.tanh_shrink: lambda x: x - np.tanh(x),
    _A.squareplus: lambda x: 0.5 * (x + np.sqrt(x * x + 4.0)),
    _A.sparse_plus: lambda x: np.where(x <= -1.0, 0.0, np.where(x < 1.0, 0.25 * (x + 1.0) ** 2, x)),
}


def _float64_scope():
    """A context in which the backend computes in float64 (JAX needs x64 switched on)."""
    if keras.backend.backend() == "jax":
        import jax

        enable = getattr(jax, "enable_x64", None)
        if enable is not None:
            return enable(True)
    return contextlib.nullcontext()


def evaluate(function, values):
    """Apply a Keras (or any backend-tensor) function to a numpy array, in float64.

    Keras's own activations use their numpy twins (``NUMPY_ACTIVATIONS``),
    and so does any function marked ``numpy_float64 = True``: the same
    values on every backend. Other functions (a user's callable,
    a layer) go through the backend in float64 where it computes float64
    (TensorFlow, PyTorch; JAX inside ``jax.enable_x64``), else in float32.
    """
    values = np.asarray(values, dtype="float64")
    reference = NUMPY_ACTIVATIONS.get(function)
    if reference is None and getattr(function, "numpy_float64", False):
        reference = function
    if reference is not None:
        with np.errstate(all="ignore"):  # overflow to inf, NaN outside a domain: both handled
            return np.asarray(reference(values), dtype=float)
    with _float64_scope():
        try:
            result = function(keras.ops.convert_to_tensor(values, dtype="float64"))
        except Exception:  # any backend error on float64 (unsupported kernel, dtype checks)
            result = function(keras.ops.convert_to_tensor(values.astype("float32")))
        return to_numpy(result, dtype=float)


def affine_pieces(function, kinks):
    """(start, slope, intercept) pieces of a piecewise-linear ``function``.

    The function is evaluated at two interior points of each interval between
    consecutive kinks and the line through them is taken as the piece.
    """
    kinks = sorted(kinks)
    edges = [-math.inf] + kinks + [math.inf]
    probes = []
    for low, high in zip(edges[:-1], edges[1:]):
        if math.isinf(low) and math.isinf(high):
            probes.append((-1.0, 1.0))
        elif math.isinf(low):
            probes.append((high - 2.0, high - 1.0))
        elif math.isinf(high):
            probes.append((low + 1.0, low + 2.0))
        else:
            width = high - low
            probes.append((low + width / 3.0, low + 2.0 * width / 3.0))
    values = evaluate(function, np.asarray(probes).ravel()).reshape(-1, 2)
    pieces = []
    for (x0, x1), (y0, y1), start in zip(probes, values, edges[:-1]):
        slope = (y1 - y0) / (x1 - x0)
        pieces.append((start, float(slope), float(y0 - slope * x0)))
    return pieces


def _function_key(function):
    return getattr(function, "__module__", "") + "." + getattr(
        function, "__qualname__", repr(function)
    )


def vector_function_moments(function, mean, var, axis_size, samples, seed):
    """Monte Carlo moments of a function that mixes an axis of ``axis_size``.

    Draws ``samples`` scalars (rounded down to whole vectors, at least 64) of
    i.i.d. N(mean, var), applies the function along the last axis, and returns
    the mean and variance over all output elements.
    """
    axis_size = max(int(axis_size), 1)
    vectors = max(int(samples) // axis_size, 64)
    rng = np.random.default_rng(seed)
    std = math.sqrt(max(var, 0.0))
    total = 0.0
    total_sq = 0.0
    count = 0
    per_chunk = max(_MONTE_CARLO_CHUNK // axis_size, 1)
    numpy_version = _NUMPY_VECTOR_FUNCTIONS.get(function)
    while count < vectors:
        rows = min(per_chunk, vectors - count)
        draws = mean + std * rng.standard_normal((rows, axis_size), dtype=np.float32)
        out = numpy_version(draws) if numpy_version else evaluate(function, draws)
        total += float(out.sum())
        total_sq += float(np.square(out).sum())
        count += rows
    n = count * axis_size
    first = total / n
    return first, gaussian.variance_from_moments(first, total_sq / n)


def activation_moments(function, mean, var, estimator=None, axis_size=None):
    """Mean and variance of ``function(X)`` for X ~ N(mean, var).

    Args:
        function: a Keras activation (or any elementwise callable on backend
            tensors).
        mean, var: moments of the input elements.
        estimator: the calling estimator, for its cache and Monte Carlo
            settings (optional).
        axis_size: length of the last axis, needed by softmax-like functions.

    Example:
        >>> m, v = activation_moments(keras.activations.relu, 0.0, 1.0)
        >>> round(v, 4)
        0.3408
    """
    function = _A.get(function) if isinstance(function, str) else function
    if function is None or function is _A.linear:
        return mean, var
    base = function
    if function in PIECEWISE_LINEAR_KINKS:
        pieces = _memo(estimator, "pieces", _function_key(function), (),
                       lambda: affine_pieces(function, PIECEWISE_LINEAR_KINKS[base]))
        return gaussian.piecewise_linear_moments(mean, var, pieces)
    if function in VECTOR_FUNCTIONS:
        samples = estimator.estimator_config["monte_carlo_samples"] if estimator else int(1e6)
        seed = estimator.sampling_seed() if estimator else 0
        size = axis_size or 1
        return _memo(
            estimator, "vector", (_function_key(function), size), (mean, var),
            lambda: vector_function_moments(function, mean, var, size, samples, seed),
        )
    if function is _A.glu:
        gate_mean, gate_var = activation_moments(_A.sigmoid, mean, var, estimator)
        first = mean * gate_mean
        second = gaussian.second_moment(mean, var) * gaussian.second_moment(gate_mean, gate_var)
        return first, gaussian.variance_from_moments(first, second)
    kinks = QUADRATURE_KINKS.get(function, (0.0,))
    return _memo(
        estimator, "quadrature", _function_key(function), (mean, var),
        lambda: gaussian.elementwise_moments(lambda x: evaluate(function, x), mean, var, kinks),
    )


def _memo(estimator, name, signature, moments, compute):
    if estimator is None:
        return compute()
    return estimator.memoized(name, signature, moments, compute)


def last_axis_size(shapes):
    """Static length of the last axis of the first shape, or None."""
    if not shapes or not shapes[0]:
        return None
    return shapes[0][-1]


def apply_layer_activation(estimator, mean, var):
    """Moments after ``estimator.layer.activation`` (identity if it has none)."""
    function = getattr(estimator.layer, "activation", None)
    return activation_moments(
        function, mean, var, estimator, axis_size=last_axis_size(estimator.output_shapes)
    )


@register(keras.layers.Activation)
class ActivationEstimator(LayerOutputDistributionEstimator):
    """``Activation(f)``: E[f(X)] and Var f(X) for X ~ N(mean_in, var_in).

    Assumes the input elements are Gaussian with the given moments (the scalar
    propagation assumption); see ``activation_moments`` for how each function
    is integrated.
    """

    method = "exact or quadrature (softmax family: sampled)"

    def estimate(self, means_in, vars_in):
        return apply_layer_activation(self, means_in[0], vars_in[0])


def _piecewise_layer_moments(estimator, function, kinks, mean, var, signature):
    pieces = estimator.memoized(
        "pieces", signature, (), lambda: affine_pieces(function, kinks)
    )
    return gaussian.piecewise_linear_moments(mean, var, pieces)


@register(keras.layers.ReLU)
class ReLUEstimator(LayerOutputDistributionEstimator):
    """``ReLU(max_value, negative_slope, threshold)``: exact, piecewise linear.

    The layer's function is affine between its kinks {threshold, 0, max_value},
    so E[f(X)] and E[f(X)^2] are sums of truncated-normal partial moments
    (``piecewise_linear_moments``). No approximation beyond Gaussian input.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        layer = self.layer
        kinks = {0.0, float(layer.threshold)}
        if layer.max_value is not None:
            kinks.add(float(layer.max_value))
        signature = (float(layer.negative_slope), layer.max_value, float(layer.threshold))
        return _piecewise_layer_moments(self, layer, sorted(kinks), means_in[0], vars_in[0], signature)


@register(keras.layers.LeakyReLU)
class LeakyReLUEstimator(LayerOutputDistributionEstimator):
    """``LeakyReLU(negative_slope)``: f(x) = x for x >= 0, a x otherwise; exact.

    Two affine pieces split at 0; moments from truncated-normal partial moments.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        slope = float(self.layer.negative_slope)
        pieces = [(-math.inf, slope, 0.0), (0.0, 1.0, 0.0)]
        return gaussian.piecewise_linear_moments(means_in[0], vars_in[0], pieces)


@register(keras.layers.PReLU)
class PReLUEstimator(LayerOutputDistributionEstimator):
    """``PReLU``: leaky ReLU with a learned slope per element; exact.

    With slopes a_c (the layer's current ``alpha`` values, equally frequent),
    E[f] = mean_c E[f_{a_c}(X)] and E[f^2] = mean_c E[f_{a_c}(X)^2], each term
    a two-piece closed form. Distinct slopes are integrated once each.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        alpha = to_numpy(self.layer.alpha, dtype=float).ravel()
        slopes, counts = np.unique(alpha, return_counts=True)
        first = 0.0
        second = 0.0
        for slope, count in zip(slopes, counts):
            pieces = [(-math.inf, float(slope), 0.0), (0.0, 1.0, 0.0)]
            m, v = gaussian.piecewise_linear_moments(means_in[0], vars_in[0], pieces)
            weight = count / alpha.size
            first += weight * m
            second += weight * gaussian.second_moment(m, v)
        return first, gaussian.variance_from_moments(first, second)


@register(keras.layers.ELU)
class ELUEstimator(LayerOutputDistributionEstimator):
    """``ELU(alpha)``: f(x) = x for x > 0, alpha (e^x - 1) otherwise.

    Not piecewise linear: quadrature cut at the kink x = 0, where the
    derivative jumps unless alpha = 1.
    """

    method = "quadrature"

    def estimate(self, means_in, vars_in):
        alpha = float(self.layer.alpha)
        function = lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))  # noqa: E731
        return self.memoized(
            "elu", alpha, (means_in[0], vars_in[0]),
            lambda: gaussian.elementwise_moments(function, means_in[0], vars_in[0], (0.0,)),
        )


@register(keras.layers.Softmax)
class SoftmaxEstimator(LayerOutputDistributionEstimator):
    """``Softmax(axis)``: Monte Carlo over vectors along the softmax axis.

    Softmax outputs along the axis sum to one, so the mean is exactly 1/n; the
    variance has no closed form for Gaussian inputs and is sampled
    (``monte_carlo_samples`` draws, seeded, memoized). Masks are ignored.
    """

    method = "sampled"

    def estimate(self, means_in, vars_in):
        axis = self.layer.axis
        axis = axis[0] if isinstance(axis, (list, tuple)) else axis
        shape = self.input_shapes[0] if self.input_shapes else None
        size = shape[axis] if shape is not None else None
        if size is None:
            size = 1
        return activation_moments(_A.softmax, means_in[0], vars_in[0], self, axis_size=size)
