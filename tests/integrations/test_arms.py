"""Init arms in both engines: keras-tuner's ``arms=[...]`` and Ray's ``prepare_model(arm=..., data=...)``."""

import math

import keras
import keras_tuner
import numpy as np
import pytest

from autoinit_nas.engines.ray.trainable import prepare_model
from autoinit_nas.integrations.keras_tuner import AutoInitHyperModel
from autoinit_nas.trials import records
from tests.integrations.digits import digits
from tests.integrations.test_keras_tuner import mlp_build, small_mlp_space, tuner_kwargs

ARMS = ["he", "lsuv", "default"]


def test_keras_tuner_trains_every_arm_from_one_seed_and_reports_the_others_prefixed(tmp_path):
    tuner = keras_tuner.RandomSearch(
        AutoInitHyperModel(mlp_build(), arms=ARMS), max_trials=1,
        hyperparameters=small_mlp_space(depth=2, units=32), **tuner_kwargs(tmp_path, "arms"),
    )
    (x, y), validation = digits("flat")
    tuner.search(x, y, validation_data=validation, epochs=2, batch_size=32, verbose=0)
    (record,) = records.read_records(tuner.project_dir)
    assert record["init"] == "he+lsuv+default" and record["status"] == "completed"
    trained = record["executions"][-1]["arms"]
    assert sorted(trained) == sorted(ARMS)
    for arm in ARMS:
        assert len(trained[arm]["history"]["val_accuracy"]) == 2
    assert trained["he"]["initialized"] and trained["lsuv"]["init_seconds"] > 0
    assert not trained["default"]["initialized"]
    (trial,) = tuner.oracle.trials.values()
    metrics = trial.metrics.metrics
    assert {"val_accuracy", "lsuv_val_accuracy", "default_val_accuracy"} <= set(metrics)
    assert metrics["val_accuracy"].get_best_value() == pytest.approx(trained["he"]["metrics"]["val_accuracy"])
    assert metrics["lsuv_val_accuracy"].get_best_value() == pytest.approx(trained["lsuv"]["metrics"]["val_accuracy"])
    # keras-tuner's retraining idiom gets the tuner's arm: He-normal kernels.
    model = tuner.hypermodel.build(tuner.get_best_hyperparameters()[0])
    kernel = keras.ops.convert_to_numpy(model.layers[1].kernel)
    fan_in = kernel.shape[0]
    standard_error = 2 / fan_in * math.sqrt(2 / kernel.size)
    assert abs(kernel.var() - 2 / fan_in) < 4 * standard_error


def test_keras_tuner_arms_are_checked():
    with pytest.raises(ValueError, match=r"distinct names.*Received: arms=\['he', 'he'\]"):
        AutoInitHyperModel(mlp_build(), arms=["he", "he"])
    with pytest.raises(ValueError, match="either `init` or `arms`"):
        AutoInitHyperModel(mlp_build(), init="compare", arms=["he"])


def test_prepare_model_applies_any_arm_and_lsuv_needs_data():
    inputs = keras.Input((20,))
    model = keras.Model(inputs, keras.layers.Dense(300, activation="relu")(inputs))
    prepare_model(model, {"init": "lecun"})
    kernel = keras.ops.convert_to_numpy(model.layers[1].kernel)
    assert abs(kernel.var() * 20 - 1.0) < 4 * math.sqrt(2 / kernel.size)
    with pytest.raises(ValueError, match="Received: data=None"):
        prepare_model(model, arm="lsuv")
    batch = 3 * np.random.default_rng(0).standard_normal((64, 20)).astype("float32")
    prepare_model(model, arm="lsuv", data=batch)
    kernel = keras.ops.convert_to_numpy(model.layers[1].kernel)
    assert abs(float(np.var(batch @ kernel)) - 1.0) < 0.1


# make check (~8 s): arms through the Ray engine stay covered by test_ray_tune's paired sweep
@pytest.mark.slow
def test_sweep_command_takes_arms_and_the_ray_engine_trains_each(tmp_path, ray_session):
    import argparse

    from autoinit_nas.sweeps import run_sweep
    from autoinit_nas.sweeps.command import add_arguments, spec_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--space", "mlp", "--data", "wine", "--engine", "ray", "--trials", "1", "--epochs", "1",
                              "--arms", "lecun,lsuv", "--hp", "depth=1", "--hp", "units=8",
                              "--out", str(tmp_path / "sweep")])
    spec = spec_from_args(args)
    assert spec.arms == ["lecun", "lsuv"] and spec.arm_list == ("lecun", "lsuv")
    with pytest.raises(SystemExit):
        parser.parse_args(["--arms", "he,glorot"])
    run_sweep(spec, progress=lambda line: None)
    found = records.read_records(str(tmp_path / "sweep"))
    assert sorted(record["init"] for record in found) == ["lecun", "lsuv"]
    for record in found:
        (fields,) = record["executions"][-1]["arms"].values()
        assert fields["initialized"] and fields["epochs"] == 1
