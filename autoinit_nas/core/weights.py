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
# Distributions whose draw is the unit draw times one float32 factor.
NORMAL_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal")
# Factors that power-of-two draws are rescaled from and to (exact products:
# unit values times these stay far from float32's subnormals and overflow).
_EXACT_FACTORS = (2.0**-40, 2.0**40)
# Normal weights above this many values are drawn and assigned in blocks of
# rows on TensorFlow (4 MB each), so no full-size host copy of a large kernel
# is made; the values are the whole draw's.
ASSIGN_BLOCK = 2**20


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
        _redraw_outside(values.reshape(-1), rng)
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


def _redraw_outside(flat, rng):
    """Redraw, in place and in index order, the values of ``flat`` outside +-2 until none is.

    Only the positions drawn last can be outside, so each round reads those
    alone (the whole weight is scanned once, not once per round); the draws
    are those of redrawing every outside value in index order, round after round.
    """
    positions = np.flatnonzero(_outside(flat))
    while positions.size:
        flat[positions] = rng.standard_normal(positions.size, dtype=np.float32)
        positions = positions[_outside(flat[positions])]


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
    if distribution in NORMAL_DISTRIBUTIONS:
        factor = normal_factor(distribution, variance)
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


def normal_factor(distribution, variance):
    """The float32 factor ``scale_draw`` multiplies a normal distribution's unit draw by."""
    std = math.sqrt(float(variance))
    return np.float32(std / TRUNCATED_NORMAL_STD if distribution == "truncated_normal" else std)


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
    target = _blocked_target(variable, distribution) if drawn_here and not constrain_weights else None
    if target is not None:
        _assign_normal_blocks(target, distribution, seed, normal_factor(distribution, variance))
        _leave_trace(estimator, attribute, initializer, zero_biases)
        return
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
    _leave_trace(estimator, attribute, initializer, zero_biases)


def _leave_trace(estimator, attribute, initializer, zero_biases):
    """Set the weight's initializer attribute; zero the layer's biases and set theirs."""
    init_owner, init_attribute = estimator.initializer_attribute(attribute)
    setattr(init_owner, init_attribute, initializer)
    owner, _ = estimator.weight_owner(attribute)
    for bias_name in estimator.bias_attributes if zero_biases else ():
        bias = getattr(owner, bias_name, None)
        if isinstance(bias, keras.Variable):
            bias.assign(keras.ops.zeros(bias.shape, dtype=bias.dtype))
            setattr(owner, bias_name + "_initializer", keras.initializers.Zeros())


def assign_power_of_two(estimator, attribute, distribution, seed):
    """Assign the unit draw of ``seed`` times a power of two near the plan's factor; return it, or None.

    For a weight that will be rescaled once measured (probe propagation):
    multiplying by a power of two is exact, so ``finish_power_of_two`` can
    later multiply the variable, on its device, by ``factor / power`` and
    hold exactly ``draw(distribution, variance, shape, seed)`` at whatever
    variance the plan says then: the weight is drawn and sent to the device
    once. The weight's variance meanwhile is ``power_variance(distribution,
    power)``; its biases are zeroed. None (nothing assigned) where that
    exactness is not guaranteed: other distributions, a float32 factor near
    the subnormals or overflow, a variable that is not float32.
    """
    if distribution not in NORMAL_DISTRIBUTIONS:
        return None
    variance = estimator.weight_plan[attribute][0]
    factor = float(normal_factor(distribution, variance))
    owner, name = estimator.weight_owner(attribute)
    variable = weight_variable(owner, name)
    if not _EXACT_FACTORS[0] <= factor <= _EXACT_FACTORS[1] or variable.dtype != "float32":
        return None
    power = 2.0 ** round(math.log2(factor))
    target = _blocked_target(variable, distribution)
    if target is not None:
        _assign_normal_blocks(target, distribution, seed, np.float32(power))
    else:
        unit = unit_draw(distribution, tuple(variable.shape), seed)
        unit *= np.float32(power)
        variable.assign(unit)
    _leave_trace(estimator, attribute, AutoInitInitializer(distribution, variance, seed), True)
    return power


def power_variance(distribution, power):
    """The variance of the values ``assign_power_of_two`` assigned with ``power``."""
    return (power * TRUNCATED_NORMAL_STD) ** 2 if distribution == "truncated_normal" else power**2


def finish_power_of_two(estimator, attribute, distribution, seed, power):
    """Bring a weight ``assign_power_of_two`` assigned to the plan's variance; returns the factor applied.

    The variable is multiplied in place by ``normal_factor / power`` (one
    float32 product: the values ``draw`` gives); a factor outside the exact
    range is drawn again instead. Sets the weight's initializer attribute.
    """
    variance = estimator.weight_plan[attribute][0]
    factor = normal_factor(distribution, variance)
    ratio = factor / np.float32(power)
    owner, name = estimator.weight_owner(attribute)
    if _EXACT_FACTORS[0] <= float(factor) <= _EXACT_FACTORS[1]:
        variable = weight_variable(owner, name)
        target = _blocked_target(variable, distribution)
        if target is not None:
            for rows in _row_indices(tuple(target.shape)):
                _write_rows(target, rows, target.sparse_read(rows) * ratio)
        else:
            variable.assign(keras.ops.multiply(variable.value, ratio))
        _leave_trace(estimator, attribute, AutoInitInitializer(distribution, variance, seed), False)
    else:
        assign_weight(estimator, attribute, distribution, seed, False, zero_biases=False)
    return float(ratio)


def _blocked_target(variable, distribution):
    """The float32 TensorFlow variable behind a large normal ``variable`` (block assignment), or None."""
    shape = tuple(variable.shape)
    if (distribution not in NORMAL_DISTRIBUTIONS or not shape or math.prod(shape) <= ASSIGN_BLOCK
            or keras.backend.backend() != "tensorflow"):
        return None
    import tensorflow as tf

    value = variable.value
    # A plain resource variable only: a distributed one keeps its replicas in sync on assign().
    plain = isinstance(value, tf.Variable) and getattr(value, "_distribute_strategy", None) is None
    return value if plain and value.dtype == tf.float32 else None


def _row_blocks(shape):
    """([(start, stop)] along the first axis, each about ``ASSIGN_BLOCK`` values; values per row)."""
    row = math.prod(shape[1:])
    step = max(1, ASSIGN_BLOCK // max(row, 1))
    return [(start, min(start + step, shape[0])) for start in range(0, shape[0], step)], row


def _row_indices(shape):
    """``_row_blocks`` as arrays of row indices."""
    return [np.arange(start, stop) for start, stop in _row_blocks(shape)[0]]


def _write_rows(target, rows, values):
    # A row scatter, not a slice assignment: TensorFlow's strided-slice
    # assignment (and read) of a variable is about 10x slower on CPU.
    import tensorflow as tf

    target.scatter_update(tf.IndexedSlices(values, rows))


def _assign_normal_blocks(target, distribution, seed, factor):
    """Assign ``unit_draw(distribution, shape, seed) * factor`` to TF variable ``target`` in blocks.

    The blocks are drawn in order from the one stream, and a truncated
    normal's redraws follow them, as in ``unit_draw``; the redrawn values
    are scattered to their positions. Same values, one block on the host.
    """
    shape = tuple(target.shape)
    rng = np.random.default_rng(seed)
    blocks, row = _row_blocks(shape)
    index_type = np.int32 if math.prod(shape) < 2**31 else np.int64
    outside = []
    for start, stop in blocks:
        values = rng.standard_normal((stop - start,) + shape[1:], dtype=np.float32)
        if distribution == "truncated_normal":
            outside.append((np.flatnonzero(_outside(values)) + start * row).astype(index_type))
        values *= factor
        _write_rows(target, np.arange(start, stop), values)
    positions = np.concatenate(outside) if outside else np.zeros(0, index_type)
    redrawn = np.full(positions.size, 3.0, np.float32)  # all outside: each is drawn again
    _redraw_outside(redrawn, rng)
    redrawn *= factor
    step = ASSIGN_BLOCK // 8
    for start in range(0, positions.size, step):
        indices = np.stack(np.unravel_index(positions[start:start + step], shape), axis=1)
        indices = indices.astype(index_type, copy=False)
        target.scatter_nd_update(indices, redrawn[start:start + step])


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
