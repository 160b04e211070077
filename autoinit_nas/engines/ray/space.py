"""keras-tuner search spaces as Ray Tune ``param_space``s, and models built back from a trial's config.

Search spaces are ``build(hp)`` functions on keras-tuner's hp API; this room
maps each hyperparameter to a Tune domain and turns a Tune config back into
the same model.
"""

import math

from autoinit_nas.trials.arms import ARMS


def paired_search(**kwargs):
    """Tune's ``BasicVariantGenerator`` sampling once per grid combination.

    With ``param_space_from_space(..., init=("autoinit", "default"))`` every
    sampled architecture runs once per arm: the random hyperparameters are
    drawn once and kept constant across the ``init`` grid.

    Example:
        >>> type(paired_search()).__name__
        'BasicVariantGenerator'
    """
    from ray.tune.search.basic_variant import BasicVariantGenerator

    kwargs.setdefault("constant_grid_search", True)
    return BasicVariantGenerator(**kwargs)


def param_space_from_space(build, hyperparameters=None, init=None):
    """A Ray Tune ``param_space`` with the hyperparameters ``build(hp)`` declares.

    Runs ``build`` once on a ``keras_tuner.HyperParameters`` (a copy of
    ``hyperparameters`` when given, so entries declared there first narrow or
    fix the space, as with a keras-tuner tuner's ``hyperparameters``) and maps
    each hyperparameter to a Tune domain:

    - ``Int``: ``tune.randint(min, max + 1)`` (step 1), ``tune.lograndint(min,
      max + 1)`` (log, no step), else ``tune.choice`` over keras-tuner's own
      values (``step`` additive, or multiplicative for log sampling);
    - ``Float``: ``tune.uniform`` / ``tune.loguniform`` (``sampling="log"``),
      reverse-log sampling through ``tune.sample_from``, ``tune.choice`` over the
      stepped values when a ``step`` is given;
    - ``Choice``: ``tune.choice(values)``; ``Boolean``: ``tune.choice([True,
      False])``; ``Fixed``: the value itself.

    Example:
        >>> import search_spaces
        >>> space = param_space_from_space(search_spaces.get("mlp")((8,), 2), init=("autoinit", "default"))
        >>> sorted(space)[:3], type(space["depth"]).__name__
        (['activation', 'depth', 'dropout'], 'Integer')

    Args:
        build: a function (or ``SearchSpace``) ``build(hp) -> keras.Model``
            using only keras-tuner's hp API.
        hyperparameters: optional ``keras_tuner.HyperParameters`` declared
            beforehand (``hp.Fixed``, narrower ranges).
        init: None (no ``init`` entry: every trial is "autoinit"), one arm
            ("autoinit" or "default"), or several (a ``tune.grid_search``
            over them; use ``paired_search()`` to pair them).
    """
    from ray import tune

    hp = _declare(build, hyperparameters)
    space = {}
    for parameter in hp.space:
        if parameter.name in space:
            continue  # conditional duplicates: the first declaration wins
        space[parameter.name] = _to_domain(parameter, tune)
    if init is not None:
        arms = [init] if isinstance(init, str) else list(init)
        for arm in arms:
            if arm not in ARMS:
                raise ValueError(f"`init` must name arms among {ARMS}. Received: init={init!r}")
        if "init" in space:
            raise ValueError("The search space declares a hyperparameter named 'init'; it clashes with the arm.")
        space["init"] = arms[0] if len(arms) == 1 else tune.grid_search(arms)
    return space


def build_from_config(build, config, hyperparameters=None):
    """Build the model ``config`` (a Ray trial's config) describes, with the same ``build(hp)``.

    The config's values are put into a ``keras_tuner.HyperParameters`` (a copy
    of ``hyperparameters`` when given) before ``build`` runs: keras-tuner keeps
    a value already present when the build registers a hyperparameter, so each
    ``hp.Int``/``hp.Choice``/... returns the config's value, and any the config
    lacks takes its default. Entries that name no hyperparameter (``init``, ...)
    are ignored by the build. NumPy scalars are made Python values first.

    Example:
        >>> import search_spaces
        >>> build = search_spaces.get("mlp")((8,), 2)
        >>> model = build_from_config(build, {"depth": 3, "units": 16, "init": "default"})
        >>> sum(type(layer).__name__ == "Dense" for layer in model.layers)
        4
    """
    import keras_tuner

    hp = keras_tuner.HyperParameters() if hyperparameters is None else hyperparameters.copy()
    hp.values.update({str(key): _plain(value) for key, value in dict(config or {}).items()})
    return build(hp)


def _declare(build, hyperparameters):
    import keras_tuner

    if not callable(build):
        raise TypeError(f"`build` must be a function build(hp). Received: {build!r}")
    if hyperparameters is not None and not isinstance(hyperparameters, keras_tuner.HyperParameters):
        raise TypeError(
            "`hyperparameters` must be a keras_tuner.HyperParameters or None. "
            f"Received: {type(hyperparameters).__name__}"
        )
    hp = keras_tuner.HyperParameters() if hyperparameters is None else hyperparameters.copy()
    build(hp)
    return hp


def _to_domain(parameter, tune):
    from keras_tuner.engine import hyperparameters as kt_hp

    name = parameter.name
    if isinstance(parameter, kt_hp.Fixed):
        return parameter.value
    if isinstance(parameter, kt_hp.Boolean):
        return tune.choice([True, False])
    if isinstance(parameter, kt_hp.Choice):
        return tune.choice(list(parameter.values))
    if isinstance(parameter, kt_hp.Int):
        low, high, step, sampling = parameter.min_value, parameter.max_value, parameter.step, parameter.sampling
        if sampling == "linear" and step in (None, 1):
            return tune.randint(low, high + 1)
        if sampling == "log" and step is None:
            return tune.lograndint(low, high + 1)
        if step is None:  # reverse_log without step
            return tune.sample_from(_ReverseLog(low, high, integer=True))
        return tune.choice([int(value) for value in parameter.values])
    if isinstance(parameter, kt_hp.Float):
        low, high, step, sampling = parameter.min_value, parameter.max_value, parameter.step, parameter.sampling
        if step is not None:
            return tune.choice([float(value) for value in parameter.values])
        if sampling == "linear":
            return tune.uniform(low, high)
        if sampling == "log":
            return tune.loguniform(low, high)
        return tune.sample_from(_ReverseLog(low, high, integer=False))
    raise TypeError(
        f"Hyperparameter '{name}' is a {type(parameter).__name__}; param_space_from_space supports "
        "Int, Float, Choice, Boolean and Fixed."
    )


class _ReverseLog:
    """keras-tuner's reverse-log sampling (dense near the maximum) for ``tune.sample_from``."""

    def __init__(self, low, high, integer):
        self.low, self.high, self.integer = low, high, integer

    def __call__(self, spec=None):
        import random

        high = self.high + 1 if self.integer else self.high
        value = high + self.low - self.low * math.pow(high / self.low, 1.0 - random.random())
        return min(int(value), self.high) if self.integer else value


def _plain(value):
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


