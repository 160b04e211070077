"""Arms are independent of order: every arm starts from the model's declared initializers.

``initialize(model, arm, seed=s)`` must leave the same weights and the same
initializer trace (``get_config``) whatever arms ran on the model before.
The fast test covers every ordered pair of the six arms (30) on one model
each: since every arm first restores what the model declared, the state an
arm leaves depends on nothing before it, so pairs already exercise every
"arm after arm" transition; the slow test runs all 720 full orders.
"""

import itertools
import json

import keras
import numpy as np
import pytest

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
