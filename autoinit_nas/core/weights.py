"""Drawing and assigning the weights AutoInit chose.

Each weight gets a Keras initializer with the chosen variance and its own
integer seed, so the values are reproducible and the layer's
``*_initializer`` attribute can be set to exactly what produced them.

Example:
    >>> init = make_initializer("uniform", variance=0.01, shape=(100, 10), seed=1)
    >>> type(init).__name__
    'RandomUniform'
"""

import math

import keras
import numpy as np

from autoinit_nas.layers import CenteredUnitNorm

# Standard deviation of a unit normal truncated at +-2 (what Keras's
# TruncatedNormal draws): sqrt(1 - 4 phi(2) / (Phi(2) - Phi(-2))).
TRUNCATED_NORMAL_STD = 0.87962566103423978


def make_initializer(distribution, variance, shape, seed):
    """A Keras initializer drawing i.i.d. zero-mean values of ``variance``.

    ``orthogonal`` draws a (scaled) orthogonal matrix of the flattened shape
    (prod(shape[:-1]), shape[-1]); its entries have mean square
    gain^2 / max(rows, cols), so gain = sqrt(variance * max(rows, cols)).
    """
    std = math.sqrt(max(variance, 0.0))
    if distribution == "truncated_normal":
        return keras.initializers.TruncatedNormal(stddev=std / TRUNCATED_NORMAL_STD, seed=seed)
    if distribution == "untruncated_normal":
        return keras.initializers.RandomNormal(stddev=std, seed=seed)
    if distribution == "uniform":
        limit = math.sqrt(3.0) * std
        return keras.initializers.RandomUniform(minval=-limit, maxval=limit, seed=seed)
    if distribution == "orthogonal":
        rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        cols = shape[-1] if shape else 1
        return keras.initializers.Orthogonal(gain=std * math.sqrt(max(rows, cols)), seed=seed)
    raise ValueError(
        "`distribution` must be one of truncated_normal, untruncated_normal, uniform, "
        f"orthogonal. Received: distribution={distribution!r}"
    )


def weight_seeds(base_seed, count):
    """``count`` independent 31-bit seeds derived from ``base_seed``."""
    states = np.random.SeedSequence(base_seed).generate_state(max(count, 1))
    return [int(value) & 0x7FFFFFFF for value in states[:count]]


def _variable(owner, attribute):
    # Dense exposes `kernel` as a property over `_kernel`; assign the variable.
    variable = getattr(owner, "_" + attribute, None)
    if not isinstance(variable, keras.Variable):
        variable = getattr(owner, attribute, None)
    if not isinstance(variable, keras.Variable):
        raise ValueError(
            f"Layer '{getattr(owner, 'name', owner)}' has no weight `{attribute}` to initialize "
            f"(found {type(variable).__name__}); is the layer built?"
        )
    return variable


def apply_plan(estimator, distribution, seeds, constrain_weights):
    """Draw and assign every weight in ``estimator.weight_plan``; zero its biases.

    ``seeds`` is an iterator of integer seeds, one consumed per weight.
    Returns the number of weights assigned.
    """
    assigned = 0
    for attribute, (variance, _fan_in, _fan_out) in estimator.weight_plan.items():
        owner, name = estimator.weight_owner(attribute)
        variable = _variable(owner, name)
        shape = tuple(variable.shape)
        initializer = make_initializer(distribution, variance, shape, next(seeds))
        value = initializer(shape, dtype=variable.dtype)
        if constrain_weights:
            fan = math.prod(shape[:-1]) if len(shape) > 1 else 1
            constraint = CenteredUnitNorm(gain=math.sqrt(variance * fan))
            value = constraint(value)
            variable.constraint = constraint
            setattr(owner, name + "_constraint", constraint)
        variable.assign(value)
        init_owner, init_attribute = estimator.initializer_attribute(attribute)
        setattr(init_owner, init_attribute, initializer)
        assigned += 1
        bias_owner = owner
        for bias_name in estimator.bias_attributes:
            bias = getattr(bias_owner, bias_name, None)
            if isinstance(bias, keras.Variable):
                bias.assign(keras.ops.zeros(bias.shape, dtype=bias.dtype))
                setattr(bias_owner, bias_name + "_initializer", keras.initializers.Zeros())
    return assigned
