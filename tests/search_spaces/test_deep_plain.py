"""The deep-plain space: 8-40 weighted layers, no normalization, its activations, skips, vectors and images."""

import keras
import keras_tuner
import numpy as np
import pytest

import search_spaces
from search_spaces import deep_plain

NORMALIZATION = (keras.layers.BatchNormalization, keras.layers.LayerNormalization,
                 keras.layers.GroupNormalization, keras.layers.UnitNormalization)
INPUTS = {"vector": (40,), "image": (8, 8, 1)}


def hp_with(**values):
    hp = keras_tuner.HyperParameters()
    hp.values.update(values)  # how a Ray trial fills hp from its config
    return hp


def sampled_values(count):
    hp = keras_tuner.HyperParameters()
    deep_plain.space((4,), 2)(hp)
    return [{p.name: p.random_sample(seed) for p in hp.space} for seed in range(count)]


def test_registered_as_deep_plain():
    assert "deep-plain" in search_spaces.names()
    assert search_spaces.get("deep-plain") is deep_plain.space


def test_hyperparameters_span_the_promised_ranges():
    hp = keras_tuner.HyperParameters()
    deep_plain.space((4,), 2)(hp)
    space = {p.name: p for p in hp.space}
    assert list(space) == ["depth", "width", "skip", "activation", "learning_rate"]
    assert (space["depth"].min_value, space["depth"].max_value) == (8, 40)
    assert set(space["activation"].values) == {"relu", "selu", "tanh", "gelu", "swish", "sigmoid"}
    assert all(type(p).__name__ in {"Int", "Float", "Choice", "Boolean"} and not p.conditions for p in hp.space)


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_sampled_candidates_build_plain_and_within_depth(kind):
    shape = INPUTS[kind]
    depths = []
    for values in sampled_values(3) + [dict(sampled_values(1)[0], depth=40, width=16, skip=True)]:
        model = deep_plain.space(shape, 10)(hp_with(**values))
        assert deep_plain.weighted_layers(model) == values["depth"]
        assert not any(isinstance(layer, NORMALIZATION) for layer in model.layers)
        weighted = (keras.layers.Conv2D if kind == "image" else keras.layers.Dense)
        assert sum(isinstance(layer, weighted) for layer in model.layers) == values["depth"] - (kind == "image")
        activations = {layer.get_config()["activation"] for layer in model.layers
                       if isinstance(layer, keras.layers.Activation) and layer.name != "probabilities"}
        assert activations == {values["activation"]}
        adds = sum(isinstance(layer, keras.layers.Add) for layer in model.layers)
        assert adds == (values["depth"] - 2 if values["skip"] else 0)
        depths.append(values["depth"])
    assert all(8 <= depth <= 40 for depth in depths) and len(set(depths)) > 1
    x = np.zeros((2,) + shape, "float32")
    assert model.predict(x, verbose=0).shape == (2, 10)


def test_other_ranks_are_flattened():
    model = deep_plain.space((5, 4), 3)(hp_with(depth=8))
    assert isinstance(model.layers[1], keras.layers.Flatten) and model.output_shape == (None, 3)
