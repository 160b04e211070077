"""Validation of AutoInit's options.

Example:
    >>> validate_weight_init_config({"distribution": "uniform"})["distribution"]
    'uniform'
"""

import math
import numbers

from autoinit_nas.maths.sanitize import MOMENT_LIMIT
from autoinit_nas.estimators.base import DEFAULT_ESTIMATOR_CONFIG

DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform", "orthogonal")


def _positive_int(key, value):
    # The original library documents 1e7 and 1e4: accept floats that are whole.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{key}` must be a positive integer. Received: {key}={value!r}")
    if not math.isfinite(value) or value < 1 or float(value) != int(value):
        raise ValueError(f"`{key}` must be a positive integer. Received: {key}={value!r}")
    return int(value)


def validate_probe_batch(value):
    """``probe_batch`` as an int >= 1, or a ValueError saying what was received.

    Example:
        >>> validate_probe_batch(32)
        32
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            "`probe_batch` must be a positive integer (the batch size you train with). "
            f"Received: probe_batch={value!r}"
        )
    return int(value)


def validate_mapping(name, value):
    """``value`` as a dict (None: empty), or a TypeError naming ``name``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(
            f"`{name}` must be a dict or None. Received: {value!r} of type {type(value).__name__}"
        )
    return dict(value)


def validate_weight_init_config(config):
    """Return ``config`` with defaults filled in, or raise ValueError.

    Valid keys: distribution, constrain_weights, monte_carlo_samples,
    recurrent_monte_carlo_samples, seed, sampling_seed.
    """
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValueError(
            "`weight_init_config` must be a dict or None. "
            f"Received: {config!r} of type {type(config).__name__}"
        )
    unknown = sorted(set(config) - set(DEFAULT_ESTIMATOR_CONFIG))
    if unknown:
        raise ValueError(
            f"Unknown `weight_init_config` keys: {unknown}. "
            f"Valid keys: {sorted(DEFAULT_ESTIMATOR_CONFIG)}"
        )
    result = dict(DEFAULT_ESTIMATOR_CONFIG)
    result.update(config)
    if result["distribution"] not in DISTRIBUTIONS:
        raise ValueError(
            f"`distribution` must be one of {list(DISTRIBUTIONS)}. "
            f"Received: distribution={result['distribution']!r}"
        )
    if not isinstance(result["constrain_weights"], bool):
        raise ValueError(
            "`constrain_weights` must be True or False. "
            f"Received: constrain_weights={result['constrain_weights']!r}"
        )
    for key in ("monte_carlo_samples", "recurrent_monte_carlo_samples"):
        result[key] = _positive_int(key, result[key])
    for key in ("seed", "sampling_seed"):
        seed = result[key]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"`{key}` must be a non-negative integer or None. Received: {key}={seed!r}")
    return result


def validate_moment(name, value, allow_zero=True):
    """A finite float within float32's range (non-negative for variances)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    if abs(value) > MOMENT_LIMIT:
        raise ValueError(
            f"`{name}` must be at most {MOMENT_LIMIT:.4g} in magnitude (float32's range: "
            f"AutoInit draws float32 weights). Received: {name}={value!r}"
        )
    if name != "input_data_mean" and (value < 0 or (value == 0 and not allow_zero)):
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"`{name}` must be {bound}. Received: {name}={value!r}")
    return float(value)
