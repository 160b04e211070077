"""Drawing and assigning the weights AutoInit chose.

Each weight is drawn with numpy from its own integer seed (fast, and the same
on every backend), assigned in place, and the layer's ``*_initializer``
attribute is set to an ``AutoInitInitializer`` that draws exactly those values,
so ``get_config()`` / ``clone_model`` reproduce the AutoInit model.

Example:
    >>> values = draw("uniform", variance=0.01, shape=(100, 10), seed=1)
    >>> values.shape
    (100, 10)
"""

import math

import keras
import numpy as np

from autoinit_nas.estimators.layers import CenteredUnitNorm

# Standard deviation of a unit normal truncated at +-2 (the truncation Keras's
# TruncatedNormal uses): sqrt(1 - 4 phi(2) / (Phi(2) - Phi(-2))).
TRUNCATED_NORMAL_STD = 0.87962566103423978

DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform", "orthogonal")


def draw(distribution, variance, shape, seed):
    """Zero-mean values of the given variance, float32, from numpy's PCG64.

    * truncated_normal: N(0, sigma^2) redrawn outside +-2 sigma, with
      sigma = sqrt(variance) / 0.8796 so the truncated values have ``variance``;
    * untruncated_normal: N(0, variance);
    * uniform: U(-a, a) with a = sqrt(3 variance);
    * orthogonal: the Q factor of a Gaussian (rows, cols) matrix (rows =
      prod(shape[:-1])), signs fixed by R's diagonal, times the gain
      sqrt(variance * max(rows, cols)) so entries have mean square ``variance``.

    numpy draws the same values on every backend and platform, so a seed fixes
    the weights everywhere.
    """
    shape = tuple(int(dim) for dim in shape)
    return scale_draw(distribution, unit_draw(distribution, shape, seed), variance, shape)


def unit_draw(distribution, shape, seed):
    """What ``draw`` draws from ``seed`` before scaling: ``scale_draw`` of it at any variance is ``draw``.

    Lets a caller that rescales a weight (probe propagation) redraw it at a
    new variance with one multiplication, bit-identical to a fresh ``draw``.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(dim) for dim in shape)
    if distribution == "truncated_normal":
        values = rng.standard_normal(shape, dtype=np.float32)
        outside = _outside(values)
        while outside.any():
            values[outside] = rng.standard_normal(int(outside.sum()), dtype=np.float32)
            outside = _outside(values)
        return values
    if distribution == "untruncated_normal":
        return rng.standard_normal(shape, dtype=np.float32)
    if distribution == "uniform":
        # Generator.uniform(low, high) computes low + (high - low) * U[0, 1).
        return rng.random(size=shape)
    if distribution == "orthogonal":
        rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        cols = shape[-1] if shape else 1
        gaussian = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(gaussian)
        q *= np.sign(np.diag(r))
        return q.T if rows < cols else q
    raise ValueError(
        f"`distribution` must be one of {list(DISTRIBUTIONS)}. Received: distribution={distribution!r}"
    )


def _outside(values):
    # Two boolean masks rather than np.abs(values): no float copy of a large weight.
    return (values > 2.0) | (values < -2.0)


def scale_draw(distribution, unit, variance, shape, in_place=False):
    """``unit_draw``'s values scaled to ``variance``, float32, in ``shape``.

    ``in_place=True`` scales ``unit`` itself where the distribution allows
    (the normal ones: the same float32 product, so the same values), for a
    caller that does not need the unit draw afterwards.

    ``variance`` must be finite and >= 0: a NaN or infinite plan is refused
    here (ValueError) rather than drawn as NaN or inf weights. AutoInit's own
    plans never reach this: ``WeightedLayerEstimator.scaled_output_variance``
    gives a dead or non-finite input fan-in scaling (the scale a unit-power
    input would get, with a ``vanishing_input`` warning naming the layer),
    and ``sanitize.clamp_weight_variance`` keeps every planned variance in
    ``WEIGHT_VARIANCE_LIMITS``.
    """
    variance = float(variance)
    if not (math.isfinite(variance) and variance >= 0.0):
        raise ValueError(
            "`variance` must be a finite number >= 0 (the variance of the drawn weights). "
            f"Received: variance={variance!r}"
        )
    std = math.sqrt(variance)
    if distribution in ("truncated_normal", "untruncated_normal"):
        factor = np.float32(std / TRUNCATED_NORMAL_STD if distribution == "truncated_normal" else std)
        if in_place:
            unit *= factor
            return unit
        return unit * factor
    if distribution == "uniform":
        limit = math.sqrt(3.0) * std
        return (-limit + (limit - -limit) * unit).astype(np.float32)
    if distribution == "orthogonal":
        rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        cols = shape[-1] if shape else 1
        gain = std * math.sqrt(max(rows, cols))
        return (gain * unit).astype(np.float32).reshape(shape)
    raise ValueError(
        f"`distribution` must be one of {list(DISTRIBUTIONS)}. Received: distribution={distribution!r}"
    )


@keras.saving.register_keras_serializable(package="autoinit_nas")
class AutoInitInitializer(keras.initializers.Initializer):
    """The initializer AutoInit leaves on each layer it initialized.

    Draws what ``draw(distribution, variance, shape, seed)`` draws, so
    ``clone_model`` or ``Model.from_config`` of an AutoInit model rebuild
    exactly its weights.

    Example:
        >>> init = AutoInitInitializer("uniform", variance=0.01, seed=1)
        >>> tuple(init((4, 3)).shape)
        (4, 3)

    Args:
        distribution: truncated_normal, untruncated_normal, uniform or orthogonal.
        variance: the variance of each drawn value.
        seed: integer seed.
    """

    def __init__(self, distribution="truncated_normal", variance=1.0, seed=0):
        if distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"`distribution` must be one of {list(DISTRIBUTIONS)}. "
                f"Received: distribution={distribution!r}"
            )
        self.distribution = distribution
        self.variance = float(variance)
        self.seed = int(seed)

    def __call__(self, shape, dtype=None):
        values = draw(self.distribution, self.variance, shape, self.seed)
        return keras.ops.convert_to_tensor(values, dtype=dtype or "float32")

    def get_config(self):
        return {"distribution": self.distribution, "variance": self.variance, "seed": self.seed}


def weight_seeds(base_seed, count):
    """``count`` independent 31-bit seeds derived from ``base_seed``."""
    states = np.random.SeedSequence(base_seed).generate_state(max(count, 1))
    return [int(value) & 0x7FFFFFFF for value in states[:count]]


def weight_variable(owner, attribute):
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


def assign_weight(estimator, attribute, distribution, seed, constrain_weights, unit=None,
                  zero_biases=True):
    """Draw weight ``attribute`` of ``estimator``'s plan from ``seed``, assign it, zero its biases.

    Also leaves an ``AutoInitInitializer`` (and with ``constrain_weights`` a
    ``CenteredUnitNorm``) on the layer, so a rebuilt copy draws the same
    values. Calling it again with the same seed after the plan's variance
    changed redraws the same directions at the new scale; pass ``unit``
    (``unit_draw`` of this seed and shape) to skip drawing it again, and
    ``zero_biases=False`` when they are zero already.
    """
    variance = estimator.weight_plan[attribute][0]
    owner, name = estimator.weight_owner(attribute)
    variable = weight_variable(owner, name)
    shape = tuple(variable.shape)
    initializer = AutoInitInitializer(distribution, variance, seed)
    drawn_here = unit is None
    if drawn_here:
        unit = unit_draw(distribution, shape, initializer.seed)
    value = scale_draw(distribution, unit, variance, shape, in_place=drawn_here)
    if constrain_weights:
        fan = math.prod(shape[:-1]) if len(shape) > 1 else 1
        constraint = CenteredUnitNorm(gain=math.sqrt(variance * fan))
        value = constraint(value)
        variable.constraint = constraint
        setattr(owner, name + "_constraint", constraint)
    variable.assign(value)
    init_owner, init_attribute = estimator.initializer_attribute(attribute)
    setattr(init_owner, init_attribute, initializer)
    for bias_name in estimator.bias_attributes if zero_biases else ():
        bias = getattr(owner, bias_name, None)
        if isinstance(bias, keras.Variable):
            bias.assign(keras.ops.zeros(bias.shape, dtype=bias.dtype))
            setattr(owner, bias_name + "_initializer", keras.initializers.Zeros())


def apply_plan(estimator, distribution, seeds, constrain_weights):
    """Draw and assign every weight in ``estimator.weight_plan``; zero its biases.

    ``seeds`` is an iterator of integer seeds, one consumed per weight.
    Returns the number of weights assigned.
    """
    assigned = 0
    for attribute in estimator.weight_plan:
        assign_weight(estimator, attribute, distribution, next(seeds), constrain_weights)
        assigned += 1
    return assigned
