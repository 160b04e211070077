"""Dense and EinsumDense layers, and the input layer."""

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

    probe_weight = "kernel"
    probe_bypasses_activation = True
    method = "exact (activation: closed form or quadrature)"

    def estimate(self, means_in, vars_in):
        kernel_shape = tuple(self.layer.kernel.shape)
        fan_in = math.prod(kernel_shape[:-1])
        pre_var = self.scaled_output_variance(
            "kernel", fan_in, kernel_shape[-1], self.weight_input_power(means_in, vars_in, fan_in)
        )
        return apply_layer_activation(self, 0.0, pre_var)


register(keras.layers.InputLayer)(PassThroughEstimator)


def einsum_fan_in(equation, kernel_shape):
    """Number of terms each EinsumDense output sums: the kernel's contracted dimensions.

    A kernel label that appears in the input but not in the output is summed
    over; the product of those kernel dimensions is the fan-in.

    Example:
        >>> einsum_fan_in("abc,cde->abde", (16, 4, 8))
        16
    """
    inputs, output = equation.replace(" ", "").split("->")
    input_spec, kernel_spec = inputs.split(",")
    return math.prod(
        int(dim) for label, dim in zip(kernel_spec, kernel_shape)
        if label in input_spec and label not in output
    ) or 1


@register(keras.layers.EinsumDense)
class EinsumDenseEstimator(WeightedLayerEstimator):
    """``EinsumDense``: a linear map whose fan-in is read off its equation.

    Each output element sums fan_in = prod(contracted kernel dimensions)
    products (``einsum_fan_in``), so the Dense rule applies:
    Var = fan_in * s * E[x^2], s chosen for signal_variance, then the
    layer's activation on N(0, signal_variance).
    """

    probe_weight = "kernel"
    probe_bypasses_activation = True
    method = "exact"

    def estimate(self, means_in, vars_in):
        kernel_shape = tuple(self.layer.kernel.shape)
        fan_in = einsum_fan_in(self.layer.equation, kernel_shape)
        fan_out = max(math.prod(kernel_shape) // fan_in, 1)
        pre_var = self.scaled_output_variance(
            "kernel", fan_in, fan_out, self.weight_input_power(means_in, vars_in, fan_in)
        )
        return apply_layer_activation(self, 0.0, pre_var)
