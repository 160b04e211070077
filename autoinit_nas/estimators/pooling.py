"""Max and average pooling, local and global, 1D/2D/3D."""

import math

import keras

from autoinit_nas.maths import gaussian
from autoinit_nas.maths.windows import window_count_distribution
from autoinit_nas.estimators.base import LayerOutputDistributionEstimator
from autoinit_nas.estimators.registry import register

_L = keras.layers


def _as_tuple(value, rank):
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * rank


def window_sizes(estimator):
    """(counts, frequencies) of real inputs per pooling window.

    Every window is full with ``padding="valid"``; with "same", border windows
    hang over the edge and hold fewer inputs (padding is ignored by the pool).
    """
    layer = estimator.layer
    rank = len(_as_tuple(layer.pool_size, 1))
    pool = _as_tuple(layer.pool_size, rank)
    if layer.padding == "valid" or not estimator.input_shapes:
        return [math.prod(pool)], [1.0]
    shape = estimator.input_shapes[0]
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        spatial = shape[2:]
    else:
        spatial = shape[1:-1]
    strides = _as_tuple(layer.strides if layer.strides is not None else pool, rank)
    counts, weights = window_count_distribution(spatial, pool, strides, (1,) * rank, layer.padding)
    return [int(c) for c in counts], [float(w) for w in weights]


def _spatial_count(layer, shapes):
    """Number of positions a global pooling layer reduces over."""
    shape = shapes[0] if shapes else None
    if shape is None:
        return 1
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        spatial = shape[2:]
    else:
        spatial = shape[1:-1]
    return math.prod(dim or 1 for dim in spatial)


class _MaxEstimator(LayerOutputDistributionEstimator):
    def moments_of_max(self, mean, var, count):
        return self.memoized(
            "max", count, (mean, var),
            lambda: gaussian.max_of_normals_moments(mean, var, count),
        )

    def mixture_of_max(self, mean, var, counts, weights):
        """Moments over positions whose windows hold ``counts`` inputs."""
        first = 0.0
        second = 0.0
        for count, weight in zip(counts, weights):
            m, v = self.moments_of_max(mean, var, count)
            first += weight * m
            second += weight * gaussian.second_moment(m, v)
        return first, gaussian.variance_from_moments(first, second)


@register(_L.MaxPooling1D, _L.MaxPooling2D, _L.MaxPooling3D)
class MaxPoolingEstimator(_MaxEstimator):
    """Maximum of k = prod(pool_size) inputs, treated as i.i.d. N(m, v).

    M = max of k i.i.d. standard normals has density k phi(z) Phi(z)^(k-1);
    E[M] and E[M^2] are 1-D integrals (``max_of_normals_standard_moments``), and
    the output is m + sqrt(v) M. With ``padding="same"`` border windows hold
    fewer inputs; the output is the mixture over the exact window sizes.
    Overlapping windows (stride < pool size) correlate neighbouring outputs
    but leave each output's moments unchanged. Approximation: inputs that are
    not Gaussian (e.g. after ReLU) or correlated within a window.
    """

    method = "quadrature (order statistics)"

    def estimate(self, means_in, vars_in):
        counts, weights = window_sizes(self)
        return self.mixture_of_max(means_in[0], vars_in[0], counts, weights)


@register(_L.GlobalMaxPooling1D, _L.GlobalMaxPooling2D, _L.GlobalMaxPooling3D)
class GlobalMaxPoolingEstimator(_MaxEstimator):
    """Maximum over all k spatial positions, as in ``MaxPoolingEstimator``.

    k is the product of the input's spatial dimensions (1 if unknown).
    """

    def estimate(self, means_in, vars_in):
        count = _spatial_count(self.layer, self.input_shapes)
        return self.moments_of_max(means_in[0], vars_in[0], count)


@register(_L.AveragePooling1D, _L.AveragePooling2D, _L.AveragePooling3D)
class AveragePoolingEstimator(LayerOutputDistributionEstimator):
    """Mean of k = prod(pool_size) independent inputs: E = m, Var = v / k.

    With ``padding="same"`` border windows average only their k_p real inputs
    (Keras divides by the valid count), so Var = sum_p w_p v / k_p over the
    exact window-size distribution. Approximation: spatially correlated
    features (any conv output) average out less than independent ones, so
    this under-predicts their variance.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        counts, weights = window_sizes(self)
        return means_in[0], vars_in[0] * sum(w / c for c, w in zip(counts, weights))


@register(
    _L.GlobalAveragePooling1D, _L.GlobalAveragePooling2D, _L.GlobalAveragePooling3D
)
class GlobalAveragePoolingEstimator(LayerOutputDistributionEstimator):
    """Mean over all k spatial positions of independent inputs: Var = v / k.

    Approximation: per-channel offsets that do not vary with position do not
    average out (see MATH-NOTES, "Global average pooling").
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        count = _spatial_count(self.layer, self.input_shapes)
        return means_in[0], vars_in[0] / count
