"""autoinit_nas.results: trial tables from records on disk, paired comparisons, statistics, export."""

import json
import math

import keras_tuner
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from autoinit_nas import results
from autoinit_nas.trials import records
from autoinit_nas.integrations.keras_tuner import AutoInitHyperModel


def arm(best, final=None, diverged=False, train_seconds=1.0, init_seconds=0.0, metric="val_accuracy"):
    return {
        "initialized": init_seconds > 0,
        "init_seconds": init_seconds,
        "train_seconds": train_seconds,
        "diverged": diverged,
        "divergence": "non-finite loss (nan) at epoch 0" if diverged else None,
        "epochs": 2,
        "metrics": {metric: best, "loss": 0.5},
        "final_metrics": {metric: best if final is None else final, "loss": 0.6},
        "history": {metric: [best, best if final is None else final]},
        "estimates": {"dense": [0.0, 1.0]},
    }


def compare_record(trial_id, architecture, depth, autoinit, default, engine="keras_tuner", **hyperparameters):
    """A completed "compare" record: both arms in one trial."""
    record = records.new_record(
        engine, trial_id, "compare", seed=7, hyperparameters={"depth": depth, **hyperparameters},
        architecture_id=architecture, parameter_count=100 * depth, depth=depth,
        objective={"name": "val_accuracy", "direction": "max"},
    )
    record["status"] = "completed"
    record["executions"] = [{"execution": 0, "arms": {"autoinit": autoinit, "default": default}}]
    return record


def write_keras_tuner_trial(project, trial_id, record=None, status="COMPLETED", message=None, values=None):
    directory = project / f"trial_{trial_id}"
    directory.mkdir(parents=True)
    trial = {"trial_id": trial_id, "hyperparameters": {"space": [], "values": values or {}},
             "metrics": {"metrics": {}}, "score": None, "best_step": 0, "status": status, "message": message}
    (directory / "trial.json").write_text(json.dumps(trial))
    if record is not None:
        records.write_record(str(directory), record)
    return directory


@pytest.fixture
def project(tmp_path):
    """A keras-tuner-shaped project: three recorded trials, one that failed before writing a record."""
    root = tmp_path / "project"
    write_keras_tuner_trial(root, "0", compare_record("0", "a", 3, arm(0.9, 0.85, init_seconds=0.1), arm(0.8)))
    write_keras_tuner_trial(root, "1", compare_record(
        "1", "b", 25, arm(0.7, init_seconds=0.2), arm(0.1, diverged=True), activation="relu"))
    write_keras_tuner_trial(root, "2", compare_record("2", "c", 12, arm(0.6, init_seconds=0.1), arm(0.65)))
    write_keras_tuner_trial(root, "10", None, status="FAILED",
                            message="Traceback (most recent call last):\nValueError: bad shape", values={"depth": 4})
    return root


# trials_table ----------------------------------------------------------------


def test_trials_table_one_row_per_trial_and_arm(project):
    table = results.trials_table(project)
    assert list(table.columns[:9]) == results.ID_COLUMNS
    assert table["trial_id"].tolist() == ["0", "0", "1", "1", "2", "2", "10"]  # natural order of trial ids
    assert table["arm"].tolist()[:6] == ["autoinit", "default"] * 3 and pd.isna(table["arm"].iloc[6])
    first = table.iloc[0]
    assert first.architecture_id == "a" and first["mode"] == "compare" and first.seed == 7
    assert first.hp_depth == 3 and first.depth == 3 and first.parameter_count == 300
    assert first.best_val_accuracy == 0.9 and first.final_val_accuracy == 0.85
    assert first.init_seconds == pytest.approx(0.1) and first.train_seconds == 1.0
    assert first.status == "completed" and first.engine_status == "completed"
    assert table.loc[3, "diverged"] and "non-finite" in table.loc[3, "divergence"]
    assert table["diverged"].dtype == "boolean" and table["depth"].dtype == "Int64"
    assert {"best_loss", "final_loss", "hp_activation", "trial_dir"} <= set(table.columns)


def test_trials_table_keeps_trials_without_a_record(project):
    orphan = results.trials_table(project).iloc[-1]
    assert orphan.trial_id == "10" and orphan.status == "error" and orphan.engine_status == "failed"
    assert orphan.error == "ValueError: bad shape" and orphan.hp_depth == 4
    assert pd.isna(orphan.arm) and pd.isna(orphan.best_val_accuracy)


def test_trials_table_reads_running_and_ray_trials(tmp_path):
    running = records.new_record("keras_tuner", "3", "autoinit", hyperparameters={"depth": 2})
    write_keras_tuner_trial(tmp_path / "kt", "3", running, status="RUNNING")
    for index, init in enumerate(("autoinit", "default")):
        record = compare_record(f"r_{index}", "z", 5, arm(0.5 + index / 10), arm(0.0), engine="ray")
        record["init"] = init
        record["hyperparameters"]["init"] = init
        record["executions"][0]["arms"] = {init: arm(0.5 + index / 10)}
        directory = tmp_path / "ray" / f"trial_{index}"
        directory.mkdir(parents=True)
        (directory / "params.json").write_text(json.dumps(record["hyperparameters"]))
        (directory / "result.json").write_text(json.dumps({"done": True}) + "\n")
        records.write_record(str(directory), record)
    broken = tmp_path / "ray" / "trial_9"
    broken.mkdir()
    (broken / "params.json").write_text(json.dumps({"depth": 9, "init": "default"}))
    (broken / "error.txt").write_text("Traceback\nRuntimeError: worker died")
    table = results.trials_table(tmp_path)
    by_id = {row.trial_id: row for row in table.itertuples()}
    assert by_id["3"].status == "running" and pd.isna(by_id["3"].arm)
    assert by_id["r_0"].arm == "autoinit" and by_id["r_0"].engine_status == "terminated"
    assert "hp_init" not in table.columns  # the arm of a Ray trial is its `arm`, not a hyperparameter
    assert by_id["trial_9"].status == "error" and by_id["trial_9"].error == "RuntimeError: worker died"
    assert by_id["trial_9"].mode == "default"
    comparison = results.compare_inits(table)
    assert comparison[["architecture_id", "autoinit_val_accuracy", "default_val_accuracy"]].values.tolist() == [
        ["z", 0.5, 0.6]
    ]


def test_trials_table_accepts_records_and_rejects_the_rest(tmp_path):
    table = results.trials_table([compare_record("0", "a", 2, arm(0.5), arm(0.4))])
    assert len(table) == 2 and table["trial_dir"].isna().all()
    with pytest.raises(FileNotFoundError, match="No results directory"):
        results.trials_table(tmp_path / "missing")
    with pytest.raises(TypeError, match="keras-tuner tuner, a Ray ResultGrid"):
        results.trials_table(42)
    with pytest.raises(TypeError, match="record dicts"):
        results.trials_table(["x"])
    assert results.trials_table(tmp_path).empty


def test_trials_table_from_a_real_keras_tuner_search(tmp_path):
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = (data.data[:200] / 16.0).astype("float32"), data.target[:200]

    def build(hp):
        import keras

        inputs = keras.Input((64,))
        hidden = inputs
        for _ in range(hp.Int("depth", 1, 3)):
            hidden = keras.layers.Dense(16, activation=hp.Choice("activation", ["relu", "tanh"]))(hidden)
        model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden))
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    tuner = keras_tuner.RandomSearch(
        AutoInitHyperModel(build, init="compare"), objective="val_accuracy", max_trials=2,
        directory=str(tmp_path), project_name="real", seed=1,
    )
    tuner.search(x[:150], y[:150], validation_data=(x[150:], y[150:]), epochs=1, batch_size=32, verbose=0)

    from_tuner = results.trials_table(tuner)
    from_disk = results.trials_table(tmp_path / "real")
    pd.testing.assert_frame_equal(from_tuner, from_disk)
    assert len(from_tuner) == 4 and set(from_tuner["arm"]) == {"autoinit", "default"}
    assert (from_tuner["status"] == "completed").all()
    assert from_tuner.loc[from_tuner["arm"] == "autoinit", "init_seconds"].gt(0).all()
    assert from_tuner["best_val_accuracy"].between(0, 1).all()
    assert {"hp_depth", "hp_activation"} <= set(from_tuner.columns)
    comparison = results.compare_inits(from_tuner)
    assert len(comparison) == 2 and comparison["difference"].notna().all()


# compare_inits -----------------------------------------------------------------


def test_compare_inits_pairs_arms_and_signs_the_difference(project):
    table = results.trials_table(project)
    comparison = results.compare_inits(table, metric="val_accuracy", mode="max")
    assert comparison["architecture_id"].tolist() == ["a", "c", "b"]  # sorted by depth
    assert comparison["difference"].round(3).tolist() == [0.1, -0.05, 0.6]
    assert comparison["depth_bucket"].tolist() == ["1-4", "10-19", "20+"]
    assert comparison["default_diverged"].tolist() == [False, False, True]
    assert comparison.attrs == {"metric": "val_accuracy", "mode": "max", "value": "best", "unpaired": 0,
                                "baseline": "default", "arms": ["autoinit"]}
    assert set(comparison["arm"]) == {"autoinit"} and set(comparison["baseline"]) == {"default"}
    final = results.compare_inits(table, value="final")
    assert final.loc[final["architecture_id"] == "a", "autoinit_val_accuracy"].item() == 0.85
    # Lower is better: the sign flips so positive still means AutoInit did better.
    loss = results.compare_inits(table, metric="loss", mode="min")
    assert (loss["difference"] == 0.0).all()
    table.loc[table["arm"] == "autoinit", "best_loss"] = 0.2
    assert results.compare_inits(table, metric="loss", mode="min")["difference"].round(3).tolist() == [0.3] * 3


def test_compare_inits_averages_repeats_and_counts_unpaired():
    table = pd.DataFrame({
        "architecture_id": ["a"] * 4 + ["b"],
        "hp_depth": [2] * 4 + [5],
        "hp_tuner_epochs": [1, 1, 2, 2, 1],  # bookkeeping: not part of the pair key
        "arm": ["autoinit", "default", "autoinit", "default", "autoinit"],
        "trial_id": ["0", "0", "1", "1", "2"],
        "depth": [3] * 4 + [6],
        "diverged": [False, False, False, True, False],
        "best_val_accuracy": [0.8, 0.5, 0.6, None, 0.9],
    })
    comparison = results.compare_inits(table)
    assert len(comparison) == 1 and comparison.attrs["unpaired"] == 1
    row = comparison.iloc[0]
    assert row.autoinit_val_accuracy == pytest.approx(0.7) and row.default_val_accuracy == 0.5
    assert row.autoinit_n == 2 and row.default_n == 2 and row.default_diverged and row.trial_ids == "0,1"


def test_compare_inits_errors_name_the_problem(project):
    table = results.trials_table(project)
    with pytest.raises(ValueError, match=r"No metric 'auc'.*Metrics present: \['loss', 'val_accuracy'\]"):
        results.compare_inits(table, metric="auc")
    with pytest.raises(ValueError, match="`mode` must be one of"):
        results.compare_inits(table, mode="up")
    empty = results.compare_inits(table[table["arm"] != "default"])
    assert empty.empty and "difference" in empty.columns and empty.attrs["unpaired"] == 3


# summarize ---------------------------------------------------------------------


def test_summarize_counts_interval_and_wilcoxon():
    differences = [0.3, 0.1, 0.2, -0.05, 0.0, 0.25, 0.15, -0.1]
    comparison = pd.DataFrame({
        "difference": differences,
        "autoinit_diverged": [False] * 8,
        "default_diverged": [True, True, False, False, False, False, False, False],
    })
    row = results.summarize(comparison).iloc[0]
    assert (row.pairs, row.n, row.wins, row.ties, row.losses) == (8, 8, 5, 1, 2)
    assert row.mean_difference == pytest.approx(np.mean(differences))
    assert row.median_difference == pytest.approx(np.median(differences))
    assert row.mean_low < row.mean_difference < row.mean_high
    assert row.median_low <= row.median_difference <= row.median_high
    nonzero = [d for d in differences if d != 0]
    assert row.wilcoxon_p == pytest.approx(stats.wilcoxon(nonzero).pvalue)
    assert (row.autoinit_diverged, row.default_diverged) == (0, 2)
    assert "1 zero difference(s) dropped" in row.note
    again = results.summarize(comparison).iloc[0]
    assert (again.mean_low, again.mean_high) == (row.mean_low, row.mean_high)  # fixed seed


def test_summarize_small_and_all_zero_groups_are_nan_with_a_note():
    one = results.summarize(pd.DataFrame({"difference": [0.2]})).iloc[0]
    assert one.n == 1 and one.mean_difference == 0.2
    assert math.isnan(one.mean_low) and math.isnan(one.wilcoxon_p) and "n=1" in one.note
    none = results.summarize(pd.DataFrame({"difference": [math.nan, math.nan]})).iloc[0]
    assert none.pairs == 2 and none.n == 0 and math.isnan(none.mean_difference)
    assert "2 pair(s) without a finite value" in none.note
    zeros = results.summarize(pd.DataFrame({"difference": [0.0, 0.0, 0.0]})).iloc[0]
    # All zero: no evidence of a difference, p = 1 (autoinit_nas.stats), not NaN.
    assert zeros.ties == 3 and zeros.wilcoxon_p == 1.0 and "all differences are zero" in zeros.note
    tolerant = results.summarize(pd.DataFrame({"difference": [0.004, -0.003, 0.2]}), tie=0.005).iloc[0]
    assert (tolerant.wins, tolerant.ties, tolerant.losses) == (1, 2, 0)


def test_summarize_by_a_column(project):
    comparison = results.compare_inits(results.trials_table(project))
    by_depth = results.summarize(comparison, by="depth_bucket")
    assert by_depth["depth_bucket"].tolist() == ["1-4", "10-19", "20+"]
    assert by_depth["default_diverged"].tolist() == [0, 0, 1]
    by_activation = results.summarize(comparison, by="hp_activation")
    assert by_activation["hp_activation"].tolist() == ["(none)", "relu"]
    assert by_activation["n"].tolist() == [2, 1]
    with pytest.raises(ValueError, match="No column 'space'"):
        results.summarize(comparison, by="space")
    with pytest.raises(ValueError, match="'difference' column"):
        results.summarize(pd.DataFrame({"x": [1]}))


def test_depth_bucket():
    assert [results.depth_bucket(d) for d in (1, 4, 5, 19, 20, 300)] == ["1-4", "1-4", "5-9", "10-19", "20+", "20+"]
    assert results.depth_bucket(None) is None and results.depth_bucket(float("nan")) is None


# export ------------------------------------------------------------------------


def test_csv_and_parquet_round_trip(project, tmp_path):
    table = results.trials_table(project)
    csv_path = results.to_csv(table, tmp_path / "out" / "trials.csv")
    back = pd.read_csv(csv_path, dtype={"trial_id": str})
    assert back["trial_id"].tolist() == table["trial_id"].tolist()
    assert back["best_val_accuracy"].round(6).equals(table["best_val_accuracy"].round(6))
    pytest.importorskip("pyarrow")
    parquet_path = results.to_parquet(table, tmp_path / "out" / "trials.parquet")
    read = pd.read_parquet(parquet_path)
    assert read.shape == table.shape and read["trial_id"].tolist() == table["trial_id"].tolist()
    assert read["diverged"].tolist()[:4] == [False, False, False, True]
