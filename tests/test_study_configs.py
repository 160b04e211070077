"""The bundled study configs (draft schema) name arms, spaces and datasets that exist, and a design that fits."""

import keras_tuner
import pytest

import search_spaces
from autoinit_nas.init_methods import METHODS
from autoinit_nas import configs, datasets
from autoinit_nas.study.replay import hyperband_candidates

STUDIES = [name for name in configs.names() if configs.get(name).get("kind") == "study"]


def test_quick_and_full_studies_are_bundled():
    assert {"study-quick", "study-standard"} <= set(STUDIES)


@pytest.mark.parametrize("name", STUDIES)
def test_study_design_is_complete(name):
    config = configs.get(name)
    assert set(config["arms"]) <= set(METHODS) and {"default", "he", "lsuv", "autoinit"} <= set(config["arms"])
    assert len(config["spaces"]) >= 2 and len(config["datasets"]) >= 2
    assert all(0 < budget < config["epochs"] for budget in config["budgets"])
    assert config["epochs"] >= 3 * max(config["budgets"])  # the floor: E at least 3x the largest budget
    assert config["candidates"] >= max(max(config["ks"]), hyperband_candidates(config["epochs"], 3))
    assert 0 < config["test_fraction"] < 0.5
    assert config["expected_cost"]


@pytest.mark.parametrize("name", STUDIES)
def test_every_space_builds_on_every_dataset(name):
    config = configs.get(name)
    normalized = False
    for entry in config["spaces"]:
        for dataset in config["datasets"]:
            data = datasets.load(dataset["name"], limit=50)
            build = search_spaces.get(entry["space"])(data.input_shape, data.num_classes,
                                                     **entry.get("space_options", {}))
            hp = keras_tuner.HyperParameters()
            assert build(hp).output_shape == (None, data.num_classes)
            assert set(config.get("hyperparameters", {})) | set(entry.get("hyperparameters", {})) <= set(hp.values)
        options = entry.get("space_options", {}).get("normalizations")
        normalized = normalized or (options is not None and "none" not in options)
    assert normalized, "a study needs one space where every block is normalized"
