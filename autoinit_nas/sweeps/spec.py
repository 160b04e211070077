"""What a sweep is: ``SweepSpec``, its validation, and the fields that identify it for resuming."""

import dataclasses

import search_spaces

from autoinit_nas.core.autoinit import AutoInit
from autoinit_nas.engines.keras_tuner.space import check_hyperparameter
from autoinit_nas.engines.keras_tuner.sweep import TUNERS
from autoinit_nas.trials.arms import ARMS, INIT_MODES
from autoinit_nas import configs, datasets
from autoinit_nas.sweeps.engines import ENGINES

PROPAGATIONS = ("probe", "scalar")
# Sweep settings that must match to resume a sweep (trials may grow).
IDENTITY = ("space", "data", "engine", "init", "seed", "epochs", "batch_size", "objective", "limit",
            "hyperparameters", "space_options", "tuner", "propagation", "arms")


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
        tuner: keras-tuner's search algorithm, "random" or "bayesian".
        propagation: AutoInit's propagation, "probe" (default) or "scalar" (the paper's).
        address: Ray cluster address for the ray engine (None: ``RAY_ADDRESS``
            or a local Ray).
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
    tuner: str = "random"
    address: str = None
    propagation: str = "probe"
    arms: list = None
    config: str = None
    description: str = ""

    @classmethod
    def from_config(cls, name, **overrides):
        """The spec of the named config (``autoinit_nas.configs``), with ``overrides`` (None values ignored)."""
        values = dict(configs.get(name))
        unknown = set(values) - {field.name for field in dataclasses.fields(cls)} - {"out", "config"}
        if unknown:
            raise ValueError(
                f"Sweep config '{name}' has unknown keys {sorted(unknown)}. Expected some of: "
                f"{sorted(field.name for field in dataclasses.fields(cls) if field.name not in ('out', 'config'))}"
            )
        values["config"] = name
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

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
        if self.tuner not in TUNERS:
            raise ValueError(f"`tuner` must be one of {TUNERS}. Received: tuner={self.tuner!r}")
        for name in ("trials", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"`seed` must be an int. Received: seed={self.seed!r}")
        if not isinstance(self.hyperparameters, dict) or not isinstance(self.space_options, dict):
            raise ValueError("`hyperparameters` and `space_options` must be dicts.")
        for name, value in self.hyperparameters.items():
            check_hyperparameter(name, value)
        return self

    @property
    def arm_list(self):
        """The arms every candidate trains under: ``arms``, else what ``init`` names ("compare": both)."""
        if self.arms:
            return tuple(self.arms)
        return ("autoinit", "default") if self.init == "compare" else (self.init,)

    def identity(self):
        """The fields that must match for a rerun on the same ``out`` to resume this sweep."""
        return {name: getattr(self, name) for name in IDENTITY}

    def autoinit(self):
        """The ``AutoInit`` every trial of this sweep copies."""
        return AutoInit(propagation=self.propagation)
