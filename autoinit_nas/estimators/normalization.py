"""BatchNormalization, LayerNormalization, GroupNormalization (training mode)."""

import math

import keras
import numpy as np

from autoinit_nas.maths import gaussian
from autoinit_nas.estimators.base import LayerOutputDistributionEstimator
from autoinit_nas.estimators.registry import register
from autoinit_nas.estimators.values import MeasuredOutput, to_numpy


def _values(value):
    """A weight, tensor or array as a flat float64 array."""
    return to_numpy(value, dtype=float).ravel()


def _normalized_count(layer, shape):
    """How many values each Layer or Group normalization statistic is taken over; None if unknown.

    BatchNormalization's include the batch, so they are never known here.
    """
    if shape is None or isinstance(layer, keras.layers.BatchNormalization):
        return None
    rank = len(shape)
    if isinstance(layer, keras.layers.GroupNormalization):
        channel = layer.axis % rank
        dims = [shape[i] for i in range(1, rank) if i != channel]
        channels = shape[channel]
        if channels is None or any(dim is None for dim in dims):
            return None
        return int(np.prod(dims, dtype=np.int64)) * (int(channels) // int(layer.groups))
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    sizes = [shape[axis] for axis in axes]
    return None if any(size is None for size in sizes) else int(np.prod(sizes, dtype=np.int64))


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
    Over a single value (a Layer normalization of a size-1 axis, the keras-io
    time-series transformer's one channel; a group of one) the statistic's
    variance is exactly 0, not v: x - mu = 0, so z = 0 and y = beta exactly
    (E[y] = mean beta_c, Var = var beta_c), and with ``rms_scaling``
    z = x / sqrt(eps).
    gamma and beta are the layer's weights where it has them (None means
    1 and 0), which is what the layer's own ``call`` uses.
    Approximation: uses the population v in place of the batch/sample variance.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        layer = self.layer
        mean, var = means_in[0], vars_in[0]
        eps = float(getattr(layer, "epsilon", 0.0))
        shape = self.input_shapes[0] if getattr(self, "input_shapes", None) else None
        # The per-sample variance Keras divides by: exactly 0 over a single value.
        statistic = 0.0 if _normalized_count(layer, shape) == 1 else var
        if getattr(layer, "rms_scaling", False):
            # Keras divides the uncentred input by sqrt(variance + eps).
            second_in = gaussian.second_moment(mean, var)
            z_mean = mean / np.sqrt(statistic + eps) if statistic + eps > 0 else 0.0
            z_second = second_in / (statistic + eps) if statistic + eps > 0 else 0.0
        else:
            z_mean = 0.0
            z_second = statistic / (statistic + eps) if statistic + eps > 0 else 0.0
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

    def probe_call(self, inputs):
        """A channels-last 4-D BatchNormalization's training-mode output, from one fused op; or None.

        On TensorFlow, ``fused_batch_norm`` computes what the layer's call
        does in training mode (batch statistics, then gamma and beta) in one
        pass instead of about ten eager ops (4x faster, equal up to float32
        rounding); the moving statistics it would update are restored by the
        probe anyway. Its output's moments come from the op's per-channel
        statistics (``_batch_norm_output_moments``), so the probe does not
        read the output again. None (call the layer) for anything else.
        """
        layer = self.layer
        if (type(layer) is not keras.layers.BatchNormalization or len(inputs) != 1
                or keras.backend.backend() != "tensorflow" or layer.synchronized
                # Frozen: Keras normalizes with the moving statistics; renorm corrects the batch ones.
                or not layer.trainable or getattr(layer, "renorm", False)
                or layer.epsilon < _FUSED_MIN_EPSILON or layer.compute_dtype != "float32"):
            return None
        import tensorflow as tf

        x = inputs[0]
        if (not isinstance(x, tf.Tensor) or x.dtype != tf.float32 or x.shape.rank != 4
                or layer.axis not in (-1, 3)):
            return None
        channels = int(x.shape[-1])
        gamma = layer.gamma.value if layer.gamma is not None else tf.ones((channels,), tf.float32)
        beta = layer.beta.value if layer.beta is not None else tf.zeros((channels,), tf.float32)
        y, _, batch_variance = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, epsilon=layer.epsilon, is_training=True)
        count = math.prod(int(dim) for dim in x.shape[:-1])
        return [MeasuredOutput(y, _batch_norm_output_moments(
            gamma, beta, batch_variance, count, float(layer.epsilon)))]


def _batch_norm_output_moments(gamma, beta, batch_variance, count, epsilon):
    """(mean, variance) of a training-mode BatchNormalization's output, from its per-channel statistics.

    Channel c's output is gamma_c (x - m_c) / sqrt(v_c + eps) + beta_c over
    ``count`` values, with m_c, v_c the channel's batch mean and (biased)
    variance: its mean is beta_c and its variance gamma_c^2 v_c / (v_c + eps).
    Channels hold equal counts, so the whole tensor's mean is the mean of the
    beta_c and its variance the mean of the channel variances plus the
    variance of the beta_c. TensorFlow's fused op returns v_c times
    count / (count - 1) (the sample variance its moving average takes), so
    that factor is undone. Read from three vectors instead of the output.
    """
    gamma, beta = to_numpy(gamma, np.float64), to_numpy(beta, np.float64)
    sample = to_numpy(batch_variance, np.float64)
    biased = sample * ((count - 1) / count) if count > 1 else np.zeros_like(sample)
    channel_variances = gamma**2 * biased / (biased + epsilon)
    mean = float(np.mean(beta))
    return mean, float(np.mean(channel_variances) + np.mean((beta - mean) ** 2))


# TensorFlow's fused batch normalization raises smaller epsilons to this.
_FUSED_MIN_EPSILON = 1.001e-5


@register(keras.layers.UnitNormalization)
class UnitNormalizationEstimator(LayerOutputDistributionEstimator):
    """``UnitNormalization``: each vector of K elements scaled to unit L2 norm.

    The squares of a unit vector's K elements sum to one, so E[y^2] = 1/K
    exactly. The mean is m / sqrt(K E[x^2]) for large K (the norm concentrates
    at sqrt(K E[x^2])). K is the product of the normalized axes' sizes.
    """

    method = "exact (mean: large-K approximation)"

    def estimate(self, means_in, vars_in):
        axes = self.layer.axis if isinstance(self.layer.axis, (list, tuple)) else [self.layer.axis]
        shape = self.input_shapes[0] if self.input_shapes else None
        count = 1
        for axis in axes:
            count *= (shape[axis] if shape is not None else None) or 1
        mean, var = means_in[0], vars_in[0]
        second = gaussian.second_moment(mean, var)
        first = mean / np.sqrt(count * second) if second > 0 else 0.0
        return first, gaussian.variance_from_moments(first, 1.0 / count)


@register(keras.layers.Normalization)
class PreprocessingNormalizationEstimator(LayerOutputDistributionEstimator):
    """``Normalization``: y = (x - mu_c) / sqrt(s_c) per feature c (adapted or given).

    Each feature equally frequent: E[y] = mean_c (m - mu_c) / sigma_c and
    E[y^2] = mean_c ((m - mu_c)^2 + v) / sigma_c^2, with sigma_c =
    max(sqrt(s_c), epsilon) as Keras clamps it. With ``invert=True``,
    y = mu_c + x sigma_c instead.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        layer = self.layer
        mean, var = means_in[0], vars_in[0]
        mu = _values(layer.mean)
        sigma = np.maximum(np.sqrt(_values(layer.variance)), keras.backend.epsilon())
        if getattr(layer, "invert", False):
            first = float(np.mean(mu + mean * sigma))
            second = float(np.mean((mu + mean * sigma) ** 2 + var * sigma**2))
        else:
            first = float(np.mean((mean - mu) / sigma))
            second = float(np.mean(((mean - mu) ** 2 + var) / sigma**2))
        return first, gaussian.variance_from_moments(first, second)


@register(keras.layers.Rescaling)
class RescalingEstimator(LayerOutputDistributionEstimator):
    """``Rescaling``: y = scale * x + offset (scalars or per-channel arrays).

    E[y] = mean(scale) m + mean(offset) for scalars; per-channel arrays of
    equal length pair up: E[y^2] = mean_c (scale_c^2 (v + m^2) + 2 scale_c
    offset_c m + offset_c^2).
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        mean, var = means_in[0], vars_in[0]
        scale = np.atleast_1d(np.asarray(self.layer.scale, dtype=float)).ravel()
        offset = np.atleast_1d(np.asarray(self.layer.offset, dtype=float)).ravel()
        try:
            scale, offset = np.broadcast_arrays(scale, offset)
        except ValueError:  # lengths that do not pair up: use their averages
            scale, offset = np.full(1, scale.mean()), np.full(1, offset.mean())
        first = float(np.mean(scale * mean + offset))
        second = float(np.mean(scale**2 * gaussian.second_moment(mean, var) + 2 * scale * offset * mean + offset**2))
        return first, gaussian.variance_from_moments(first, second)
