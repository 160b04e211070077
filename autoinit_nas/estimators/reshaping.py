"""Layers that move, copy or pad elements."""

import math

import keras

from autoinit_nas.maths import gaussian
from autoinit_nas.estimators.base import LayerOutputDistributionEstimator, PassThroughEstimator
from autoinit_nas.estimators.registry import register

_L = keras.layers

register(
    _L.Flatten, _L.Reshape, _L.Permute, _L.RepeatVector, _L.Identity,
    _L.Cropping1D, _L.Cropping2D, _L.Cropping3D,
    _L.UpSampling1D, _L.UpSampling2D, _L.UpSampling3D,
)(PassThroughEstimator)
# UpSampling2D/3D with interpolation other than "nearest" average neighbours
# and so slightly reduce the variance; the pass-through ignores that.


@register(_L.ZeroPadding1D, _L.ZeroPadding2D, _L.ZeroPadding3D)
class ZeroPaddingEstimator(LayerOutputDistributionEstimator):
    """A fraction f of the output elements are the input, the rest zeros.

    f = (input elements) / (output elements) from the static shapes; then
    E[y] = f m and E[y^2] = f (v + m^2), Var = E[y^2] - E[y]^2.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        fraction = 1.0
        if self.input_shapes and self.output_shapes:
            inner = self.input_shapes[0][1:]
            outer = self.output_shapes[0][1:]
            if None not in inner and None not in outer and math.prod(outer) > 0:
                fraction = math.prod(inner) / math.prod(outer)
        mean = fraction * means_in[0]
        second = fraction * gaussian.second_moment(means_in[0], vars_in[0])
        return mean, gaussian.variance_from_moments(mean, second)
