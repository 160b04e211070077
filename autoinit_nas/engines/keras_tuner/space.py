"""Hyperparameter overrides (plain JSON: a value, a list, a range) as keras-tuner declarations.

Sweeps narrow a search space with such overrides; both engines read spaces
through keras-tuner's ``HyperParameters``, so the translation lives here.
"""

import keras
import keras_tuner


def check_hyperparameter(name, value):
    """Raise ``ValueError`` unless ``value`` is a fixed value, a non-empty choice list or a range dict.

    Example:
        >>> check_hyperparameter("depth", {"min": 2, "max": 8})
    """
    if isinstance(value, (str, int, float, bool)):
        return
    if isinstance(value, list) and value and all(isinstance(v, (str, int, float, bool)) for v in value):
        return
    if isinstance(value, dict) and {"min", "max"} <= set(value) and set(value) <= {"min", "max", "step", "sampling"}:
        return
    raise ValueError(
        f"Hyperparameter '{name}' must be a value (fixed), a non-empty list (a choice) or "
        f'{{"min": ..., "max": ..., "step": ..., "sampling": ...}} (a range). Received: {name}={value!r}'
    )


def hyperparameters_from_overrides(overrides):
    """A ``keras_tuner.HyperParameters`` declaring ``overrides`` (see ``autoinit_nas.configs``).

    Example:
        >>> hp = hyperparameters_from_overrides({"depth": {"min": 2, "max": 8}, "units": [16, 32],
        ...                                      "normalization": "none"})
        >>> [(h.name, type(h).__name__) for h in hp.space]
        [('depth', 'Int'), ('units', 'Choice'), ('normalization', 'Fixed')]
    """
    hp = keras_tuner.HyperParameters()
    for name, value in overrides.items():
        check_hyperparameter(name, value)
        if isinstance(value, list):
            hp.Choice(name, value)
        elif isinstance(value, dict):
            low, high = value["min"], value["max"]
            whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high))
            options = {key: value[key] for key in ("step", "sampling") if key in value}
            if whole and not isinstance(options.get("step", 1), float):
                hp.Int(name, low, high, **options)
            else:
                hp.Float(name, float(low), float(high), **options)
        else:
            hp.Fixed(name, value)
    return hp


def space_hyperparameters(build):
    """Names of the hyperparameters ``build`` registers (from one default build).

    Example:
        >>> import search_spaces
        >>> "depth" in space_hyperparameters(search_spaces.get("mlp")((8,), 2))
        True
    """
    hp = keras_tuner.HyperParameters()
    build(hp)
    keras.backend.clear_session()
    return list(hp.values)
