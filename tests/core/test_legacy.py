"""tf.keras 2 configs: the three NAS-generated anchor models and safe loading."""

import json
import pathlib

import keras
import numpy as np
import pytest

from autoinit_nas import AutoInit
from autoinit_nas.core import legacy

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
# name -> (parameters, layers incl. nested) from ../shared/anchor-models/README.md
ANCHORS = {"mnist": 1_041_318, "pmlb": 390_932, "toxicity": 352_385}


def anchor(name):
    return json.loads((DATA / f"{name}.json").read_text())["interpretation"]["model"]


def test_keras3_alone_rejects_the_anchors():
    for name in ANCHORS:
        with pytest.raises((ValueError, TypeError)):
            keras.Model.from_config(anchor(name)["config"])


@pytest.mark.parametrize("name", sorted(ANCHORS))
@pytest.mark.parametrize("form", ["json", "config", "class_and_config"])
def test_anchor_loads_and_initializes(name, form):
    model_json = anchor(name)
    given = {"json": json.dumps(model_json), "config": model_json["config"], "class_and_config": model_json}[form]
    model, estimates = AutoInit(weight_init_config={"seed": 0}).initialize_model(given, return_estimates=True)
    assert model.count_params() == ANCHORS[name]
    weights = [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]
    assert all(np.isfinite(w).all() for w in weights)
    assert all(np.isfinite(v) and v >= 0 for _, v in estimates.values())
    # The NAS file is not modified by loading it.
    assert "batch_input_shape" in json.dumps(anchor(name))


def test_nested_node_indices_are_shifted_for_nested_models_only():
    config = anchor("toxicity")["config"]
    converted, dropped = legacy.convert_functional_config(config)
    original_refs = {layer["config"]["name"]: layer["inbound_nodes"] for layer in config["layers"]}
    for layer in converted["layers"]:
        for node, old_node in zip(layer["inbound_nodes"], original_refs[layer["config"]["name"]]):
            for ref, old in zip(node, old_node):
                shift = 1 if ref[0].startswith("model_") else 0
                assert ref[1] == old[1] - shift
    assert dropped == {"GRU.implementation": 3, "GRU.time_major": 3}


def test_dropped_arguments_are_reported():
    with pytest.warns(UserWarning, match="time_major"):
        AutoInit(weight_init_config={"seed": 0}).initialize_model(anchor("toxicity"))


def keras2_lambda_config():
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    outputs = keras.layers.Dense(3, name="head")(outputs)
    return keras.Model(inputs, outputs).to_json()


def test_lambda_layers_are_refused_by_default_and_load_when_trusted():
    config = keras2_lambda_config()
    with pytest.raises(ValueError, match="safe_mode"):
        AutoInit().initialize_model(config)
    with pytest.warns(UserWarning, match="Lambda"):
        model = AutoInit(weight_init_config={"seed": 0}).initialize_model(config, safe_mode=False)
    out = model(np.ones((2, 4), "float32"))
    assert out.shape == (2, 3)
