"""The public API: options, errors, custom estimators, and model forms."""

import json
import warnings

import keras
import numpy as np
import pytest

from autoinit_nas import AutoInit, LayerOutputDistributionEstimator
from tests.conftest import to_numpy
from tests.e2e import models


def small_model(width=32):
    inputs = keras.Input((16,))
    hidden = keras.layers.Dense(width, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(8, name="out")(hidden)
    return keras.Model(inputs, outputs)


# --- weight_init_config -----------------------------------------------------


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError) as error:
        AutoInit(weight_init_config={"distrbution": "uniform"})
    message = str(error.value)
    assert "distrbution" in message
    for key in ("distribution", "constrain_weights", "monte_carlo_samples",
                "recurrent_monte_carlo_samples", "seed"):
        assert key in message


def test_unknown_distribution_lists_valid_ones():
    with pytest.raises(ValueError) as error:
        AutoInit(weight_init_config={"distribution": "cauchy"})
    for name in ("truncated_normal", "untruncated_normal", "uniform", "orthogonal"):
        assert name in str(error.value)


@pytest.mark.parametrize(
    "config",
    [{"monte_carlo_samples": 0}, {"monte_carlo_samples": 2.5}, {"constrain_weights": "yes"},
     {"seed": -1}, {"recurrent_monte_carlo_samples": float("nan")}],
)
def test_bad_values_are_rejected(config):
    with pytest.raises(ValueError, match=list(config)[0]):
        AutoInit(weight_init_config=config)


def test_original_float_sample_counts_are_accepted():
    autoinit = AutoInit(weight_init_config={"monte_carlo_samples": 1e7, "recurrent_monte_carlo_samples": 1e4})
    assert autoinit.weight_init_config["monte_carlo_samples"] == 10_000_000


@pytest.mark.parametrize("name,value", [("input_data_var", -1.0), ("input_data_var", float("inf")),
                                        ("signal_variance", 0.0), ("input_data_mean", float("nan"))])
def test_bad_moments_are_rejected(name, value):
    with pytest.raises(ValueError, match=name):
        AutoInit(**{name: value})


# --- model forms -------------------------------------------------------------


def test_returns_the_same_model_initialized_in_place():
    model = small_model()
    assert AutoInit(weight_init_config={"seed": 0}).initialize_model(model) is model


def test_config_dict_and_json_forms_build_and_initialize():
    reference = AutoInit(weight_init_config={"seed": 5}).initialize_model(small_model())
    for form in (small_model().get_config(), small_model().to_json(), json.loads(small_model().to_json())):
        model = AutoInit(weight_init_config={"seed": 5}).initialize_model(form)
        assert isinstance(model, keras.Model)
        for ours, theirs in zip(model.weights, reference.weights):
            np.testing.assert_array_equal(to_numpy(ours), to_numpy(theirs))


def test_bad_model_inputs_get_clear_errors():
    with pytest.raises(TypeError, match="keras.Model, a model config dict or a JSON string"):
        AutoInit().initialize_model(42)
    with pytest.raises(ValueError, match="not valid JSON"):
        AutoInit().initialize_model("{not json")


def test_unbuilt_sequential_says_how_to_fix():
    model = keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"keras.Input\(shape=...\)|model.build"):
        AutoInit().initialize_model(model)


def test_sequential_built_later_is_accepted():
    model = keras.Sequential([keras.layers.Dense(64, activation="tanh"), keras.layers.Dense(64)])
    model.build((None, 10))
    _, estimates = AutoInit(propagation="scalar", weight_init_config={"seed": 0}).initialize_model(model, return_estimates=True)
    assert estimates[model.layers[-1].name] == pytest.approx((0.0, 1.0))


class Residual(keras.Model):
    """A subclassed model with layers, keras.ops and a residual merge in call()."""

    def __init__(self, width=128, **kwargs):
        super().__init__(**kwargs)
        self.first = keras.layers.Dense(width, activation="relu")
        self.second = keras.layers.Dense(width)
        self.head = keras.layers.Dense(64)

    def call(self, x):
        return self.head(keras.ops.tanh(x + self.second(self.first(x))))


def test_subclassed_model_is_traced_and_initialized():
    model = Residual()
    model(np.zeros((1, 128), "float32"))
    initialized, estimates = AutoInit(propagation="scalar", weight_init_config={"seed": 0}).initialize_model(
        model, return_estimates=True
    )
    assert initialized is model
    assert estimates[model.head.name] == pytest.approx((0.0, 1.0))
    assert type(model.first.kernel_initializer).__name__ == "AutoInitInitializer"
    out = to_numpy(model(np.random.default_rng(0).standard_normal((2048, 128)).astype("float32")))
    assert 0.8 <= out.var() <= 1.25  # 4 SE of a width-64 head: sqrt(2/64) ~ 0.18
    # Tracing again reuses the cached trace: no new nodes on the layers.
    nodes = len(model.first._inbound_nodes)
    AutoInit(propagation="scalar").initialize_model(model)
    assert len(model.first._inbound_nodes) == nodes


def test_subclassed_model_inside_a_functional_model():
    block = Residual(width=64, name="block")
    inputs = keras.Input((64,))
    model = keras.Model(inputs, keras.layers.Dense(32, name="out")(block(inputs)))
    _, estimates = AutoInit(propagation="scalar", weight_init_config={"seed": 0}).initialize_model(model, return_estimates=True)
    assert f"block/{block.head.name}" in estimates
    assert estimates["out"] == pytest.approx((0.0, 1.0))


def test_untraceable_subclassed_model_says_why():
    class Branchy(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            if float(keras.ops.convert_to_numpy(keras.ops.sum(x))) > 0:  # needs values
                return self.dense(x)
            return x[:, :3]

    model = Branchy()
    model.build((None, 4))
    with pytest.raises(TypeError, match="could not trace.*keras.ops"):
        AutoInit().initialize_model(model)


def test_unbuilt_subclassed_model_says_how_to_fix():
    with pytest.raises(ValueError, match="not built"):
        AutoInit().initialize_model(Residual())


def test_per_input_moments_for_multi_input_models():
    model = models.multi_io()
    _, estimates = AutoInit(
        propagation="scalar",
        weight_init_config={"seed": 0}, input_data_mean=[1.0, 0.0], input_data_var=[3.0, 1.0]
    ).initialize_model(model, return_estimates=True)
    assert estimates["left"] == (1.0, 3.0)
    assert estimates["right"] == (0.0, 1.0)
    with pytest.raises(ValueError, match="2 inputs"):
        AutoInit(propagation="scalar", input_data_mean=[0.0, 0.0, 0.0]).initialize_model(models.multi_io())


# --- estimates naming ---------------------------------------------------------


def test_nested_and_shared_entries():
    model = models.nested_shared_block(calls=3)
    _, estimates = AutoInit(weight_init_config={"seed": 0}).initialize_model(model, return_estimates=True)
    inner = [layer.name for layer in model.get_layer("block").layers[1:]]
    for name in inner:
        for call in range(3):
            assert f"block@{call}/{name}" in estimates
        assert estimates[f"block/{name}"] == estimates[f"block@0/{name}"]
    assert estimates["block"] == estimates["block@0"]
    assert "head" in estimates


def test_shared_layer_scale_is_chosen_at_first_call():
    inputs = keras.Input((64,))
    shared = keras.layers.Dense(64, name="shared")
    first = shared(inputs)
    doubled = keras.layers.Add()([first, first])
    second = shared(doubled)
    model = keras.Model(inputs, second)
    _, estimates = AutoInit(propagation="scalar", weight_init_config={"seed": 0}).initialize_model(model, return_estimates=True)
    # The Add of two copies of a unit-variance tensor is predicted at variance 2
    # (independence); the second call reuses the first call's scale.
    assert estimates["shared@0"] == pytest.approx((0.0, 1.0))
    assert estimates["shared@1"] == pytest.approx((0.0, 2.0))
    assert estimates["shared"] == estimates["shared@0"]


# --- custom estimators ---------------------------------------------------------


@keras.saving.register_keras_serializable(package="tests")
class MyCustomLayer(keras.layers.Layer):
    def call(self, inputs):
        return 2.0 * inputs


def test_readme_custom_layer_example_runs_unchanged():
    inputs = keras.Input((32,))
    outputs = keras.layers.Dense(32)(MyCustomLayer()(keras.layers.Dense(32)(inputs)))
    training_model = keras.Model(inputs, outputs)

    # The original README's example, only the import line changed.
    from autoinit_nas import LayerOutputDistributionEstimator  # noqa: F811

    class MyCustomOutputDistributionEstimator(LayerOutputDistributionEstimator):
        def estimate(self, means_in, vars_in):
            return means_in[0], 4.0 * vars_in[0]

    custom_objects = {"MyCustomLayer": MyCustomLayer}
    custom_distribution_estimators = {MyCustomLayer: MyCustomOutputDistributionEstimator}

    training_model = AutoInit(propagation="scalar", custom_distribution_estimators=custom_distribution_estimators).initialize_model(
        training_model, custom_objects=custom_objects
    )
    _, estimates = AutoInit(propagation="scalar", custom_distribution_estimators=custom_distribution_estimators).initialize_model(
        training_model.to_json(), return_estimates=True, custom_objects=custom_objects
    )
    custom = [name for name in estimates if name.startswith("my_custom_layer")][0]
    assert estimates[custom] == pytest.approx((0.0, 4.0))


def test_estimator_lookup_follows_the_mro():
    class WideDense(keras.layers.Dense):
        pass

    class Quadrupling(LayerOutputDistributionEstimator):
        def estimate(self, means_in, vars_in):
            return means_in[0], 4.0 * vars_in[0]

    inputs = keras.Input((16,))
    model = keras.Model(inputs, WideDense(16, name="wide")(inputs))
    _, estimates = AutoInit(propagation="scalar").initialize_model(model, return_estimates=True)
    assert estimates["wide"] == pytest.approx((0.0, 1.0))  # handled as a Dense

    class SubWide(WideDense):
        pass

    model = keras.Model(inputs, SubWide(16, name="sub")(inputs))
    _, estimates = AutoInit(propagation="scalar", custom_distribution_estimators={WideDense: Quadrupling}).initialize_model(
        model, return_estimates=True
    )
    assert estimates["sub"] == pytest.approx((0.0, 4.0))  # nearest registered ancestor wins


def test_custom_estimator_mapping_is_validated():
    with pytest.raises(TypeError, match="LayerOutputDistributionEstimator"):
        AutoInit(custom_distribution_estimators={keras.layers.Dense: object})
    with pytest.raises(TypeError, match="layer classes"):
        AutoInit(custom_distribution_estimators={"Dense": LayerOutputDistributionEstimator})


@pytest.mark.parametrize("bad", [(float("nan"), 1.0), (0.0, -1.0), "nope", [(0.0, 1.0)] * 2])
def test_bad_estimator_results_name_the_estimator_and_layer(bad):
    class Broken(LayerOutputDistributionEstimator):
        def estimate(self, means_in, vars_in):
            return bad

    inputs = keras.Input((4,))
    model = keras.Model(inputs, MyCustomLayer(name="odd")(inputs))
    with pytest.raises(ValueError, match=r"Broken\.estimate for layer 'odd'"):
        AutoInit(custom_distribution_estimators={MyCustomLayer: Broken}).initialize_model(model)


class OwnWeightLayer(keras.layers.Layer):
    """A custom layer AutoInit cannot open: its own weight, no sublayers."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale


def test_unsupported_layer_warns_once_per_class_and_passes_through():
    inputs = keras.Input((8,))
    hidden = OwnWeightLayer(name="c1")(inputs)
    hidden = OwnWeightLayer(name="c2")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(8)(hidden))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autoinit = AutoInit(propagation="scalar", input_data_var=3.0)
        _, estimates = autoinit.initialize_model(model, return_estimates=True)
    messages = [str(w.message) for w in caught if "No estimator" in str(w.message)]
    assert len(messages) == 1
    assert "OwnWeightLayer" in messages[0] and "'c1'" in messages[0]
    assert estimates["c2"] == (0.0, 3.0)
    assert autoinit.unsupported_layers == ["c1", "c2"]


@pytest.mark.parametrize("propagation,with_ids", [("probe", False), ("probe", True), ("scalar", False)])
def test_every_warning_points_at_the_caller_of_initialize_model(propagation, with_ids):
    """Unopened and unsupported layers, degenerate statistics, the probe's
    fallback (integer ids that reach no Embedding): each warning names the
    line that called ``initialize_model``, where the user can act, not a
    line inside AutoInit; after the probe ran, after it fell back, under
    scalar."""
    features = keras.Input((8,))
    hidden = OwnWeightLayer(name="own")(features)
    inputs, outputs = [features], [keras.layers.Dense(4)(hidden)]
    if with_ids:
        ids = keras.Input((4,), dtype="int32")
        inputs.append(ids)
        outputs.append(keras.layers.Dense(2)(keras.ops.cast(ids, "float32")))
    model = keras.Model(inputs, outputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AutoInit(propagation=propagation, input_data_var=[1e-30] + [1.0] * with_ids).initialize_model(model)
    causes = {getattr(w.message, "cause", None): w for w in caught}
    expected = {"unopened", "unsupported", "vanishing_input"} | ({"probe_unavailable"} if with_ids else set())
    assert expected <= set(causes), sorted(map(str, causes))
    for cause in expected:
        assert causes[cause].filename == __file__, (cause, causes[cause].filename, causes[cause].lineno)


# --- propagation_used and probe_batch -----------------------------------------


def test_propagation_used_says_which_propagation_ran():
    autoinit = AutoInit(weight_init_config={"seed": 0})
    assert autoinit.propagation_used is None
    autoinit.initialize_model(small_model())
    assert autoinit.propagation_used == "probe"
    scalar = AutoInit(weight_init_config={"seed": 0}, propagation="scalar")
    scalar.initialize_model(small_model())
    assert scalar.propagation_used == "scalar"


def test_propagation_used_is_scalar_after_a_probe_fallback():
    # Integer ids that reach no Embedding: the probe cannot know which ids are valid.
    inputs = keras.Input((4,), dtype="int32")
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.ops.cast(inputs, "float32")))
    autoinit = AutoInit(weight_init_config={"seed": 0})
    autoinit.initialize_model(small_model())
    with pytest.warns(UserWarning, match="Falling back to scalar propagation"):
        autoinit.initialize_model(model)
    assert autoinit.propagation_used == "scalar"


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "32", None])
def test_probe_batch_must_be_a_positive_integer(bad):
    if bad is not None:
        with pytest.raises(ValueError, match=r"`probe_batch` must be a positive integer.*"
                                             + r"Received: probe_batch="):
            AutoInit(probe_batch=bad)
    with pytest.raises(ValueError, match=r"Received: probe_batch="):
        AutoInit().initialize_model(small_model(), probe_batch=bad if bad is not None else 0)


def test_probe_batch_reaches_the_probe(monkeypatch):
    from autoinit_nas.core import probe

    used = []
    original = probe.probe_inputs

    def spy(model, input_moments, batch, seed, *rest):
        used.append(batch)
        return original(model, input_moments, batch, seed, *rest)

    monkeypatch.setattr(probe, "probe_inputs", spy)
    inputs = keras.Input((64, 64, 8))  # 32,768 values per example: the floor decides
    model = keras.Model(inputs, keras.layers.Conv2D(8, 3, padding="same")(inputs))
    autoinit = AutoInit(weight_init_config={"seed": 0}, probe_batch=48)
    autoinit.initialize_model(model)
    autoinit.initialize_model(model, probe_batch=5)
    autoinit.initialize_model(model, probe_batch=None)
    assert used == [48, 5, 48]
    AutoInit(weight_init_config={"seed": 0}).initialize_model(model)
    assert used[-1] == 32
