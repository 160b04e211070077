"""What a study trains: spaces x datasets x arms x candidates x epochs, read from a config and flags.

A study config (``autoinit_nas/configs/study-*.json``, ``"kind": "study"``) names
the spaces (each a registered search space with options), the offline
datasets, the init arms, the candidates sampled per space and dataset, the
epochs every run trains, the short budgets at which fidelity is measured, and
the simulated-search sizes ``ks``. Command-line flags override it.
"""

import dataclasses
import os

from autoinit_nas.trials.arms import ARMS

DEFAULTS = {
    "arms": ["default", "he", "lecun", "lsuv", "autoinit-scalar", "autoinit"],
    "candidates": 12, "epochs": 6, "budgets": [1, 2, 4], "ks": [8, 16], "batch_size": 64,
    "lsuv_batch": None, "objective": "val_accuracy", "seed": 0, "hyperparameters": {}, "test_fraction": 0.2,
    "bn_recalibrate": False,
}


@dataclasses.dataclass
class StudySpec:
    """One study's design and where it lives.

    Example:
        >>> spec = StudySpec(spaces=[{"name": "h", "space": "heterogeneous"}], datasets=[{"name": "digits"}],
        ...                  arms=["he", "autoinit"], candidates=3, epochs=2, budgets=[1], out="out/s")
        >>> spec.validate().runs
        12

    Attributes:
        spaces: [{"name", "space", "space_options", "hyperparameters", "datasets"}]; ``name`` labels
            the space in tables; the optional ``hyperparameters`` narrow that space only and
            ``datasets`` keeps it to those datasets (default: every dataset).
        datasets: [{"name", "limit"}] of ``autoinit_nas.datasets``.
        arms: init arms (``autoinit_nas.trials.arms.ARMS``), trained for every candidate.
        candidates: candidates sampled per (space, dataset).
        epochs: epochs of every run (E): the ranked run's test accuracy and the
            reference run's are read there.
        budgets: short budgets b (epochs) for fidelity and simulated searches.
        ks: candidates per simulated search.
        batch_size: training batch size (AutoInit probes at it).
        lsuv_batch: examples of x_train LSUV measures on (None: ``batch_size``).
        objective: the score (a Keras log name, higher is better).
        seed: mixed into candidate sampling and every trial seed.
        hyperparameters: overrides applied to every space (fixed values, choices, ranges).
        test_fraction: share of each dataset held out as the test split (never ranked or selected on).
        bn_recalibrate: recompute BatchNorm moving statistics on training batches before every evaluation.
        out: the study's folder.
        address: a Ray cluster address (None: a local Ray).
    """

    spaces: list
    datasets: list
    arms: list = dataclasses.field(default_factory=lambda: list(DEFAULTS["arms"]))
    candidates: int = 12
    epochs: int = 6
    budgets: list = dataclasses.field(default_factory=lambda: [1, 2, 4])
    ks: list = dataclasses.field(default_factory=lambda: [8, 16])
    batch_size: int = 64
    lsuv_batch: int = None
    objective: str = "val_accuracy"
    seed: int = 0
    hyperparameters: dict = dataclasses.field(default_factory=dict)
    test_fraction: float = 0.2
    bn_recalibrate: bool = False
    out: str = "out/study"
    address: str = None
    description: str = ""
    expected_cost: str = ""

    @property
    def runs(self):
        """Training runs the study holds: cells x candidates x arms x 2 (ranked and reference run)."""
        return len(self.cells()) * self.candidates * len(self.arms) * 2

    def validate(self):
        """``self`` after checking every field; raises ValueError naming the bad one."""
        unknown = [arm for arm in self.arms if arm not in ARMS]
        if not self.arms or unknown or len(set(self.arms)) != len(self.arms):
            raise ValueError(f"`arms` must be distinct names from {list(ARMS)}. Received: arms={self.arms!r}")
        for name in ("candidates", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        bad = [b for b in self.budgets if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= self.epochs]
        if not self.budgets or bad:
            raise ValueError(
                f"`budgets` must be epochs between 1 and epochs={self.epochs}. Received: budgets={self.budgets!r}"
            )
        bad_ks = [k for k in self.ks if isinstance(k, bool) or not isinstance(k, int) or k < 1]
        if not self.ks or bad_ks:
            raise ValueError(f"`ks` must be positive ints (candidates per search). Received: ks={self.ks!r}")
        if isinstance(self.test_fraction, bool) or not 0.0 < float(self.test_fraction) < 0.8:
            raise ValueError(f"`test_fraction` must lie in (0, 0.8). Received: test_fraction={self.test_fraction!r}")
        if not isinstance(self.bn_recalibrate, bool):
            raise ValueError(f"`bn_recalibrate` must be true or false. Received: bn_recalibrate={self.bn_recalibrate!r}")
        if not self.spaces or not self.datasets:
            raise ValueError(
                f"A study needs at least one space and one dataset. Received: spaces={self.spaces!r}, "
                f"datasets={self.datasets!r}"
            )
        for entry in self.spaces:
            if not isinstance(entry, dict) or "space" not in entry:
                raise ValueError(f"Each space must be a dict with a 'space' key. Received: {entry!r}")
        if not self.cells():
            raise ValueError(
                f"No (space, dataset) cell is left: each space's 'datasets' excludes every dataset. Received: "
                f"spaces={[(s['name'], s.get('datasets')) for s in self.spaces]}, "
                f"datasets={[d['name'] for d in self.datasets]}"
            )
        return self

    def cells(self):
        """[(space entry, dataset entry)] in config order; each holds ``candidates`` candidates.

        A space entry's ``"datasets"`` list (names) keeps that space to those datasets.
        """
        return [(space, data) for space in self.spaces for data in self.datasets
                if not space.get("datasets") or data["name"] in space["datasets"]]


def _pick(entries, wanted, kind):
    """The config's entries named ``wanted`` (comma-separated); a name it lacks becomes a plain entry."""
    chosen = []
    for name in [part.strip() for part in wanted.split(",") if part.strip()]:
        # A config's own label wins; a registry name takes every entry built on it.
        found = [entry for entry in entries if entry.get("name") == name]
        found = found or [entry for entry in entries if entry.get(kind) == name]
        chosen.extend(found or [{"name": name, kind: name}])
    return chosen


def load_spec(config=None, **overrides):
    """The ``StudySpec`` of ``config`` (a name in autoinit_nas/configs or a path) with ``overrides``.

    Overrides that are None are ignored; ``space`` and ``data`` (comma
    separated names) keep only those spaces or datasets (a name the config
    lacks is taken with its default options).

    Example:
        >>> spec = load_spec("study-quick", candidates=3, epochs=2, budgets=[1], out="out/tiny")
        >>> spec.candidates, spec.epochs, len(spec.spaces) > 0
        (3, 2, True)
    """
    from autoinit_nas import configs

    values = dict(DEFAULTS)
    if config is not None:
        loaded = configs.get(config)
        if loaded.get("kind") not in (None, "study"):
            raise ValueError(f"Config {config!r} is a {loaded.get('kind')!r} config, not a study config.")
        values.update({key: value for key, value in loaded.items() if key != "kind"})
    overrides = {key: value for key, value in overrides.items() if value is not None}
    space, data = overrides.pop("space", None), overrides.pop("data", None)
    values.update(overrides)
    values.setdefault("spaces", [])
    values.setdefault("datasets", [])
    spaces = [dict(entry, name=entry.get("name", entry["space"])) for entry in values["spaces"]]
    datasets = [dict(entry) if isinstance(entry, dict) else {"name": entry} for entry in values["datasets"]]
    if space is not None:
        spaces = _pick(spaces, space, "space")
    if data is not None:
        datasets = [dict(entry, name=entry.get("name", entry.get("data"))) for entry in _pick(datasets, data, "data")]
    values["spaces"], values["datasets"] = spaces, datasets
    known = {field.name for field in dataclasses.fields(StudySpec)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"Unknown study setting(s) {unknown}. Expected some of: {sorted(known)}.")
    if values.get("out"):
        values["out"] = os.fspath(values["out"])
    return StudySpec(**values).validate()
