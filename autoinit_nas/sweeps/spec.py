"""What a sweep is: ``SweepSpec``, its validation, and the fields that identify it for resuming."""

import dataclasses

import search_spaces

from autoinit_nas.core.autoinit import AutoInit
from autoinit_nas.engines import ENGINES
from autoinit_nas.integrations.keras_tuner import check_hyperparameter, space_hyperparameters
from autoinit_nas.trials.arms import ARMS, INIT_MODES
from autoinit_nas import configs, datasets

PROPAGATIONS = ("probe", "scalar")
# Sweep settings that must match to resume a sweep (trials may grow); the engine's own
# identity options (keras-tuner's "tuner") join them (``SweepSpec.identity``).
IDENTITY = ("space", "data", "engine", "init", "seed", "epochs", "batch_size", "objective", "limit",
            "hyperparameters", "space_options", "propagation", "arms", "test_fraction")


@dataclasses.dataclass
class SweepSpec:
    """What to sweep, how long, and where to keep it.

    Args:
        space: a ``search_spaces`` name ("mlp", "cnn", ...).
        data: an ``autoinit_nas.datasets`` name ("digits", "wine", ...).
        engine: "keras-tuner" or "ray" (see ``engines()``).
        trials: candidates to train in total (a resumed sweep runs the missing ones).
        epochs: training epochs per candidate (and per arm).
        init: "autoinit", "default" or "compare" (both arms per candidate),
            or any one arm of ``autoinit_nas.trials.arms.ARMS``.
        arms: several arms per candidate, each from the same seed (overrides
            ``init``; the first is the one keras-tuner's objective follows).
        out: the sweep's directory.
        seed: seeds the search, every trial (via the trial's hyperparameters) and the data split.
        batch_size: training batch size.
        objective: metric the search optimizes and reports ("val_accuracy";
            names with "loss" or "error" are minimized).
        limit: at most this many training examples (None: all).
        hyperparameters: narrows the space by name (see ``autoinit_nas.configs``).
        space_options: extra keyword arguments of the space factory.
        propagation: AutoInit's propagation, "probe" (default) or "scalar" (the paper's).
        engine_options: the engine's own options (``ENGINES[engine].option_defaults()``):
            keras-tuner's ``{"tuner": "random" | "bayesian"}``, Ray's ``{"address": ...}``
            (None: ``RAY_ADDRESS`` or a local Ray). Configs and saved sweeps may
            give them as top-level keys (``"tuner": "bayesian"``).
        test_fraction: None (no test split), or the share of the data held out as a
            test split that the search never sees (per-arm searches hold out 0.2
            when None; ``autoinit_nas.sweeps.winners``).
        config: the name of the config this spec came from, if any.
        description: one line about the sweep.
    """

    space: str = "mlp"
    data: str = "digits"
    engine: str = "keras-tuner"
    trials: int = 10
    epochs: int = 2
    init: str = "compare"
    out: str = "out/sweep"
    seed: int = 0
    batch_size: int = 64
    objective: str = "val_accuracy"
    limit: int = None
    hyperparameters: dict = dataclasses.field(default_factory=dict)
    space_options: dict = dataclasses.field(default_factory=dict)
    propagation: str = "probe"
    engine_options: dict = dataclasses.field(default_factory=dict)
    arms: list = None
    test_fraction: float = None
    config: str = None
    description: str = ""

    @classmethod
    def from_config(cls, name, **overrides):
        """The spec of the named config (``autoinit_nas.configs``), with ``overrides`` (None values ignored)."""
        values = dict(configs.get(name))
        fields = {field.name for field in dataclasses.fields(cls)} - {"out", "config"}
        unknown = set(values) - fields - _option_names()
        if unknown:
            raise ValueError(
                f"Sweep config '{name}' has unknown keys {sorted(unknown)}. Expected some of: "
                f"{sorted(fields | _option_names())}"
            )
        values["config"] = name
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values):
        """The spec ``values`` describe (a config, or a saved ``sweep.json`` spec of any release).

        Top-level engine options (``"tuner"``, ``"address"``: the fields of
        earlier releases) move into ``engine_options`` when the spec's engine
        has them and are dropped otherwise; other unknown keys are dropped.

        Example:
            >>> SweepSpec.from_dict({"engine": "keras-tuner", "tuner": "bayesian", "address": None}).engine_options
            {'tuner': 'bayesian'}
        """
        fields = {field.name for field in dataclasses.fields(cls)}
        kept = {key: value for key, value in values.items() if key in fields}
        engine = ENGINES.get(kept.get("engine", cls.engine))
        own = set(engine.option_defaults()) if engine is not None else set()
        options = {key: value for key, value in values.items() if key in own and key not in fields}
        kept["engine_options"] = {**options, **dict(kept.get("engine_options") or {})}
        return cls(**kept)

    @property
    def direction(self):
        """"min" for losses and errors, else "max"."""
        name = self.objective.lower()
        return "min" if ("loss" in name or "error" in name) else "max"

    def validate(self):
        """Raise ``ValueError`` naming the first bad field; returns self."""
        if self.space not in search_spaces.names():
            raise ValueError(
                f"Unknown search space '{self.space}'. Expected one of: {', '.join(search_spaces.names())}. "
                f"Received: space={self.space!r}"
            )
        if self.data not in datasets.names(available_only=False):
            raise ValueError(
                f"Unknown dataset '{self.data}'. Expected one of: {', '.join(datasets.names())}. "
                f"Received: data={self.data!r}"
            )
        if self.engine not in ENGINES:
            raise ValueError(
                f"Unknown engine '{self.engine}'. Expected one of: {', '.join(ENGINES)}. Received: engine={self.engine!r}"
            )
        if self.init not in INIT_MODES:
            raise ValueError(f"`init` must be one of {INIT_MODES}. Received: init={self.init!r}")
        if self.arms is not None:
            chosen = list(self.arms)
            if not chosen or len(set(chosen)) != len(chosen) or any(arm not in ARMS for arm in chosen):
                raise ValueError(f"`arms` must be distinct names from {list(ARMS)}. Received: arms={self.arms!r}")
        if self.propagation not in PROPAGATIONS:
            raise ValueError(f"`propagation` must be one of {PROPAGATIONS}. Received: propagation={self.propagation!r}")
        if not isinstance(self.engine_options, dict):
            raise ValueError(f"`engine_options` must be a dict. Received: engine_options={self.engine_options!r}")
        ENGINES[self.engine].resolve_options(self.engine_options)
        for name in ("trials", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"`seed` must be an int. Received: seed={self.seed!r}")
        fraction = self.test_fraction
        if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
                                     or not 0.0 < fraction < 1.0):
            raise ValueError(f"`test_fraction` must be None or a number in (0, 1). Received: test_fraction={fraction!r}")
        if not isinstance(self.hyperparameters, dict) or not isinstance(self.space_options, dict):
            raise ValueError("`hyperparameters` and `space_options` must be dicts. Received: "
                             f"hyperparameters={self.hyperparameters!r}, space_options={self.space_options!r}")
        for name, value in self.hyperparameters.items():
            check_hyperparameter(name, value)
        return self

    @property
    def arm_list(self):
        """The arms every candidate trains under: ``arms``, else what ``init`` names ("compare": both)."""
        if self.arms:
            return tuple(self.arms)
        return ("autoinit", "default") if self.init == "compare" else (self.init,)

    def options(self):
        """The engine's options: ``engine_options`` over the engine's defaults, validated."""
        return ENGINES[self.engine].resolve_options(self.engine_options)

    def identity(self):
        """The fields (and engine options) that must match for a rerun on the same ``out`` to resume this sweep."""
        identity = {name: getattr(self, name) for name in IDENTITY}
        engine = ENGINES.get(self.engine)
        if engine is not None:
            identity.update(engine.identity_options(self.engine_options))
        return identity

    def load(self):
        """(dataset, build): the spec's dataset (its test split held out when ``test_fraction`` asks) and search space.

        ``ValueError`` for hyperparameter overrides the space does not have.
        """
        dataset = datasets.load(self.data, seed=self.seed, limit=self.limit, test_fraction=self.test_fraction)
        build = search_spaces.get(self.space)(dataset.input_shape, dataset.num_classes, **self.space_options)
        known = space_hyperparameters(build)
        unknown = sorted(set(self.hyperparameters) - set(known))
        if unknown:
            raise ValueError(
                f"The {self.space} space has no hyperparameter(s) {unknown}. Its hyperparameters: {known}"
            )
        return dataset, build

    def autoinit(self):
        """The ``AutoInit`` every trial of this sweep copies."""
        return AutoInit(propagation=self.propagation)


def _option_names():
    """Every registered engine's option names (accepted as top-level config keys)."""
    return {name for engine in ENGINES.values() for name in engine.option_defaults()}
