"""The search spaces: registry, builds across their ranges, the hp-only contract, errors."""

import pickle

import keras
import keras_tuner
import numpy as np
import pytest

import search_spaces
from autoinit_nas.integrations import records
from search_spaces.layers import PositionEmbedding
from tests.integrations.digits import SPACES


def make(name, compile=True):
    shape, _, options = SPACES[name]
    return search_spaces.get(name)(shape, 10, compile=compile, **options)


def hp_with(**values):
    hp = keras_tuner.HyperParameters()
    hp.values.update(values)  # how a Ray trial fills hp from its config
    return hp


# --- registry ----------------------------------------------------------------


def test_registry_lists_every_space():
    assert search_spaces.names() == ["cnn", "deep-plain", "heterogeneous", "mlp", "resnet", "transformer"]
    for name in SPACES:  # heterogeneous has its own tests (test_heterogeneous.py)
        assert make(name).name == name


def test_unknown_space_names_the_valid_ones():
    with pytest.raises(ValueError) as error:
        search_spaces.get("vit")
    message = str(error.value)
    assert "'vit'" in message
    for name in search_spaces.names():
        assert name in message


def test_space_name_must_be_a_string():
    with pytest.raises(TypeError, match="must be a string"):
        search_spaces.get(3)


# --- builds ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPACES))
def test_default_build_is_small_compiled_classifier(name):
    model = make(name)(keras_tuner.HyperParameters())
    assert model.output_shape == (None, 10)
    assert model.get_layer("logits").units == 10
    assert model.get_layer("probabilities").activation.__name__ == "softmax"
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss == "sparse_categorical_crossentropy"
    assert records.depth(model) <= 6


@pytest.mark.parametrize("name", sorted(SPACES))
def test_compile_false_leaves_model_uncompiled(name):
    assert not make(name, compile=False)(keras_tuner.HyperParameters()).compiled


@pytest.mark.parametrize("name", sorted(SPACES))
def test_only_flat_int_float_choice_boolean(name):
    hp = keras_tuner.HyperParameters()
    make(name)(hp)
    kinds = {type(parameter).__name__ for parameter in hp.space}
    assert kinds <= {"Int", "Float", "Choice", "Boolean"}
    assert all(not parameter.conditions for parameter in hp.space)
    for shared in ("activation", "normalization", "dropout", "learning_rate"):
        assert shared in hp.values
    activations = next(p for p in hp.space if p.name == "activation").values
    assert {"relu", "tanh", "selu", "gelu", "swish", "sigmoid"} <= set(activations)
    assert next(p for p in hp.space if p.name == "normalization").values == ["none", "batch", "layer"]


@pytest.mark.parametrize(
    "name, values, expected_depth",
    [
        # 50 hidden layers + logits.
        ("mlp", {"depth": 50, "units": 16, "skip": True, "normalization": "layer", "activation": "selu"}, 51),
        ("cnn", {"depth": 50, "filters": 8, "pooling": "max", "downsamples": 3, "head": "flatten",
                 "normalization": "batch", "activation": "sigmoid", "dropout": 0.2}, 51),
        # stem + 4 stages x 8 blocks x 2 convolutions + logits.
        ("resnet", {"stages": 4, "blocks": 8, "filters": 8, "block": "preactivation",
                    "stem_pooling": "none", "head": "global_max"}, 66),
        # stem pooling uses one of the three halvings of 8x8: 3 stages left.
        ("resnet", {"stages": 4, "blocks": 8, "filters": 8, "stem_pooling": "average"}, 50),
        # embedding + position + 12 x (attention + 2 Dense) + logits.
        ("transformer", {"depth": 12, "embed_dim": 16, "heads": 8, "ffn_multiplier": 4,
                         "norm_position": "post", "normalization": "batch", "pooling": "flatten"}, 39),
    ],
)
def test_deepest_candidates_build_and_run(name, values, expected_depth):
    model = make(name)(hp_with(**values))
    assert records.depth(model) == expected_depth
    shape, kind, _ = SPACES[name]
    x = np.zeros((2,) + shape, "int32" if kind == "tokens" else "float32")
    assert model.predict(x, verbose=0).shape == (2, 10)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_sampled_candidates_build(name):
    space = make(name)
    hp = keras_tuner.HyperParameters()
    space(hp)
    for seed in range(4):
        values = {p.name: p.random_sample(seed) for p in hp.space}
        for key, limit in (("depth", 6), ("blocks", 2)):
            if key in values:
                values[key] = min(values[key], limit)
        assert space(hp_with(**values)).output_shape == (None, 10)


def test_pooling_is_capped_by_the_input_size():
    model = make("cnn")(hp_with(depth=6, pooling="average", downsamples=3, head="flatten"))
    assert model.get_layer("logits").input.shape[-1] == 8  # 8x8 -> 1x1 after 3 halvings
    tiny = search_spaces.get("cnn")((2, 2, 1), 3)(hp_with(depth=6, pooling="max", downsamples=3))
    assert sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in tiny.layers) == 1


def test_resnet_without_skip_has_no_add():
    model = make("resnet")(hp_with(stages=2, blocks=2, skip=False))
    assert not any(isinstance(layer, keras.layers.Add) for layer in model.layers)


def test_same_hyperparameters_same_architecture_id():
    space = make("mlp")
    first = space(hp_with(depth=3, units=32, skip=True))
    second = space(hp_with(depth=3, units=32, skip=True))
    wider = space(hp_with(depth=3, units=64, skip=True))
    assert records.architecture_id(first) == records.architecture_id(second)
    assert records.architecture_id(first) != records.architecture_id(wider)


# --- the space objects ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPACES))
def test_space_pickles(name):
    space = pickle.loads(pickle.dumps(make(name)))
    assert space(keras_tuner.HyperParameters()).output_shape == (None, 10)


def test_transformer_round_trips_through_config():
    model = make("transformer")(hp_with(depth=1))
    clone = keras.Model.from_config(model.get_config())
    assert any(isinstance(layer, PositionEmbedding) for layer in clone.layers)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: search_spaces.get("cnn")((8, 8), 10), "rank 3"),
        (lambda: search_spaces.get("mlp")((64,), 1), "num_classes"),
        (lambda: search_spaces.get("mlp")((0,), 10), "positive ints"),
        (lambda: search_spaces.get("transformer")((64,), 10), "vocab_size"),
        (lambda: search_spaces.get("transformer")((8, 8), 10, vocab_size=17), "rank 1"),
    ],
)
def test_bad_arguments_say_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "Received" in str(error.value)
