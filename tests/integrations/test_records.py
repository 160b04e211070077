"""Trial records: architecture ids, depth, the on-disk format and its readers."""

import json
import math
import os

import keras
import pytest

from autoinit_nas import AutoInit
from autoinit_nas.integrations import records


def mlp(width=8, names=None, initializer="glorot_uniform", dropout_seed=None):
    names = names or ["a", "b", "c"]
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(width, kernel_initializer=initializer, name=names[0])(inputs)
    hidden = keras.layers.Dropout(0.1, seed=dropout_seed, name=names[1])(hidden)
    return keras.Model(inputs, keras.layers.Dense(2, name=names[2])(hidden))


# --- architecture id -------------------------------------------------------------


def test_architecture_id_ignores_names_initializers_and_seeds():
    reference = records.architecture_id(mlp())
    assert records.architecture_id(mlp(names=["x", "y", "z"])) == reference
    assert records.architecture_id(mlp(initializer="zeros", dropout_seed=7)) == reference
    initialized = AutoInit(weight_init_config={"seed": 0}).initialize_model(mlp())
    assert records.architecture_id(initialized) == reference
    assert records.architecture_id(mlp().get_config()) == reference


def test_architecture_id_sees_width_and_topology():
    assert records.architecture_id(mlp(width=16)) != records.architecture_id(mlp())
    inputs = keras.Input((4,))
    first = keras.layers.Dense(8)(inputs)
    second = keras.layers.Dense(8)(inputs)
    a = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Add()([first, second])))
    inputs = keras.Input((4,))
    first = keras.layers.Dense(8)(inputs)
    second = keras.layers.Dense(8)(first)
    b = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Add()([first, second])))
    assert records.architecture_id(a) != records.architecture_id(b)


def test_architecture_id_rejects_other_things():
    with pytest.raises(TypeError, match="Keras model or a model config dict"):
        records.architecture_id("mlp")


# --- depth ------------------------------------------------------------------------


def test_depth_counts_kernels_on_the_longest_path():
    assert records.depth(mlp()) == 2  # Dropout has no kernel
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(4, 3)(inputs)
    hidden = keras.layers.BatchNormalization()(hidden)  # rank-1 weights only
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    assert records.depth(keras.Model(inputs, keras.layers.Dense(2)(hidden))) == 2


def test_depth_of_sequential_residual_and_nested_models():
    sequential = keras.Sequential([keras.Input((4,))] + [keras.layers.Dense(4) for _ in range(5)])
    assert records.depth(sequential) == 5
    inputs = keras.Input((4,))
    skip = keras.layers.Dense(4)(inputs)
    long = keras.layers.Dense(4)(keras.layers.Dense(4)(keras.layers.Dense(4)(inputs)))
    residual = keras.Model(inputs, keras.layers.Add()([skip, long]))
    assert records.depth(residual) == 3
    outer_inputs = keras.Input((4,))
    nested = keras.Model(outer_inputs, keras.layers.Dense(1)(residual(residual(outer_inputs))))
    assert records.depth(nested) == 7


# --- format -------------------------------------------------------------------------


def test_write_then_read_round_trips_with_nan_as_null(tmp_path):
    record = records.new_record("keras_tuner", "07", "compare", seed=3, hyperparameters={"depth": 2})
    record["executions"].append(
        {"execution": 0, "arms": {"autoinit": {"diverged": True, "metrics": {"loss": float("nan")}}}}
    )
    record["status"] = "diverged"
    path = records.write_record(str(tmp_path / "trial_07"), record)
    assert os.path.basename(path) == records.RECORD_FILENAME
    with open(path) as stream:
        text = stream.read()
    assert "NaN" not in text  # strict JSON
    loaded = records.read_record(str(tmp_path / "trial_07"))
    assert loaded["executions"][0]["arms"]["autoinit"]["metrics"]["loss"] is None
    assert loaded["seed"] == 3 and loaded["updated_at"]
    assert [r["trial_id"] for r in records.read_records(str(tmp_path))] == ["07"]
    assert os.listdir(tmp_path / "trial_07") == [records.RECORD_FILENAME]  # no temporary left


def test_rows_flatten_one_row_per_arm():
    record = records.new_record("keras_tuner", "01", "compare", seed=1, hyperparameters={"units": 16})
    record["objective"] = {"name": "val_accuracy", "direction": "max"}
    record["executions"].append({"execution": 0, "arms": {}})
    for arm, value in (("autoinit", 0.9), ("default", 0.5)):
        record["executions"][0]["arms"][arm] = {
            "init_seconds": 0.1, "diverged": False, "metrics": {"val_accuracy": value},
            "final_metrics": {"val_accuracy": value}, "history": {"val_accuracy": [value]}, "estimates": {},
        }
    rows = records.rows(record)
    assert [(row["arm"], row["best/val_accuracy"]) for row in rows] == [("autoinit", 0.9), ("default", 0.5)]
    assert all(row["hp/units"] == 16 and row["mode"] == "compare" and row["objective"] == "val_accuracy" for row in rows)
    assert "history" not in rows[0] and "estimates" not in rows[0]


def test_bad_records_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Unknown record fields"):
        records.new_record("keras_tuner", "0", "autoinit", colour="blue")
    record = records.new_record("keras_tuner", "0", "autoinit")
    record["status"] = "done"
    with pytest.raises(ValueError, match="status"):
        records.write_record(str(tmp_path), record)
    (tmp_path / records.RECORD_FILENAME).write_text(json.dumps({"trial_id": "0"}))
    with pytest.raises(ValueError, match="not an autoinit_nas trial record"):
        records.read_record(str(tmp_path))


def test_json_safe_handles_numpy_and_infinity():
    import numpy as np

    safe = records.json_safe({"a": np.float32(1.5), "b": np.int64(2), "c": (math.inf, 1), "d": np.bool_(True)})
    assert safe == {"a": 1.5, "b": 2, "c": [None, 1], "d": True}


def test_records_of_the_earlier_layout_still_read(tmp_path):
    """A version-1 record as the integrations-era code wrote it reads back and flattens unchanged."""
    written_before = {
        "format": "autoinit_nas.trial_record", "version": 1, "engine": "keras_tuner", "trial_id": "03",
        "status": "completed", "reason": None, "init": "compare", "seed": 77,
        "hyperparameters": {"depth": 2}, "architecture_id": "a" * 64, "parameter_count": 100, "depth": 3,
        "objective": {"name": "val_accuracy", "direction": "max"}, "reloaded_from": None,
        "worker": {"host": "h", "pid": 1, "tuner_id": "tuner0"}, "updated_at": "2026-01-01T00:00:00+00:00",
        "executions": [{"execution": 0, "arms": {
            "autoinit": {"initialized": True, "init_seconds": 0.1, "metrics": {"val_accuracy": 0.9},
                         "final_metrics": {"val_accuracy": 0.8}, "diverged": False},
            "default": {"initialized": False, "init_seconds": 0.0, "metrics": {"val_accuracy": None},
                        "final_metrics": {}, "diverged": True}}}],
    }
    (tmp_path / records.RECORD_FILENAME).write_text(json.dumps(written_before))
    record = records.read_record(str(tmp_path))
    assert record == written_before
    autoinit, default = records.rows(record)
    assert (autoinit["arm"], autoinit["best/val_accuracy"], autoinit["mode"]) == ("autoinit", 0.9, "compare")
    assert (default["arm"], default["diverged"]) == ("default", True)


def test_a_record_of_an_unknown_version_is_refused(tmp_path):
    record = records.new_record("ray", "t", "autoinit")
    record["version"] = 99
    (tmp_path / records.RECORD_FILENAME).write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"version 99; this autoinit_nas reads versions \[1\]"):
        records.read_record(str(tmp_path))
