"""Dropout and spatial dropout (training mode)."""

import keras

from autoinit_nas.maths import gaussian
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

    method = "exact"

    def estimate(self, means_in, vars_in):
        rate = float(self.layer.rate)
        mean = means_in[0]
        if rate >= 1.0:
            return 0.0, 0.0
        second = gaussian.second_moment(mean, vars_in[0]) / (1.0 - rate)
        return mean, gaussian.variance_from_moments(mean, second)


@register(keras.layers.GaussianNoise)
class GaussianNoiseEstimator(LayerOutputDistributionEstimator):
    """y = x + n, n ~ N(0, stddev^2) independent (training mode): E = m, Var = v + stddev^2."""

    method = "exact"

    def estimate(self, means_in, vars_in):
        return means_in[0], vars_in[0] + float(self.layer.stddev) ** 2


@register(keras.layers.GaussianDropout)
class GaussianDropoutEstimator(LayerOutputDistributionEstimator):
    """y = x * g, g ~ N(1, p / (1 - p)) independent (training mode).

    E[y] = m and E[y^2] = E[x^2] E[g^2] = E[x^2] / (1 - p), as for Dropout:
    Var = (v + m^2) / (1 - p) - m^2.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        return DropoutEstimator.estimate(self, means_in, vars_in)


@register(keras.layers.AlphaDropout)
class AlphaDropoutEstimator(LayerOutputDistributionEstimator):
    """SELU-preserving dropout (training mode).

    Keras keeps x with probability q = 1 - p and otherwise sets it to
    a' = -alpha * scale (SELU's saturation value), then applies y = a z + b with
    a = (q (1 + p a'^2))^(-1/2) and b = -a a' p. For the mixture z:
    E[z] = q m + p a', E[z^2] = q (v + m^2) + p a'^2, so
    E[y] = a E[z] + b and Var(y) = a^2 Var(z).
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        rate = float(self.layer.rate)
        mean, var = means_in[0], vars_in[0]
        if rate <= 0.0:
            return mean, var
        alpha_p = -1.6732632423543772 * 1.0507009873554805
        keep = 1.0 - rate
        a = (keep * (1.0 + rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * rate
        z_mean = keep * mean + rate * alpha_p
        z_second = keep * gaussian.second_moment(mean, var) + rate * alpha_p**2
        return a * z_mean + b, a * a * gaussian.variance_from_moments(z_mean, z_second)
