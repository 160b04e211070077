"""AutoInit's serializable layers on the estimators floor: saved models load, old import paths work."""

import keras
import numpy as np

import autoinit_nas
from autoinit_nas import layers as public_layers
from autoinit_nas.core import cache as public_cache
from autoinit_nas.estimators import cache, layers


def small_model():
    left, right = keras.Input((4,), name="left"), keras.Input((4,), name="right")
    merged = layers.WeightedSum([0.6, 0.8], name="ws")([left, right])
    dense = keras.layers.Dense(3, kernel_constraint=layers.CenteredUnitNorm(gain=2.0, mode="fan_avg"))
    return keras.Model([left, right], dense(merged))


def test_the_public_paths_name_the_same_objects():
    assert public_layers.WeightedSum is layers.WeightedSum is autoinit_nas.WeightedSum
    assert public_layers.CenteredUnitNorm is layers.CenteredUnitNorm is autoinit_nas.CenteredUnitNorm
    assert public_cache.EstimateCache is cache.EstimateCache
    assert public_cache.GLOBAL_CACHE is cache.GLOBAL_CACHE
    assert public_cache.round_moment is cache.round_moment


def test_registered_names_are_unchanged_by_the_move():
    assert keras.saving.get_registered_name(layers.WeightedSum) == "autoinit_nas>WeightedSum"
    assert keras.saving.get_registered_name(layers.CenteredUnitNorm) == "autoinit_nas>CenteredUnitNorm"


def test_a_saved_model_loads_with_the_same_outputs(tmp_path):
    model = small_model()
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    batch = [np.ones((2, 4), "float32"), np.full((2, 4), 2.0, "float32")]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(batch)),
                               keras.ops.convert_to_numpy(model(batch)))
    constraint = restored.layers[-1].kernel_constraint
    assert isinstance(constraint, layers.CenteredUnitNorm) and constraint.mode == "fan_avg"
    assert restored.get_layer("ws").coefficients == [0.6, 0.8]


def test_objects_serialized_under_the_old_module_path_still_load():
    # Models saved before the move record module "autoinit_nas.layers".
    for instance in (layers.WeightedSum([0.5, 0.5]), layers.CenteredUnitNorm(gain=3.0)):
        config = keras.saving.serialize_keras_object(instance)
        config["module"] = "autoinit_nas.layers"
        restored = keras.saving.deserialize_keras_object(config)
        assert type(restored) is type(instance)
        assert restored.get_config() == instance.get_config()
