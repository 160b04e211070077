"""Max and average pooling, local and global, 1D/2D/3D."""

import math

import keras

from autoinit_nas.core import gaussian
from autoinit_nas.estimators.base import LayerOutputDistributionEstimator
from autoinit_nas.estimators.registry import register

_L = keras.layers


def _window(layer):
    size = layer.pool_size
    return math.prod(size) if isinstance(size, (tuple, list)) else int(size)


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


@register(_L.MaxPooling1D, _L.MaxPooling2D, _L.MaxPooling3D)
class MaxPoolingEstimator(_MaxEstimator):
    """Maximum of k = prod(pool_size) inputs, treated as i.i.d. N(m, v).

    M = max of k i.i.d. standard normals has density k phi(z) Phi(z)^(k-1);
    E[M] and E[M^2] are 1-D integrals (``max_of_normals_standard_moments``), and
    the output is m + sqrt(v) M. Approximations: inputs that are not Gaussian
    (e.g. after ReLU) or correlated across the window, and border windows
    with fewer elements under ``padding="same"``.
    """

    def estimate(self, means_in, vars_in):
        return self.moments_of_max(means_in[0], vars_in[0], _window(self.layer))


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

    Approximation: spatially correlated features (any conv output) average
    out less than independent ones, so this under-predicts their variance.
    """

    def estimate(self, means_in, vars_in):
        return means_in[0], vars_in[0] / _window(self.layer)


@register(
    _L.GlobalAveragePooling1D, _L.GlobalAveragePooling2D, _L.GlobalAveragePooling3D
)
class GlobalAveragePoolingEstimator(LayerOutputDistributionEstimator):
    """Mean over all k spatial positions of independent inputs: Var = v / k.

    Approximation: per-channel offsets that do not vary with position do not
    average out (see MATH-NOTES, "Global average pooling").
    """

    def estimate(self, means_in, vars_in):
        count = _spatial_count(self.layer, self.input_shapes)
        return means_in[0], vars_in[0] / count
