"""experiments: offline datasets, named configs, the sweep runner's pieces and the report builder."""

import json
import dataclasses
import socket

import numpy as np
import pytest

import search_spaces
from autoinit_nas.trials import records
from autoinit_nas.engines.keras_tuner import space
from autoinit_nas import configs, datasets, report, sweeps as sweep


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a dataset tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# datasets --------------------------------------------------------------------


@pytest.mark.parametrize("name", datasets.names())
def test_datasets_are_offline_split_and_standardized_on_train(name, no_network):
    data = datasets.load(name, seed=3)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert data.x_train.shape[1:] == data.x_val.shape[1:] == data.input_shape
    assert len(data.y_val) == pytest.approx(0.25 * len(data.y_train), rel=0.1)
    assert set(np.unique(data.y_train)) == set(np.unique(data.y_val)) == set(range(data.num_classes))
    axes = {"tabular": (0,), "image": (0, 1, 2), "signal": (0, 1)}[data.kind]
    mean, std = data.x_train.mean(axis=axes), data.x_train.std(axis=axes)
    assert np.allclose(mean, 0.0, atol=1e-4)
    assert np.allclose(std[std > 0.5], 1.0, atol=1e-4)  # features constant in train stay unscaled
    assert abs(float(data.x_val.mean())) < 0.5  # validation uses the training statistics, not its own
    assert not data.x_train.flags.writeable
    again = datasets.load(name, seed=3)
    np.testing.assert_array_equal(again.x_val, data.x_val)


def test_dataset_shapes_and_classes():
    expected = {"digits": ((8, 8, 1), 10), "breast_cancer": ((30,), 2), "wine": ((13,), 3), "iris": ((4,), 3)}
    for name, (shape, classes) in expected.items():
        data = datasets.load(name)
        assert (data.input_shape, data.num_classes) == (shape, classes), name
    assert "mnist1d" in datasets.names(available_only=False)
    assert set(datasets.describe()) == set(datasets.names())


def test_dataset_limit_and_errors():
    small = datasets.load("digits", limit=100)
    assert len(small.y_train) == 100 and len(small.y_val) == 25
    assert set(np.unique(small.y_train)) == set(range(10))
    assert "100 train / 25 validation" in small.summary()
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'. Expected one of: breast_cancer"):
        datasets.load("mnist")
    with pytest.raises(ValueError, match="validation_fraction"):
        datasets.load("wine", validation_fraction=1.5)
    with pytest.raises(ValueError, match="`limit`"):
        datasets.load("wine", limit=3)


def test_mnist1d_is_generated_offline_without_touching_global_numpy_state(no_network):
    pytest.importorskip("mnist1d")
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    datasets._load.cache_clear()
    data = datasets.load("mnist1d", seed=1)
    assert np.random.random() == expected
    assert data.input_shape == (40,) and data.num_classes == 10 and len(data.y_train) == 4000


# configs ---------------------------------------------------------------------


SWEEP_CONFIGS = [name for name in configs.names() if configs.get(name).get("kind") != "study"]


@pytest.mark.parametrize("name", SWEEP_CONFIGS)
def test_configs_are_valid_sweeps_of_their_space(name):
    spec = sweep.SweepSpec.from_config(name, out="unused")
    spec.validate()
    assert spec.config == name
    data = datasets.load(spec.data, limit=50)
    build = search_spaces.get(spec.space)(data.input_shape, data.num_classes, **spec.space_options)
    assert set(spec.hyperparameters) <= set(space.space_hyperparameters(build))


def test_named_configs_and_errors(tmp_path):
    assert {"demo", "deep-mlp", "cnn-digits"} <= set(configs.names())
    demo = configs.get("demo")
    assert demo["init"] == "compare" and demo["data"] == "digits"
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"space": "mlp", "data": "wine", "trials": 2}))
    assert sweep.SweepSpec.from_config(str(path), epochs=5).epochs == 5
    with pytest.raises(ValueError, match="Unknown sweep config 'nope'. Expected one of: .*demo"):
        configs.get("nope")
    path.write_text(json.dumps({"space": "mlp", "colour": "red"}))
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\]"):
        sweep.SweepSpec.from_config(str(path))


# sweep pieces ----------------------------------------------------------------


def test_spec_validation_names_the_field():
    assert sweep.SweepSpec().validate().direction == "max"
    assert sweep.SweepSpec(objective="val_loss").direction == "min"
    cases = [
        ({"space": "cnnn"}, "Unknown search space 'cnnn'"),
        ({"data": "cifar"}, "Unknown dataset 'cifar'"),
        ({"engine": "optuna"}, "Unknown engine 'optuna'. Expected one of: keras-tuner, ray"),
        ({"engine_options": {"tuner": "grid"}}, r"`tuner` must be one of \('random', 'bayesian', 'hyperband'\)"),
        ({"engine": "ray", "engine_options": {"tuner": "random"}}, r"Unknown option\(s\) \['tuner'\] for engine 'ray'"),
        ({"init": "both"}, "`init` must be one of"),
        ({"trials": 0}, "`trials` must be a positive int"),
        ({"hyperparameters": {"depth": {"low": 1}}}, "Hyperparameter 'depth' must be"),
    ]
    for fields, message in cases:
        with pytest.raises(ValueError, match=message):
            sweep.SweepSpec(**fields).validate()


def test_keras_tuner_hyperparameters_narrow_the_space():
    hp = space.hyperparameters_from_overrides({
        "depth": {"min": 2, "max": 30}, "learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
        "activation": ["relu", "tanh"], "skip": False, "units": 64,
    })
    kinds = {parameter.name: type(parameter).__name__ for parameter in hp.space}
    assert kinds == {"depth": "Int", "learning_rate": "Float", "activation": "Choice", "skip": "Fixed",
                     "units": "Fixed"}
    build = search_spaces.get("mlp")((8,), 3)
    build(hp)  # the space keeps the narrowed declarations
    assert hp.values["units"] == 64 and hp.values["skip"] is False and 2 <= hp.values["depth"] <= 30


def test_format_report_line():
    spec = sweep.SweepSpec(hyperparameters={"units": 64, "activation": ["relu", "tanh"]})
    record = records.new_record("keras_tuner", "07", "compare", hyperparameters={"units": 64, "activation": "relu",
                                                                                  "tuner/epochs": 2})
    record["status"] = "completed"
    record["executions"] = [{"execution": 0, "arms": {
        "autoinit": {"metrics": {"val_accuracy": 0.9}, "diverged": False},
        "default": {"metrics": {"val_accuracy": 0.4}, "diverged": True}}}]
    line = sweep.format_report(sweep.TrialReport.from_record(record, spec, seconds=3.25), 7, 30, spec)
    assert line == "[ 7/30] trial 07  completed  autoinit 0.900  default 0.400 (diverged)  +0.500    3.2 s  activation=relu"
    failed = sweep.TrialReport.from_record(None, spec, trial_id="08", seconds=1.0, error="ValueError: boom")
    assert "trial 08  error      error: ValueError: boom" in sweep.format_report(failed, 8, 30, spec)


def test_format_report_says_when_a_scheduler_stopped_the_trial_early():
    spec = sweep.SweepSpec(engine="ray", epochs=4, init="default")
    record = records.new_record("ray", "a1", "default", hyperparameters={"units": 8})
    record.update(status="completed", stopped_by_tune=True)
    record["executions"] = [{"execution": 0, "arms": {
        "default": {"metrics": {"val_accuracy": 0.5}, "diverged": False, "epochs": 1}}}]
    line = sweep.format_report(sweep.TrialReport.from_record(record, spec, seconds=1.0), 3, 6, spec)
    assert "stopped early at epoch 1/4" in line
    record["executions"][0]["arms"]["default"]["epochs"] = 4  # ended by max_t: not early
    assert "stopped" not in sweep.format_report(sweep.TrialReport.from_record(record, spec, seconds=1.0), 3, 6, spec)


def test_run_sweep_refuses_a_different_sweep_in_the_same_directory(tmp_path):
    (tmp_path / sweep.SPEC_FILE).write_text(json.dumps({"spec": {**sweep.SweepSpec(epochs=3).identity()}}))
    with pytest.raises(sweep.SweepError, match=r"holds a different sweep \(epochs: 3 there, 2 now\)"):
        sweep.run_sweep(sweep.SweepSpec(out=str(tmp_path), epochs=2), progress=lambda line: None)


def test_saved_sweeps_of_earlier_releases_keep_their_engine_options(tmp_path):
    old = {**dataclasses.asdict(sweep.SweepSpec(out=str(tmp_path))), "tuner": "bayesian", "address": None}
    del old["engine_options"]  # sweep.json as earlier releases wrote it: engine options at the top level
    (tmp_path / sweep.SPEC_FILE).write_text(json.dumps({"spec": old, "runs": []}))
    assert sweep.read_spec(str(tmp_path)).engine_options == {"tuner": "bayesian"}
    with pytest.raises(sweep.SweepError, match=r"holds a different sweep \(tuner: 'bayesian' there, 'random' now\)"):
        sweep.run_sweep(sweep.SweepSpec(out=str(tmp_path)), progress=lambda line: None)


def test_run_sweep_rejects_unknown_hyperparameters(tmp_path):
    spec = sweep.SweepSpec(out=str(tmp_path), data="wine", hyperparameters={"width": 3})
    with pytest.raises(ValueError, match=r"no hyperparameter\(s\) \['width'\]. Its hyperparameters: \['depth'"):
        sweep.run_sweep(spec, progress=lambda line: None)


# make check: ~20 s; paired Ray sweeps are covered in make test by tests/integrations/test_ray_tune.py
@pytest.mark.slow
def test_ray_engine_runs_paired_trials(tmp_path, ray_session):
    lines = []
    spec = sweep.SweepSpec(engine="ray", space="mlp", data="wine", trials=1, epochs=1, init="compare",
                           out=str(tmp_path / "ray_sweep"), limit=60,
                           hyperparameters={"depth": 2, "units": 16, "normalization": "none", "dropout": 0.0,
                                            "skip": False})
    result = sweep.run_sweep(spec, progress=lines.append)
    trial_lines = [line for line in lines if " trial " in line]
    assert len(trial_lines) == 2 and all(line.startswith(("[1/2]", "[2/2]")) for line in trial_lines)
    table = result.table()
    assert sorted(table["arm"]) == ["autoinit", "default"] and set(table["engine"]) == {"ray"}
    assert table["seed"].nunique() == 1  # both arms of a pair share the trial seed
    from autoinit_nas.results import compare_inits

    assert len(compare_inits(table)) == 1
    again = sweep.run_sweep(spec, progress=lines.append)
    assert again.ran == [] and "nothing to run: 2 trials done, 2 asked for" in lines[-1]


# report ----------------------------------------------------------------------


def synthetic_sweep(directory, pairs=6):
    """Records of a finished "compare" sweep, without training anything."""
    rng = np.random.default_rng(0)
    for index in range(pairs):
        depth = 2 + 5 * index
        activation = ("relu", "tanh")[index % 2]
        default = float(rng.uniform(0.1, 0.9))
        autoinit = min(default + float(rng.uniform(-0.05, 0.3)), 1.0)
        record = records.new_record("keras_tuner", f"{index:02d}", "compare", seed=index,
                                    hyperparameters={"depth": depth, "activation": activation},
                                    architecture_id=f"arch{index}", parameter_count=1000 * depth, depth=depth + 1)
        record["status"] = "completed"
        arms = {}
        for arm, value in (("autoinit", autoinit), ("default", default)):
            diverged = arm == "default" and index == pairs - 1
            arms[arm] = {"init_seconds": 0.1 if arm == "autoinit" else 0.0, "train_seconds": 1.0,
                         "diverged": diverged, "divergence": "non-finite loss" if diverged else None,
                         "epochs": 1, "metrics": {"val_accuracy": value}, "final_metrics": {"val_accuracy": value}}
        record["executions"] = [{"execution": 0, "arms": arms}]
        records.write_record(str(directory / "keras_tuner" / f"trial_{index:02d}"), record)
    spec = sweep.SweepSpec(out=str(directory), trials=pairs, epochs=1, data="digits")
    (directory / sweep.SPEC_FILE).write_text(json.dumps({"spec": dataclasses.asdict(spec), "runs": []}))


def test_build_report_writes_tables_markdown_and_plots(tmp_path):
    synthetic_sweep(tmp_path)
    built = report.build_report(tmp_path)
    out = tmp_path / "report"
    for name in ("trials.csv", "comparison.csv", "summary.csv", "report.md", "paired_scatter.png",
                 "metric_vs_depth.png", "divergence.png"):
        assert (out / name).stat().st_size > 0, name
        assert built.files[name] == str(out / name)
    assert (out / "paired_scatter.png").read_bytes()[:4] == b"\x89PNG"
    text = built.text
    assert "mlp on digits, 1 epochs, keras-tuner: 6 trials (6 completed)" in text
    assert "depth  activation  default  autoinit  difference  diverged" in text
    assert "Wilcoxon signed-rank p = " in text and "diverged arms: autoinit 0, default 1" in text
    assert "depth_bucket" in text and "activation    relu" in text
    markdown = (out / "report.md").read_text()
    assert "| depth | activation | default | autoinit | difference | diverged |" in markdown
    assert "![paired_scatter](paired_scatter.png)" in markdown
    summary = built.summary
    assert summary.iloc[0]["group"] == "all" and summary.iloc[0]["n"] == 6
    assert set(summary["group"]) == {"all", "depth_bucket", "hp_activation"}


def test_build_report_single_arm_and_empty(tmp_path):
    record = records.new_record("keras_tuner", "0", "autoinit", hyperparameters={"depth": 2}, depth=3,
                                architecture_id="a")
    record["status"] = "completed"
    record["executions"] = [{"execution": 0, "arms": {"autoinit": {
        "diverged": False, "metrics": {"val_accuracy": 0.5}, "final_metrics": {"val_accuracy": 0.5}}}}]
    records.write_record(str(tmp_path / "runs" / "trial_0"), record)
    built = report.build_report(tmp_path / "runs", out=tmp_path / "elsewhere")
    assert "No candidate has both arms" in built.text and "diverged arms: autoinit 0/1" in built.text
    assert (tmp_path / "elsewhere" / "metric_vs_depth.png").exists()
    assert "paired_scatter.png" not in built.files
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No trials under"):
        report.build_report(tmp_path / "empty")


def test_sweep_propagation_reaches_the_autoinit_of_every_trial():
    assert sweep.SweepSpec().autoinit().propagation == "probe"
    assert sweep.SweepSpec(propagation="scalar").validate().autoinit().propagation == "scalar"
    with pytest.raises(ValueError, match=r"`propagation` must be one of \('probe', 'scalar'\)"):
        sweep.SweepSpec(propagation="exact").validate()
