"""Convolutions: Conv1D/2D/3D and DepthwiseConv1D/2D."""

import math

import keras

from autoinit_nas.core.windows import mean_valid_fraction
from autoinit_nas.estimators.activations import apply_layer_activation
from autoinit_nas.estimators.base import WeightedLayerEstimator
from autoinit_nas.estimators.registry import register


def spatial_dims(layer, shape):
    """Spatial part of a static shape, honouring ``data_format``."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return tuple(shape[2:])
    return tuple(shape[1:-1])


def valid_tap_fraction(estimator):
    """Average share of a conv window's taps that land on real (unpadded) inputs.

    1 for ``padding="valid"``; below 1 for "same" and "causal", computed
    exactly from the input's static shape (see ``autoinit_nas.core.windows``).
    """
    layer = estimator.layer
    if layer.padding == "valid" or not estimator.input_shapes:
        return 1.0
    return mean_valid_fraction(
        spatial_dims(layer, estimator.input_shapes[0]),
        layer.kernel_size, layer.strides, layer.dilation_rate, layer.padding,
    )


@register(keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
class ConvEstimator(WeightedLayerEstimator):
    """``ConvND``: each output sums prod(kernel_size) * in_channels / groups terms.

    The kernel has shape (*kernel_size, in_channels / groups, filters), so the
    fan-in is the product of all but the last dimension; the maths is then the
    Dense rule: Var = fan_in * s * E[x^2], s chosen for signal_variance, the
    layer's activation applied to N(0, signal_variance).
    With ``padding="same"`` (or "causal") border outputs sum fewer real
    inputs: output position p sees a fraction f_p of the taps, so
    E[y_p^2] = f_p * fan_in * s * E[x^2]; averaged over positions, E[x^2] is
    replaced by f * E[x^2] with f the mean valid fraction (exact, from the
    static shape). The activation then sees N(0, signal_variance) on average.
    """

    def estimate(self, means_in, vars_in):
        kernel_shape = tuple(self.layer.kernel.shape)
        fan_in = math.prod(kernel_shape[:-1])
        pre_var = self.scaled_output_variance(
            "kernel", fan_in, kernel_shape[-1],
            valid_tap_fraction(self) * self.weight_input_power(means_in, vars_in, fan_in),
        )
        return apply_layer_activation(self, 0.0, pre_var)


@register(keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
class DepthwiseConvEstimator(WeightedLayerEstimator):
    """``DepthwiseConvND``: each output sees one input channel.

    The depthwise kernel has shape (*kernel_size, in_channels, multiplier);
    every output sums prod(kernel_size) terms of a single channel, so
    fan_in = prod(kernel_size) and Var = fan_in * s * E[x^2] as for Dense,
    with the same border correction as ``ConvEstimator``.
    """

    initializer_attributes = {"kernel": "depthwise_initializer"}

    def estimate(self, means_in, vars_in):
        kernel_shape = tuple(self.layer.kernel.shape)
        fan_in = math.prod(kernel_shape[:-2])
        # CenteredUnitNorm centres each multiplier's (kernel_size, in_channels)
        # block as one, not each output channel's own taps.
        power = self.weight_input_power(
            means_in, vars_in, fan_in, centred_count=math.prod(kernel_shape[:-1])
        )
        pre_var = self.scaled_output_variance(
            "kernel", fan_in, fan_in * kernel_shape[-1], valid_tap_fraction(self) * power,
        )
        return apply_layer_activation(self, 0.0, pre_var)
