"""BatchNormalization, LayerNormalization, GroupNormalization (training mode)."""

import keras
import numpy as np

from autoinit_nas.core import gaussian
from autoinit_nas.estimators.base import LayerOutputDistributionEstimator
from autoinit_nas.estimators.registry import register


def _values(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=float).ravel()


@register(
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
)
class NormalizationEstimator(LayerOutputDistributionEstimator):
    """Standardize, then scale by gamma_c and shift by beta_c per channel.

    In training mode the normalized value z = (x - mu) / sqrt(sigma^2 + eps)
    (batch statistics for BatchNormalization, per-sample ones for Layer and
    Group normalization) has E[z] = 0 and E[z^2] = v / (v + eps). With the
    layer's current gamma and beta (ones and zeros unless its initializers or
    ``center``/``scale`` say otherwise), each channel equally frequent:
        E[y]   = mean_c beta_c
        E[y^2] = mean_c gamma_c^2 * v / (v + eps) + mean_c beta_c^2.
    LayerNormalization with ``rms_scaling=True`` (deprecated in Keras) does not
    centre: it computes z = x / sqrt(sigma^2 + eps) with the per-sample
    variance sigma^2, then multiplies by gamma (which it always has, whatever
    ``scale`` says) and adds no beta. So E[z] = m / sqrt(v + eps) and
    E[z^2] = (v + m^2) / (v + eps).
    gamma and beta are the layer's weights where it has them (None means
    1 and 0), which is what the layer's own ``call`` uses.
    Approximation: uses the population v in place of the batch/sample variance.
    """

    def estimate(self, means_in, vars_in):
        layer = self.layer
        mean, var = means_in[0], vars_in[0]
        eps = float(getattr(layer, "epsilon", 0.0))
        if getattr(layer, "rms_scaling", False):
            # Keras divides the uncentred input by sqrt(variance + eps).
            second_in = gaussian.second_moment(mean, var)
            z_mean = mean / np.sqrt(var + eps) if var + eps > 0 else 0.0
            z_second = second_in / (var + eps) if var + eps > 0 else 0.0
        else:
            z_mean = 0.0
            z_second = var / (var + eps) if var + eps > 0 else 0.0
        # The layer's call uses exactly the weights it built: LayerNormalization
        # with rms_scaling has gamma even when scale=False and never has beta.
        gamma_variable = getattr(layer, "gamma", None)
        beta_variable = getattr(layer, "beta", None)
        gamma = _values(gamma_variable) if gamma_variable is not None else np.ones(1)
        beta = _values(beta_variable) if beta_variable is not None else np.zeros(1)
        if gamma.size == beta.size:
            first = float(np.mean(gamma * z_mean + beta))
            second = float(np.mean(gamma**2 * z_second + 2 * gamma * beta * z_mean + beta**2))
        else:
            first = float(np.mean(gamma) * z_mean + np.mean(beta))
            second = float(
                np.mean(gamma**2) * z_second
                + 2 * np.mean(gamma) * np.mean(beta) * z_mean
                + np.mean(beta**2)
            )
        return first, gaussian.variance_from_moments(first, second)
