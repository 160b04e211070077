"""Dense layers and the input layer."""

import math

import keras

from autoinit_nas.estimators.activations import apply_layer_activation
from autoinit_nas.estimators.base import PassThroughEstimator, WeightedLayerEstimator
from autoinit_nas.estimators.registry import register


@register(keras.layers.Dense)
class DenseEstimator(WeightedLayerEstimator):
    """``Dense``: y = f(x W + b) with W drawn for unit pre-activation variance.

    With fan_in = W.shape[0] and b = 0, the pre-activation has E = 0 and
    Var = fan_in * s * E[x^2] (see ``WeightedLayerEstimator``); s is chosen so
    that this equals signal_variance. The activation f is then applied to
    N(0, signal_variance) by ``activation_moments``. Assumes the inputs are
    independent of the weights (true at initialization) and, for the
    activation, that the pre-activation is Gaussian (a sum of fan_in terms).
    """

    def estimate(self, means_in, vars_in):
        kernel_shape = tuple(self.layer.kernel.shape)
        fan_in = math.prod(kernel_shape[:-1])
        pre_var = self.scaled_output_variance(
            "kernel", fan_in, kernel_shape[-1], self.weight_input_power(means_in, vars_in, fan_in)
        )
        return apply_layer_activation(self, 0.0, pre_var)


register(keras.layers.InputLayer)(PassThroughEstimator)
