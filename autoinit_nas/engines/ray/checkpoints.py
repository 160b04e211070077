"""A trial's checkpoint: its model's weights, its optimizer's state and where training stood.

``RayReportCallback`` saves one with each report when checkpoints are on;
``prepare_model`` loads the one Tune hands a restored trial
(``ray.tune.get_checkpoint()``). A checkpoint is a folder:

- ``model.weights.h5``: ``model.save_weights``;
- ``optimizer.npz``: the optimizer's variables in order (Adam's moments, the
  step count), when the model is compiled and its optimizer built;
- ``state.json``: ``epochs_completed``, ``arm``, ``trial_id`` (who saved it),
  ``architecture_id`` and the arm's ``history`` up to that epoch.
"""

import json
import os

import numpy as np

WEIGHTS_FILE = "model.weights.h5"
OPTIMIZER_FILE = "optimizer.npz"
STATE_FILE = "state.json"
# The optimizer's learning rate stays the one the trial compiled with (PBT may have just changed it).
KEPT_VARIABLES = ("learning_rate",)


def save(model, directory, state):
    """Write ``model``'s weights, its optimizer's variables and ``state`` (a JSON-safe dict) into ``directory``.

    Example:
        >>> import keras, tempfile
        >>> x = keras.Input((3,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> folder = tempfile.mkdtemp()
        >>> save(model, folder, {"epochs_completed": 1})
        >>> load(model, folder)["epochs_completed"]
        1
    """
    os.makedirs(directory, exist_ok=True)
    model.save_weights(os.path.join(directory, WEIGHTS_FILE))
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        arrays = {f"v{index}": np.asarray(variable.numpy()) for index, variable in enumerate(optimizer.variables)}
        np.savez(os.path.join(directory, OPTIMIZER_FILE), **arrays)
    with open(os.path.join(directory, STATE_FILE), "w", encoding="utf-8") as stream:
        json.dump(state, stream, indent=1, allow_nan=True)


def read_state(directory):
    """The ``state.json`` of the checkpoint in ``directory`` (``{}`` when it has none)."""
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


def load(model, directory):
    """Load the checkpoint in ``directory`` into ``model`` (and its optimizer); returns its state.

    The optimizer is built first when it is not yet; its learning rate keeps
    the value the model was compiled with.

    Raises:
        ValueError: the folder holds no weights, or the optimizer's variables
            do not match the checkpoint's (another optimizer or architecture).
    """
    weights = os.path.join(directory, WEIGHTS_FILE)
    if not os.path.exists(weights):
        raise ValueError(f"Expected a checkpoint folder with {WEIGHTS_FILE}. Received: {directory!r}")
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        model.load_weights(weights)
        return read_state(directory)
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    variables = list(optimizer.variables)
    kept = [(variable, variable.numpy()) for variable in variables if _name(variable) in KEPT_VARIABLES]
    model.load_weights(weights)  # Keras loads a built optimizer's variables too
    path = os.path.join(directory, OPTIMIZER_FILE)
    if os.path.exists(path):
        with np.load(path) as saved:
            values = [saved[f"v{index}"] for index in range(len(saved.files))]
        if len(values) != len(variables):
            raise ValueError(
                f"The checkpoint's optimizer has {len(values)} variables; this model's has {len(variables)} "
                f"(another optimizer or architecture). Received: {directory!r}"
            )
        for variable, value in zip(variables, values):
            variable.assign(value)
    for variable, value in kept:
        variable.assign(value)
    return read_state(directory)


def _name(variable):
    return str(getattr(variable, "path", None) or getattr(variable, "name", "")).rsplit("/", 1)[-1]
