"""A new engine is its folder plus one registry line: a toy engine from the tests folder, through sweep, CLI and results."""

import os

import pytest

from autoinit_nas import cli, sweeps
from autoinit_nas.engines import ENGINES, register_engine
from autoinit_nas.results import trials_table
from tests.engines import toy_engine

SMALL = {"depth": 2, "units": 8, "normalization": "none", "dropout": 0.0, "skip": False}


@pytest.fixture
def toy():
    engine = register_engine(toy_engine.ENGINE)
    yield engine
    del ENGINES[engine.name]


def test_a_registered_engine_runs_a_sweep_and_results_read_it(toy, tmp_path):
    lines = []
    spec = sweeps.SweepSpec(engine="toy", space="mlp", data="wine", trials=2, epochs=1, init="compare", limit=60,
                            hyperparameters=SMALL, out=str(tmp_path / "toy"))
    sweep = sweeps.run_sweep(spec, progress=lines.append)
    assert sweep.ran == ["0", "1"]
    assert [line[:5] for line in lines if " trial " in line] == ["[1/2]", "[2/2]"]
    table = trials_table(sweep.out)
    assert set(table["engine"]) == {"toy"} and sorted(table["arm"]) == ["autoinit", "autoinit", "default", "default"]
    assert table["best_val_accuracy"].notna().all() and (table["status"] == "completed").all()
    assert set(table["engine_status"]) == {"started"}  # through the toy's own reader
    again = sweeps.run_sweep(spec, progress=lines.append)
    assert again.ran == [] and "nothing to run: 2 trials done, 2 asked for" in lines[-1]


def test_the_engine_reader_reports_trials_without_a_record(toy, tmp_path):
    trial = tmp_path / "toy" / "trial_7"
    trial.mkdir(parents=True)
    (trial / toy_engine.PARAMS_FILE).write_text('{"trial_id": "7", "hyperparameters": {"depth": 3}}')
    table = trials_table(str(tmp_path))
    assert table[["engine", "trial_id", "status", "hp_depth"]].values.tolist() == [["toy", "7", "error", 3]]


def test_the_command_line_takes_the_engine_and_its_options(toy, tmp_path, capsys):
    out = str(tmp_path / "cli")
    flags = ["sweep", "--engine", "toy", "--data", "wine", "--limit", "60", "--trials", "1", "--epochs", "1",
             "--init", "he", "--out", out, *[f"--hp={name}={str(value).lower()}" for name, value in SMALL.items()]]
    assert cli.main([*flags, "--toy-budget", "2"]) == 0
    assert "trial 0" in capsys.readouterr().out
    table = trials_table(out)
    assert table[["arm", "epochs"]].values.tolist() == [["he", 2]]
    saved = sweeps.read_spec(out)
    assert saved.engine == "toy" and saved.engine_options == {"toy_budget": 2}
    # The budget is part of the sweep's identity; another engine's flag is refused.
    assert cli.main([*flags, "--toy-budget", "3"]) == cli.USAGE_ERROR
    assert "toy_budget: 2 there, 3 now" in capsys.readouterr().err
    assert cli.main([*flags, "--tuner", "bayesian"]) == cli.USAGE_ERROR
    assert "--tuner is an option of engine keras-tuner, not of toy" in capsys.readouterr().err
    assert os.path.isdir(os.path.join(out, "toy", "trial_0"))


def test_engine_options_are_validated_and_old_spec_fields_still_read(toy):
    with pytest.raises(ValueError, match="`toy_budget` must be a positive int. Received: toy_budget=0"):
        sweeps.SweepSpec(engine="toy", engine_options={"toy_budget": 0}).validate()
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['tuner'\] for engine 'toy'"):
        sweeps.SweepSpec(engine="toy", engine_options={"tuner": "random"}).validate()
    old = sweeps.SweepSpec.from_dict({"engine": "keras-tuner", "tuner": "bayesian", "address": None, "epochs": 3})
    assert old.engine_options == {"tuner": "bayesian"} and old.options() == {"tuner": "bayesian", "hyperband_factor": 3}
    assert sweeps.SweepSpec.from_dict({"engine": "ray", "tuner": "random"}).options() == ENGINES["ray"].option_defaults()
