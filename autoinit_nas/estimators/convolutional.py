"""Convolutions: Conv1D/2D/3D and DepthwiseConv1D/2D."""

import math

import keras
import numpy as np

from autoinit_nas.maths.windows import mean_valid_fraction
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
    exactly from the input's static shape (see ``autoinit_nas.maths.windows``).
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

    probe_weight = "kernel"
    probe_bypasses_activation = True
    method = "exact"

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

    probe_weight = "kernel"
    probe_bypasses_activation = True
    method = "exact"

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


@register(keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
class SeparableConvEstimator(WeightedLayerEstimator):
    """``SeparableConvND``: a depthwise convolution, then a 1x1 pointwise one.

    Depthwise (fan-in prod(kernel_size), border share f as in
    ``ConvEstimator``): s_d = sv / (fan_in f E[x^2]) gives an intermediate
    of mean 0 and variance sv. Pointwise (fan-in in_channels * multiplier)
    on that: s_p = sv / (fan_in_p sv). The layer's activation then sees
    N(0, sv).
    """

    probe_weight = "pointwise_kernel"
    probe_bypasses_activation = True
    method = "exact"
    initializer_attributes = {
        "depthwise_kernel": "depthwise_initializer",
        "pointwise_kernel": "pointwise_initializer",
    }

    def estimate(self, means_in, vars_in):
        depthwise = tuple(self.layer.depthwise_kernel.shape)
        pointwise = tuple(self.layer.pointwise_kernel.shape)
        fan_in = math.prod(depthwise[:-2])
        intermediate = self.scaled_output_variance(
            "depthwise_kernel", fan_in, fan_in * depthwise[-1],
            valid_tap_fraction(self) * self.weight_input_power(means_in, vars_in, fan_in),
        )
        pointwise_fan_in = math.prod(pointwise[:-1])
        pre_var = self.scaled_output_variance(
            "pointwise_kernel", pointwise_fan_in, pointwise[-1], intermediate
        )
        return apply_layer_activation(self, 0.0, pre_var)


def transposed_contributions(size, kernel, stride, dilation, padding):
    """Average number of (input, tap) pairs landing on each output of a transposed conv.

    Input i and tap j write output i * stride + j * dilation - crop, where
    "same" crops max((size - 1) * stride + span - size * stride, 0) // 2
    from the front (span = (kernel - 1) * dilation + 1) and keeps
    size * stride outputs; "valid" keeps all (size - 1) * stride + span.
    """
    span = (kernel - 1) * dilation + 1
    full = (size - 1) * stride + span
    if padding == "same":
        outputs = size * stride
        crop = max(full - outputs, 0) // 2
    else:
        outputs, crop = full, 0
    positions = (
        np.arange(size)[:, None] * stride + np.arange(kernel)[None, :] * dilation - crop
    )
    landed = int(((positions >= 0) & (positions < outputs)).sum())
    return landed / max(outputs, 1)


@register(keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
class ConvTransposeEstimator(WeightedLayerEstimator):
    """``ConvNDTranspose``: each output sums the taps that land on it.

    The kernel has shape (*kernel_size, filters, in_channels). An output
    position receives, per spatial axis, the (input, tap) pairs whose
    stride-spaced footprints cover it: on average a_d = (pairs landing) /
    (outputs) (``transposed_contributions``; k / stride in the interior), so
    Var = in_channels * prod_d a_d * s * E[x^2], exact on average over
    positions. s is chosen for signal_variance; the activation follows.
    Unknown spatial sizes use k / stride.
    """

    probe_weight = "kernel"
    probe_bypasses_activation = True
    method = "exact"

    def estimate(self, means_in, vars_in):
        layer = self.layer
        kernel_shape = tuple(layer.kernel.shape)
        in_channels = kernel_shape[-1]
        rank = len(kernel_shape) - 2
        spatial = spatial_dims(layer, self.input_shapes[0]) if self.input_shapes else (None,) * rank
        dilation = layer.dilation_rate if isinstance(layer.dilation_rate, (tuple, list)) else (layer.dilation_rate,) * rank
        contributions = 1.0
        for size, kernel, stride, rate in zip(spatial, layer.kernel_size, layer.strides, dilation):
            if size is None:
                contributions *= kernel / stride
            else:
                contributions *= transposed_contributions(size, kernel, stride, rate, layer.padding)
        fan_in = math.prod(kernel_shape[:-2]) * in_channels
        power = self.weight_input_power(means_in, vars_in, fan_in)
        pre_var = self.scaled_output_variance(
            "kernel", fan_in, kernel_shape[-2],
            power * (in_channels * contributions) / fan_in,
        )
        return apply_layer_activation(self, 0.0, pre_var)
