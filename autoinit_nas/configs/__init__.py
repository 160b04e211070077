"""Named sweep and study configurations: one JSON file per name in this folder.

A study config says ``"kind": "study"`` and is read by ``autoinit_nas.study``;
every other config is a sweep config:

A config holds any ``autoinit_nas.sweeps.SweepSpec`` field except ``out``
and ``config`` (``space``, ``data``, ``engine``, ``trials``, ``epochs``,
``init``, ``seed``, ``batch_size``, ``objective``, ``limit``,
``hyperparameters``, ``space_options``, ``description``). Command-line flags
override it.

``hyperparameters`` narrows the search space, by name: a plain value fixes
a hyperparameter (``"normalization": "none"``), a list makes it a choice
among those values (``"activation": ["relu", "tanh"]``), and
``{"min": 2, "max": 30}`` (ints make an Int, floats a Float; optional
``step`` and ``sampling``: "linear", "log") sets its range. Hyperparameters
not named keep the space's own definition.

Example:
    >>> from autoinit_nas import configs
    >>> "demo" in configs.names()
    True
    >>> configs.get("demo")["space"]
    'mlp'
"""

import json
import os

FOLDER = os.path.dirname(os.path.abspath(__file__))


def names():
    """Names of the bundled configs, sorted."""
    return sorted(name[:-5] for name in os.listdir(FOLDER) if name.endswith(".json"))


def get(name_or_path):
    """The config dict called ``name_or_path`` (a bundled name, or a path to a JSON file).

    Raises:
        ValueError: no such config (the message lists the bundled names), or
            the file is not a JSON object.
    """
    path = name_or_path
    if not (os.sep in str(name_or_path) or str(name_or_path).endswith(".json")):
        path = os.path.join(FOLDER, f"{name_or_path}.json")
    if not os.path.isfile(path):
        raise ValueError(
            f"Unknown sweep config '{name_or_path}'. Expected one of: {', '.join(names())}, or a path "
            f"to a .json file. Received: {name_or_path!r}"
        )
    with open(path, encoding="utf-8") as stream:
        try:
            config = json.load(stream)
        except ValueError as error:
            raise ValueError(f"Sweep config '{path}' is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"Sweep config '{path}' must hold a JSON object. Received: {type(config).__name__}")
    return config
