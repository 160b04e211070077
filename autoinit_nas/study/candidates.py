"""The study's candidates: sampled once per (space, dataset) from a fixed seed, the same on every rerun.

Sampling happens in the driver, before Ray, so a resumed or re-reported study
sees the very same candidates, and a candidate's id ("<space>/<dataset>/<i>")
names it in every table.
"""

import hashlib

import keras

import search_spaces
from autoinit_nas.integrations.keras_tuner import hyperparameters_from_overrides
from autoinit_nas import datasets


def _seed(*parts):
    digest = hashlib.sha256(repr(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


def space_of(space_entry, dataset):
    """The ``SearchSpace`` (a picklable ``build(hp)``) of a study space entry on ``dataset``.

    Example:
        >>> from autoinit_nas import datasets
        >>> space_of({"space": "mlp"}, datasets.load("wine")).name
        'mlp'
    """
    factory = search_spaces.get(space_entry["space"])
    return factory(dataset.input_shape, dataset.num_classes, **dict(space_entry.get("space_options") or {}))


def load_dataset(entry, seed, test_fraction=None):
    """The dataset of a study dataset entry ({"name", "limit"}), with a test split of ``test_fraction``."""
    return datasets.load(entry["name"], seed=seed, limit=entry.get("limit"), test_fraction=test_fraction)


def sample(build, overrides, count, seed, label):
    """``count`` hyperparameter dicts drawn from ``build``'s space, ``overrides`` applied.

    Every hyperparameter the space registers is drawn with its own seed from
    (``seed``, ``label``, candidate index, name), so candidates do not depend
    on how many are drawn or on the order of the space's declarations.

    Example:
        >>> import search_spaces
        >>> build = search_spaces.get("mlp")((8,), 2)
        >>> first = sample(build, {"units": 16}, 2, seed=0, label="a")
        >>> first == sample(build, {"units": 16}, 2, seed=0, label="a"), first[0]["units"]
        (True, 16)
    """
    hp = hyperparameters_from_overrides(overrides)
    build(hp)
    keras.backend.clear_session()
    declared = list(hp.space)
    fixed = {item.name for item in declared if type(item).__name__ == "Fixed"}
    candidates = []
    for index in range(count):
        values = {}
        for item in declared:
            if item.name in fixed:
                values[item.name] = item.value
            else:
                values[item.name] = item.random_sample(seed=_seed(seed, label, index, item.name))
        candidates.append({name: _plain(value) for name, value in values.items()})
    return candidates


def _plain(value):
    value = value.item() if hasattr(value, "item") else value
    # Float steps (dropout 0.1 * 3) print as 0.30000000000000004; keep the value the step meant.
    return round(value, 10) if isinstance(value, float) else value


def study_candidates(spec):
    """[{"candidate", "space", "dataset", "index", "values"}] for every cell of ``spec``, in order.

    Example:
        >>> from autoinit_nas.study.spec import StudySpec
        >>> spec = StudySpec(spaces=[{"name": "m", "space": "mlp"}], datasets=[{"name": "wine"}], candidates=2,
        ...                  arms=["he"], epochs=1, budgets=[1])
        >>> [c["candidate"] for c in study_candidates(spec)]
        ['m/wine/0', 'm/wine/1']
    """
    found = []
    for space_entry, data_entry in spec.cells():
        dataset = load_dataset(data_entry, spec.seed)
        build = space_of(space_entry, dataset)
        label = f"{space_entry['name']}/{data_entry['name']}"
        # A space entry's own "hyperparameters" narrow that space only (over the study-wide ones).
        overrides = dict(spec.hyperparameters, **(space_entry.get("hyperparameters") or {}))
        drawn = sample(build, overrides, spec.candidates, spec.seed, label)
        for index, values in enumerate(drawn):
            found.append({"candidate": f"{label}/{index}", "space": space_entry["name"],
                          "dataset": data_entry["name"], "index": index, "num_classes": dataset.num_classes,
                          "values": values})
    return found
