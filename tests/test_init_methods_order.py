"""Arms are independent of order: every arm starts from the model's declared initializers.

``initialize(model, arm, seed=s)`` must leave the same weights and the same
initializer trace (``get_config``) whatever arms ran on the model before.
The fast test covers every ordered pair of the six arms (30) on one model
each: since every arm first restores what the model declared, the state an
arm leaves depends on nothing before it, so pairs already exercise every
"arm after arm" transition; the slow test runs all 720 full orders.

A wider model (Conv2D, BatchNormalization, DepthwiseConv2D, SeparableConv2D,
LSTM, Embedding, Dense) adds AutoInit with ``constrain_weights`` and compares
each weight's ``constraint`` and every initializer/constraint attribute too;
a clone of an initialized model, or one AutoInit initialized directly, must
give the "default" arm what the model declared (or the layer class's
defaults, with a warning, where AutoInit left no trace of it).
"""

import itertools
import json
import warnings

import keras
import numpy as np
import pytest

from autoinit_nas.core.autoinit import AutoInit
from autoinit_nas.init_methods import METHODS, initialize

SEED = 5
ARMS = ("default", "he", "lecun", "lsuv", "autoinit-scalar", "autoinit")
DATA = np.random.default_rng(0).standard_normal((32, 6, 6, 2)).astype("float32")


def build():
    keras.utils.set_random_seed(11)
    inputs = keras.Input((6, 6, 2), name="x")
    hidden = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    hidden = keras.layers.BatchNormalization(name="norm")(hidden)
    hidden = keras.layers.Flatten(name="flat")(hidden)
    hidden = keras.layers.Dense(5, activation="tanh", name="hidden")(hidden)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden), name="tiny")


def state(model):
    """Every weight (batch-norm statistics included) and the initializers left on the layers."""
    weights = [np.array(w) for w in model.get_weights()]
    return weights, json.dumps(model.get_config(), sort_keys=True, default=str)


def apply(model, arm):
    return state(initialize(model, arm, data=DATA, seed=SEED))


@pytest.fixture(scope="module")
def fresh():
    """Each arm's state on a model no other arm touched."""
    return {arm: apply(build(), arm) for arm in ARMS}


def assert_same(got, expected, where):
    assert got[1] == expected[1], f"initializers differ {where}"
    for index, (a, b) in enumerate(zip(got[0], expected[0])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"weight {index} {where}")


def test_the_six_arms_are_the_registry():
    assert set(ARMS) == set(METHODS)


@pytest.mark.parametrize("first, second", list(itertools.permutations(ARMS, 2)))
def test_an_arm_after_another_equals_the_arm_alone(fresh, first, second):
    model = build()
    apply(model, first)
    assert_same(apply(model, second), fresh[second], f"for {second!r} after {first!r}")


@pytest.mark.slow
def test_every_order_of_the_six_arms(fresh):
    for order in itertools.permutations(ARMS):
        model = build()
        for position, arm in enumerate(order):
            assert_same(apply(model, arm), fresh[arm], f"at {position} of {order}")


def test_default_after_he_and_lsuv_is_the_declared_glorot():
    """The issue's measurements: He variance, then Orthogonal, leaked into the "default" arm."""
    inputs = keras.Input((64,))
    model = keras.Model(inputs, keras.layers.Dense(256, name="d")(inputs))
    x = np.random.default_rng(1).standard_normal((128, 64)).astype("float32")
    for before in ("he", "lsuv"):
        initialize(model, before, data=x, seed=0)
        initialize(model, "default", seed=1)
        layer = model.get_layer("d")
        assert type(layer.kernel_initializer).__name__ == "GlorotUniform", before
        fan_variance = float(np.var(np.array(layer.kernel))) * 64
        assert abs(fan_variance - 64 * 2 / (64 + 256)) < 0.02, (before, fan_variance)  # Glorot: 2/(in+out)


# The wide model's arms: the six, and AutoInit keeping its variances with CenteredUnitNorm constraints.
CONSTRAINED = "autoinit-constrained"
WIDE_ARMS = ARMS + (CONSTRAINED,)
WIDE_DATA = [DATA, np.random.default_rng(1).integers(0, 10, (32, 4)).astype("int32")]
FALLBACK_WARNING = "reached its first init arm carrying initializers or constraints AutoInit"


def build_wide(custom=False):
    """Every weight family whose initializer or constraint is not named after it; ``custom``: a
    Dense declaring RandomNormal(0.3) kernels and ones biases (not Keras's defaults)."""
    keras.utils.set_random_seed(11)
    image = keras.Input((6, 6, 2), name="x")
    tokens = keras.Input((4,), dtype="int32", name="tokens")
    hidden = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(image)
    hidden = keras.layers.BatchNormalization(name="norm")(hidden)
    hidden = keras.layers.DepthwiseConv2D(3, name="dw")(hidden)
    hidden = keras.layers.SeparableConv2D(3, 1, name="sep")(hidden)
    hidden = keras.layers.LSTM(3, name="lstm")(keras.layers.Reshape((4, 3), name="steps")(hidden))
    embedded = keras.layers.Flatten(name="flat")(keras.layers.Embedding(10, 3, name="embed")(tokens))
    hidden = keras.layers.Concatenate(name="join")([hidden, embedded])
    declared = ({"kernel_initializer": keras.initializers.RandomNormal(stddev=0.3), "bias_initializer": "ones"}
                if custom else {})
    return keras.Model([image, tokens], keras.layers.Dense(2, name="out", **declared)(hidden), name="wide")


def attributes(model):
    """Every layer's (nested ones too) initializer / constraint attribute: [(layer, attribute, config)]."""
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for name, value in sorted(vars(layer).items()):
            if name.endswith(("_initializer", "_constraint")) and not name.startswith("__"):
                found.append((layer.name, name, keras.saving.serialize_keras_object(value)))
    return found


def wide_state(model):
    """``state``, with each weight's constraint and every initializer / constraint attribute."""
    weights, config = state(model)
    constraints = [(v.path, keras.saving.serialize_keras_object(v.constraint)) for v in model.weights]
    return weights, json.dumps([config, constraints, attributes(model)], sort_keys=True, default=str)


def apply_wide(model, arm):
    autoinit = AutoInit(weight_init_config={"constrain_weights": True}) if arm == CONSTRAINED else None
    method = "autoinit" if arm == CONSTRAINED else arm
    return wide_state(initialize(model, method, data=WIDE_DATA, seed=SEED, autoinit=autoinit))


@pytest.fixture(scope="module")
def fresh_wide():
    return {arm: apply_wide(build_wide(), arm) for arm in WIDE_ARMS}


def test_the_constrained_arm_leaves_constraints_on_every_kernel_family(fresh_wide):
    """Else the wide tests below would not see a constraint leak."""
    constrained = json.loads(fresh_wide[CONSTRAINED][1])[1]
    paths = {path for path, constraint in constrained if constraint is not None}
    assert {"dw/kernel", "sep/depthwise_kernel", "sep/pointwise_kernel", "lstm/lstm_cell/recurrent_kernel",
            "out/kernel"} <= paths, paths


@pytest.mark.parametrize("first, second", [
    pair for pair in itertools.permutations(WIDE_ARMS, 2) if CONSTRAINED in pair or pair[1] == "default"
])
def test_on_the_wide_model_an_arm_after_another_equals_the_arm_alone(fresh_wide, first, second):
    model = build_wide()
    apply_wide(model, first)
    assert_same(apply_wide(model, second), fresh_wide[second], f"for {second!r} after {first!r}")


def default_of(model):
    return wide_state(initialize(model, "default", seed=SEED))


@pytest.mark.parametrize("arm", ["he", "lecun", "lsuv"])
def test_a_clone_of_a_model_an_arm_initialized_declares_what_the_original_did(arm):
    """The arm's initializers travel in the clone's config; they carry the declared ones with them."""
    expected = default_of(build_wide(custom=True))
    model = build_wide(custom=True)
    apply_wide(model, arm)
    clone = keras.models.clone_model(model)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*" + FALLBACK_WARNING)  # matched from the start
        assert_same(default_of(clone), expected, f"for 'default' on a clone after {arm!r}")
    assert_same(default_of(model), expected, f"for 'default' on the original after {arm!r}")


@pytest.mark.parametrize("how", ["clone", "direct"])
def test_autoinit_before_any_arm_gives_way_to_the_class_defaults(how):
    """AutoInit's initializers and constraints carry no trace: Keras's own defaults, with a warning."""
    expected = default_of(build_wide())
    model = build_wide()
    if how == "clone":
        apply_wide(model, CONSTRAINED)
        model = keras.models.clone_model(model)
    else:
        AutoInit(weight_init_config={"constrain_weights": True, "seed": SEED}).initialize_model(model)
    with pytest.warns(UserWarning, match=FALLBACK_WARNING) as caught:
        got = default_of(model)
    assert "layer 'dw': depthwise_initializer=AutoInitInitializer -> 'glorot_uniform'" in str(caught[0].message)
    assert_same(got, expected, f"for 'default' after AutoInit ({how})")
