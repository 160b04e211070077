"""Dropout and spatial dropout (training mode)."""

import keras

from autoinit_nas.core import gaussian
from autoinit_nas.estimators.base import LayerOutputDistributionEstimator
from autoinit_nas.estimators.registry import register


@register(
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
)
class DropoutEstimator(LayerOutputDistributionEstimator):
    """Inverted dropout at rate p: y = x * B / (1 - p), B ~ Bernoulli(1 - p).

    Keras scales kept units by 1/(1-p), spatial variants included (they are
    Dropout with a noise shape). So E[y] = E[x] and
    E[y^2] = E[x^2] / (1 - p), hence Var(y) = (v + m^2)/(1 - p) - m^2.
    (v / (1 - p) is right only when m = 0.) Training mode; at inference the
    layer is the identity.
    """

    def estimate(self, means_in, vars_in):
        rate = float(self.layer.rate)
        mean = means_in[0]
        if rate >= 1.0:
            return 0.0, 0.0
        second = gaussian.second_moment(mean, vars_in[0]) / (1.0 - rate)
        return mean, gaussian.variance_from_moments(mean, second)
