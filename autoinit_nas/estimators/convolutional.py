"""Convolutions: Conv1D/2D/3D and DepthwiseConv1D/2D."""

import math

import keras

from autoinit_nas.estimators.activations import apply_layer_activation
from autoinit_nas.estimators.base import WeightedLayerEstimator, second_moment_of
from autoinit_nas.estimators.registry import register


@register(keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
class ConvEstimator(WeightedLayerEstimator):
    """``ConvND``: each output sums prod(kernel_size) * in_channels / groups terms.

    The kernel has shape (*kernel_size, in_channels / groups, filters), so the
    fan-in is the product of all but the last dimension; the maths is then the
    Dense rule: Var = fan_in * s * E[x^2], s chosen for signal_variance, the
    layer's activation applied to N(0, signal_variance).
    Approximation: with ``padding="same"``, border outputs sum fewer non-zero
    terms; their variance is lower by the fraction of padded taps, ignored here.
    """

    def estimate(self, means_in, vars_in):
        kernel_shape = tuple(self.layer.kernel.shape)
        fan_in = math.prod(kernel_shape[:-1])
        pre_var = self.scaled_output_variance(
            "kernel", fan_in, kernel_shape[-1], second_moment_of(means_in, vars_in)
        )
        return apply_layer_activation(self, 0.0, pre_var)


@register(keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
class DepthwiseConvEstimator(WeightedLayerEstimator):
    """``DepthwiseConvND``: each output sees one input channel.

    The depthwise kernel has shape (*kernel_size, in_channels, multiplier);
    every output sums prod(kernel_size) terms of a single channel, so
    fan_in = prod(kernel_size) and Var = fan_in * s * E[x^2] as for Dense.
    """

    initializer_attributes = {"kernel": "depthwise_initializer"}

    def estimate(self, means_in, vars_in):
        kernel_shape = tuple(self.layer.kernel.shape)
        fan_in = math.prod(kernel_shape[:-2])
        pre_var = self.scaled_output_variance(
            "kernel", fan_in, fan_in * kernel_shape[-1], second_moment_of(means_in, vars_in)
        )
        return apply_layer_activation(self, 0.0, pre_var)
