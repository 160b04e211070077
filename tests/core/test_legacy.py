"""tf.keras 2 configs: the three NAS-generated anchor models, every tf.keras 2 layer class, safe loading."""

import json
import pathlib

import keras
import numpy as np
import pytest

from autoinit_nas import AutoInit
from autoinit_nas.core import keras2_arguments, legacy
from autoinit_nas.core.loading import load_model

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


# --- Every tf.keras 2 layer class (configs written by tf.keras 2.21, tests/data/keras2_generate.py) ---

KERAS2_LAYERS = json.loads((DATA / "keras2_layers.json").read_text())
# Configs whose meaning Keras 3 cannot express: (key, argument named in the error, value named).
REFUSED = {
    "BatchNormalization/virtual_batch_size": ("virtual_batch_size", "4"),
    "GRU/time_major": ("time_major", "True"),
    "Softmax/robust_masking": ("robust_masking", "True"),
    "LocallyConnected1D": ("locally connected", ""),
    "LocallyConnected2D": ("locally connected", ""),
    "RandomHeight": ("RandomHeight", ""),
    "RandomWidth": ("RandomWidth", ""),
}
CELLS = ("GRUCell", "LSTMCell", "SimpleRNNCell", "StackedRNNCells")


def keras2_layer(key):
    return json.loads(json.dumps(KERAS2_LAYERS[key]["layer"]))


def build(layer, key):
    spec = KERAS2_LAYERS[key]["input"]
    if spec is None:
        return
    shape, dtype = spec
    if key in CELLS:  # a cell runs inside an RNN
        layer = keras.layers.RNN(layer)
    layer(keras.Input(tuple(shape), dtype=dtype))


def test_the_generated_configs_cover_every_tf_keras2_layer_class():
    classes = {key.split("/")[0] for key in KERAS2_LAYERS}
    assert len(classes) >= 100
    # Classes tf.keras 2 had and Keras 3 dropped are among them, refused below.
    assert {"LocallyConnected2D", "RandomHeight", "ThresholdedReLU"} <= classes


@pytest.mark.parametrize("key", sorted(set(KERAS2_LAYERS) - set(REFUSED)))
def test_every_keras2_layer_config_converts_and_builds(key):
    dropped = {}
    entry = legacy.convert_layer_config(keras2_layer(key), dropped)
    layer = keras.layers.deserialize(entry)
    build(layer, key)
    # Only arguments the table explains are dropped: none silently.
    assert all(keras2_arguments.reason(name) for name in dropped), dropped


@pytest.mark.parametrize("key", sorted(REFUSED))
def test_configs_keras3_cannot_express_are_refused_by_name(key):
    argument, value = REFUSED[key]
    name = KERAS2_LAYERS[key]["layer"]["config"]["name"]
    with pytest.raises(keras2_arguments.Keras2ConversionError) as error:
        legacy.convert_layer_config(keras2_layer(key), {})
    message = str(error.value)
    assert f"'{name}'" in message and argument in message and value in message


def nested_configs(entry):
    yield entry["class_name"], entry["config"]
    for key in ("layer", "backward_layer", "cell"):
        if isinstance(entry["config"].get(key), dict):
            yield from nested_configs(entry["config"][key])
    for cell in entry["config"].get("cells") or []:
        yield from nested_configs(cell)


def test_every_keras2_argument_is_accepted_by_keras3_or_explained_in_the_table():
    unexplained = set()
    for item in KERAS2_LAYERS.values():
        for class_name, config in nested_configs(item["layer"]):
            accepted = legacy.accepted_arguments(class_name)
            if accepted is None:
                assert class_name in keras2_arguments.REMOVED_CLASSES or class_name == "ThresholdedReLU"
                continue
            # batch_input_shape is every layer's: legacy.py turns it into an Input.
            known = set(keras2_arguments.ARGUMENTS.get(class_name, {})) | {"batch_input_shape"}
            unexplained |= {f"{class_name}.{arg}" for arg in set(config) - accepted - known}
    assert not unexplained


def test_the_table_lists_only_arguments_keras3_rejects():
    # A rule for an argument Keras 3 accepts would drop or refuse a working value.
    for class_name, rules in keras2_arguments.ARGUMENTS.items():
        accepted = legacy.accepted_arguments(class_name)
        for argument, rule in rules.items():
            if rule.action in ("drop", "drop_if"):
                assert argument not in accepted, f"{class_name}.{argument}"


def test_renamed_and_replaced_arguments_keep_their_values():
    leaky = keras.layers.deserialize(legacy.convert_layer_config(keras2_layer("LeakyReLU/alpha"), {}))
    assert leaky.negative_slope == pytest.approx(0.2)
    relu = keras.layers.deserialize(legacy.convert_layer_config(keras2_layer("ThresholdedReLU/theta"), {}))
    x = np.array([[-1.0, 0.4, 0.6, 2.0]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(relu(x)), [[0.0, 0.0, 0.6, 2.0]])


def test_keras2_hard_sigmoid_keeps_its_slope_of_one_fifth():
    # tf.keras 2: clip(0.2 x + 0.5, 0, 1); Keras 3's "hard_sigmoid" has slope 1/6.
    dense = keras.layers.deserialize(legacy.convert_layer_config(keras2_layer("Dense/hard_sigmoid"), {}))
    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    expected = np.clip(0.2 * x + 0.5, 0.0, 1.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(dense.activation(x.astype("float32"))),
                               expected, atol=1e-6)
    # tf.keras 2's ConvLSTM layers use it by default.
    config = legacy.convert_layer_config(keras2_layer("ConvLSTM2D"), {})["config"]
    assert config["recurrent_activation"]["config"] == "autoinit_nas>keras2_hard_sigmoid"


def test_spatial_dropout_noise_shape_is_dropped_with_the_reason():
    dropped = {}
    entry = legacy.convert_layer_config(keras2_layer("SpatialDropout1D/noise_shape"), dropped)
    assert "noise_shape" not in entry["config"]
    assert "ignored it too" in keras2_arguments.reason("SpatialDropout1D.noise_shape")
    assert dropped["SpatialDropout1D.noise_shape"] == 1


def test_keras2_causal_attention_and_grouped_transposed_convolutions_are_refused():
    # tf.keras 2.4-2.7 wrote Attention(causal=...); groups > 1 never ran on these layers.
    attention = {"class_name": "Attention", "config": {"name": "att", "causal": False, "use_scale": False}}
    assert "causal" not in legacy.convert_layer_config(attention, {})["config"]
    attention["config"]["causal"] = True
    with pytest.raises(ValueError, match="'att'.*causal=True.*use_causal_mask"):
        legacy.convert_layer_config(attention, {})
    conv = keras2_layer("Conv2DTranspose/groups")
    conv["config"]["groups"] = 2
    with pytest.raises(ValueError, match=r"groups=2.*Keras 3 expects groups=1"):
        legacy.convert_layer_config(conv, {})


# --- A tf.keras 2 text model, as model.to_json() wrote it ---

TEXT_MODEL = (DATA / "keras2_text_model.json").read_text()


def test_keras2_text_model_is_detected_though_it_has_module_keys():
    model_json = json.loads(TEXT_MODEL)
    assert all("module" in layer for layer in model_json["config"]["layers"])
    assert legacy.is_legacy_model(model_json)
    inputs = keras.Input((3,))
    keras3 = json.loads(keras.Model(inputs, keras.layers.Dense(2)(inputs)).to_json())
    assert not legacy.is_legacy_model(keras3)


def test_keras2_text_model_computes_what_tf_keras2_computed():
    data = np.load(DATA / "keras2_text_model.npz")
    with pytest.warns(UserWarning, match="SpatialDropout1D.noise_shape"):
        model = load_model(TEXT_MODEL)
    weights = [data[f"w{i}"] for i in range(sum(key.startswith("w") for key in data.files))]
    model.set_weights(weights)
    out = keras.ops.convert_to_numpy(model(data["ids"], training=False))
    np.testing.assert_allclose(out, data["output"], rtol=1e-4, atol=1e-5)


def test_keras2_text_model_initializes_through_autoinit():
    with pytest.warns(UserWarning, match="time_major"):
        model, estimates = AutoInit(weight_init_config={"seed": 0}).initialize_model(
            TEXT_MODEL, return_estimates=True
        )
    assert model.count_params() == 2163
    assert {"embed", "spatial_drop", "bilstm", "mha", "gru", "thresholded", "head"} <= set(estimates)
    out = keras.ops.convert_to_numpy(model(np.arange(24).reshape(2, 12) % 50))
    assert np.isfinite(out).all()


def test_keras2_sequential_config_gets_its_input_shape():
    first = keras2_layer("Embedding/input_length")
    first["config"]["batch_input_shape"] = [None, 7]
    layers = [first, keras2_layer("SpatialDropout1D/noise_shape"), keras2_layer("GRU"),
              keras2_layer("Dense")]
    config = {"class_name": "Sequential", "config": {"name": "seq", "layers": layers}}
    for form in (config, config["config"]):
        model = AutoInit(weight_init_config={"seed": 0}).initialize_model(json.dumps(form))
        assert model.input_shape == (None, 7)
        assert model.output_shape == (None, 3)


def test_accepted_arguments_stop_where_a_constructor_takes_no_kwargs():
    # SpatialDropout1D.__init__(rate, seed, name, dtype) does not pass Dropout's noise_shape on.
    assert "noise_shape" not in legacy.accepted_arguments("SpatialDropout1D")
    assert "noise_shape" in legacy.accepted_arguments("Dropout")
    assert {"units", "kernel_initializer", "trainable", "name"} <= legacy.accepted_arguments("Dense")
    assert legacy.accepted_arguments("NotAKerasLayer") is None


def test_a_users_layer_keeps_its_arguments():
    # Only Keras's own classes are converted: a user's layer may mean anything by its arguments.
    entry = {"class_name": "MyBlock", "config": {"name": "blk", "activation": "hard_sigmoid",
                                                 "time_major": True, "batch_input_shape": [None, 4]}}
    converted = legacy.convert_layer_config(entry, {})
    assert converted["config"] == {"name": "blk", "activation": "hard_sigmoid", "time_major": True}
    shadow = {"class_name": "GRU", "module": "my_package.layers", "registered_name": "Custom>GRU",
              "config": {"name": "g", "time_major": True}}
    assert legacy.convert_layer_config(shadow, {})["config"] == {"name": "g", "time_major": True}
