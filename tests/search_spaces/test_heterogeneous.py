"""The heterogeneous space: sampled candidates build and run, every choice shows up in the model."""

import collections
import pickle

import keras
import keras_tuner
import numpy as np
import pytest

import search_spaces
from search_spaces import heterogeneous

SHAPES = {"signal": (40,), "sequence": (12, 3), "image": (8, 8, 1)}


def registered(shape, **options):
    """The space, and a HyperParameters holding its whole (flat) definition."""
    build = search_spaces.get("heterogeneous")(shape, 10, **options)
    hp = keras_tuner.HyperParameters()
    build(hp)
    return build, hp


def sampled(hp, seed):
    """New hyperparameters with every value drawn at random, the way a Ray trial fills them."""
    fresh = keras_tuner.HyperParameters()
    rng = np.random.default_rng(seed)
    for parameter in hp.space:
        fresh.values[parameter.name] = parameter.random_sample(int(rng.integers(2**31)))
    return fresh


def layer_counts(model):
    return collections.Counter(type(layer).__name__ for layer in model.layers)


def test_registered_and_flat():
    assert "heterogeneous" in search_spaces.names()
    _, hp = registered((40,))
    kinds = {type(parameter).__name__ for parameter in hp.space}
    assert kinds <= {"Int", "Float", "Choice", "Boolean"}
    assert all(not parameter.conditions for parameter in hp.space)
    assert {"blocks", "layer_type", "block_5_merge", "block_5_normalization", "learning_rate"} <= set(hp.values)


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_sampled_candidates_build_run_and_train(kind):
    shape = SHAPES[kind]
    build, hp = registered(shape)
    x = np.random.default_rng(0).standard_normal((16,) + shape).astype("float32")
    y = np.arange(16) % 10
    for seed in range(8):
        model = build(sampled(hp, seed))
        probabilities = keras.ops.convert_to_numpy(model(x))
        assert probabilities.shape == (16, 10)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
        if seed == 0:
            loss = model.train_on_batch(x, y)
            assert np.all(np.isfinite(loss))


def cycling(hp, offset, blocks):
    """Values where block i takes choice (i + offset) of every per-block list: covers each choice."""
    values = {}
    for parameter in hp.space:
        name = parameter.name
        if name.startswith("block_"):
            choices = list(parameter.values)
            index = int(name.split("_")[1])
            values[name] = choices[(index + offset) % len(choices)]
    values["blocks"] = blocks
    values["block_0_merge"] = "add"  # a projected shortcut: the stem's width differs from the block's
    fresh = keras_tuner.HyperParameters()
    fresh.values.update(hp.values)
    fresh.values.update(values)
    return fresh


@pytest.mark.parametrize("kind, layer_type", [("signal", "conv"), ("image", "conv"), ("image", "dense")])
def test_every_choice_appears_in_the_built_model(kind, layer_type):
    build, hp = registered(SHAPES[kind])
    seen = collections.defaultdict(set)
    totals = collections.Counter()
    for offset in range(2):  # blocks 0-5 at offsets 0 and 1 reach choice 6, every list's last
        values = cycling(hp, offset, blocks=6)
        values.values.update(layer_type=layer_type, block_0_units=8, block_0_merge="add")
        model = build(values)
        used = [{key.split("_", 2)[2]: values.values[key] for key in values.values
                 if key.startswith(f"block_{i}_")} for i in range(6)]
        for block in used:
            for field, value in block.items():
                seen[field].add(value)
        counts = layer_counts(model)
        totals.update(counts)
        assert counts["Add"] == sum(block["merge"] == "add" for block in used)
        assert counts["Concatenate"] == sum(block["merge"] == "concatenate" for block in used)
        assert counts["BatchNormalization"] == sum(b["layers"] for b in used if b["normalization"] == "batch")
        assert counts["LayerNormalization"] == sum(b["layers"] for b in used if b["normalization"] == "layer")
        assert counts["Dropout"] == sum(block["dropout"] > 0 for block in used)
        activations = sorted({layer.activation.__name__ for layer in model.layers
                              if type(layer).__name__ == "Activation" and layer.name != "probabilities"})
        assert activations == sorted({keras.activations.get(b["activation"]).__name__ for b in used})
    assert seen["activation"] == set(search_spaces.ACTIVATIONS)
    assert seen["normalization"] == set(search_spaces.NORMALIZATIONS)
    assert seen["merge"] == set(heterogeneous.MERGES)
    assert seen["pooling"] == set(heterogeneous.POOLINGS)
    assert seen["units"] == set(heterogeneous.UNITS)
    assert seen["layers"] == {1, 2, 3}
    assert seen["dropout"] >= {0.0, 0.4}
    pools = sum(totals[name] for name in totals if "Pooling" in name and "Global" not in name)
    assert (pools > 0) == (layer_type == "conv")
    conv = "Conv1D" if len(SHAPES[kind]) == 1 else "Conv2D"
    assert (totals[conv] > 0) == (layer_type == "conv") and (totals["Dense"] > 7) == (layer_type == "dense")


def test_widths_vary_within_one_candidate():
    build, hp = registered((40,))
    values = cycling(hp, 0, blocks=5)
    values.values.update(layer_type="dense", **{f"block_{i}_merge": "none" for i in range(6)})
    model = build(values)
    widths = [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)][:-1]
    assert len(set(widths)) == 5


def test_space_options_narrow_every_block():
    build, hp = registered((8, 8, 1), normalizations=["batch", "layer"], activations=("tanh",), units=[4, 12])
    for parameter in hp.space:
        if parameter.name.endswith("_units"):
            assert parameter.values == [4, 12]
        if parameter.name.endswith("_normalization"):
            assert parameter.values == ["batch", "layer"]
        if parameter.name.endswith("_activation"):
            assert parameter.values == ["tanh"]
    pickle.loads(pickle.dumps(build))


def test_bad_inputs_and_options_say_what_was_expected():
    with pytest.raises(ValueError, match="rank 1"):
        heterogeneous.space((2, 4, 4, 1), 10)
    with pytest.raises(ValueError, match="normalizations"):
        heterogeneous.space((40,), 10, normalizations=["group"])
    with pytest.raises(ValueError, match="positive ints"):
        heterogeneous.space((40,), 10, units=[0, 8])
    with pytest.raises(TypeError, match="no option `widths`"):
        heterogeneous.space((40,), 10, widths=[3])


def test_describe_summarizes_mixed_blocks():
    values = {"blocks": 2, "block_0_layers": 3, "block_1_layers": 2, "block_0_activation": "tanh",
              "block_1_activation": "relu", "block_2_activation": "gelu", "block_0_normalization": "batch",
              "block_1_normalization": "batch"}
    summary = heterogeneous.describe(values)
    assert summary["depth"] == 5
    assert summary["activations"] == "relu+tanh"
    assert summary["normalizations"] == "batch"
