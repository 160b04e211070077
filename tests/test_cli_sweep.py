"""autoinit-nas sweep / report, run in-process through main(): a tiny real sweep, its report, resuming."""

import json
import re

import pytest

from autoinit_nas import cli
from autoinit_nas.results import trials_table

# A tiny compare sweep: 2-layer MLPs on 80 wine examples, one epoch per arm.
TINY = ["--space", "mlp", "--data", "wine", "--epochs", "1", "--init", "compare", "--limit", "80",
        "--hp", "depth=2", "--hp", "units=16", "--hp", 'activation=["relu","tanh","sigmoid","selu","elu"]',
        "--hp", "normalization=none", "--hp", "dropout=0.0", "--hp", "skip=false"]
TRIAL_LINE = re.compile(r"^\[\s*\d+/\d+\] trial \d+\s+completed\s+autoinit \d\.\d{3}\s+default \d\.\d{3}.* s\s")


def trial_lines(text):
    return [line for line in text.splitlines() if TRIAL_LINE.match(line)]


def test_sweep_report_and_resume(tmp_path, capsys):
    out = str(tmp_path / "sweep")
    assert cli.main(["sweep", *TINY, "--trials", "2", "--out", out, "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    lines = trial_lines(printed)
    assert [line[:5] for line in lines] == ["[1/2]", "[2/2]"], printed
    assert "sweep mlp on wine: 80 train / 20 validation examples" in printed
    assert "autoinit vs default on val_accuracy (2 candidates)" in printed
    assert f"report: autoinit-nas report {out}" in printed
    saved = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert saved["spec"]["seed"] == 4 and saved["runs"][0]["ran"] == ["0", "1"]

    assert cli.main(["report", out]) == 0
    printed = capsys.readouterr().out
    assert "2 trials (2 completed)" in printed
    assert "default  autoinit  difference  diverged" in printed
    for name in ("trials.csv", "comparison.csv", "summary.csv", "report.md", "paired_scatter.png",
                 "metric_vs_depth.png", "divergence.png"):
        assert (tmp_path / "sweep" / "report" / name).stat().st_size > 0
        assert f"wrote {tmp_path / 'sweep' / 'report' / name}" in printed

    # Resume with one more trial: only the new one runs, nothing is duplicated.
    assert cli.main(["sweep", *TINY, "--trials", "3", "--out", out, "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    assert [line[:5] for line in trial_lines(printed)] == ["[3/3]"], printed
    assert "ran 1 trial(s)" in printed and "2 done before" in printed
    table = trials_table(out)
    assert len(table) == 6 and not table.duplicated(["trial_id", "arm"]).any()
    assert sorted(set(table["trial_id"])) == ["0", "1", "2"]
    assert (table["status"] == "completed").all()

    # The same settings again: nothing left to run.
    assert cli.main(["sweep", *TINY, "--trials", "3", "--out", out, "--seed", "4"]) == 0
    assert "nothing to run: 3 trials done, 3 asked for" in capsys.readouterr().out


def test_sweep_refuses_other_settings_on_the_same_out(tmp_path, capsys):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"spec": {"space": "mlp", "data": "wine", "epochs": 1}}))
    assert cli.main(["sweep", "--data", "wine", "--epochs", "2", "--out", str(out)]) == cli.USAGE_ERROR
    error = capsys.readouterr().err
    assert "autoinit-nas sweep: error:" in error and "holds a different sweep" in error
    assert "epochs: 1 there, 2 now" in error and "--overwrite" in error


def test_sweep_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["sweep", "--data", "mnist", "--out", str(tmp_path)]) == cli.USAGE_ERROR
    assert "Unknown dataset 'mnist'" in capsys.readouterr().err
    assert cli.main(["sweep", "--config", "nope", "--out", str(tmp_path)]) == cli.USAGE_ERROR
    assert "Unknown sweep config 'nope'" in capsys.readouterr().err
    assert cli.main(["sweep", "--hp", "depth", "--out", str(tmp_path)]) == cli.USAGE_ERROR
    assert "--hp expects NAME=VALUE" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "missing")]) == cli.USAGE_ERROR
    assert "No results directory" in capsys.readouterr().err


def test_config_values_and_flag_overrides():
    from autoinit_nas.sweeps.command import add_arguments, spec_from_args

    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    spec = spec_from_args(parser.parse_args(["--config", "deep-mlp", "--trials", "3", "--hp", "units=32"]))
    assert (spec.space, spec.data, spec.trials, spec.out) == ("mlp", "digits", 3, "out/deep-mlp")
    assert spec.hyperparameters["units"] == 32 and spec.hyperparameters["normalization"] == "none"
    plain = spec_from_args(parser.parse_args([]))
    assert (plain.space, plain.data, plain.engine, plain.init, plain.out) == (
        "mlp", "digits", "keras-tuner", "compare", "out/sweep")


@pytest.mark.parametrize("command", ["sweep", "report"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: autoinit-nas {command}" in text
    if command == "sweep":
        for flag in ("--space", "--data", "--engine", "--trials", "--epochs", "--init", "--out", "--address",
                     "--config", "--seed"):
            assert flag in text
        assert "configs: cnn-digits, deep-mlp, demo" in text
    else:
        assert "DIR" in text and "--metric" in text


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    for command in ("visualize", "layers", "sweep", "report"):
        assert command in text


@pytest.mark.slow  # whole sweeps, twice (~18 s): make check
def test_interrupted_trial_reruns_with_its_hyperparameters(tmp_path, capsys, monkeypatch):
    from autoinit_nas.integrations.keras_tuner import AutoInitHyperModel

    out = tmp_path / "sweep"
    fit = AutoInitHyperModel.fit
    calls = []

    def crash_in_second_trial(self, hp, model, *args, **kwargs):
        calls.append(dict(hp.values))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the driver dies while trial 1 trains
        return fit(self, hp, model, *args, **kwargs)

    monkeypatch.setattr(AutoInitHyperModel, "fit", crash_in_second_trial)
    assert cli.main(["sweep", *TINY, "--trials", "3", "--out", str(out)]) == 130
    captured = capsys.readouterr()
    assert [line[:5] for line in trial_lines(captured.out)] == ["[1/3]"]
    assert "interrupted: rerun the same command to resume" in captured.err
    in_flight = json.loads((out / "keras_tuner" / "trial_1" / "trial.json").read_text())
    assert in_flight["status"] == "RUNNING"
    monkeypatch.setattr(AutoInitHyperModel, "fit", fit)

    assert cli.main(["sweep", *TINY, "--trials", "3", "--out", str(out)]) == 0
    lines = trial_lines(capsys.readouterr().out)
    assert [line.split()[2] for line in lines] == ["1", "2"]  # the trial in flight, then the last one
    table = trials_table(out)
    assert not table.duplicated(["trial_id", "arm"]).any() and len(table) == 6
    rerun = table[table["trial_id"] == "1"].iloc[0]
    assert rerun["hp_activation"] == calls[1]["activation"] and rerun["hp_learning_rate"] == calls[1]["learning_rate"]


@pytest.mark.slow  # whole sweeps, twice (~18 s): make check
def test_seed_zero_fixes_the_sampled_architectures(tmp_path, capsys):
    # keras-tuner reads seed 0 as "no seed"; the sweep must not.
    options = ["--space", "mlp", "--data", "wine", "--epochs", "1", "--init", "default", "--limit", "60",
               "--trials", "3", "--seed", "0", "--hp", "units=8", "--hp", "normalization=none",
               "--hp", 'depth={"min":1,"max":3}']  # shallow: the check is the sampling, not the training
    sampled = []
    for run in ("first", "second"):
        assert cli.main(["sweep", *options, "--out", str(tmp_path / run)]) == 0
        table = trials_table(str(tmp_path / run)).sort_values("trial_id")
        hp_columns = sorted(column for column in table.columns if column.startswith("hp_"))
        sampled.append(table[hp_columns].astype(str).values.tolist())
    capsys.readouterr()
    assert sampled[0] == sampled[1]


# make check (~10 s): Hyperband continuations stay covered in make test by test_keras_tuner_hyperband
@pytest.mark.slow
def test_hyperband_sweep_continues_a_candidate_from_its_checkpoint(tmp_path, capsys):
    import warnings

    # max_epochs 2, factor 2: two candidates train 1 epoch, the better trains on to epoch 2 (trial 2).
    options = ["--space", "mlp", "--data", "wine", "--limit", "80", "--init", "compare", "--tuner", "hyperband",
               "--epochs", "2", "--hyperband-factor", "2", "--trials", "3", "--hp", "depth=1", "--hp", "units=8",
               "--hp", 'activation=["relu","tanh"]', "--hp", "normalization=none", "--hp", "dropout=0.0",
               "--hp", "skip=false"]
    out = str(tmp_path / "hb")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cli.main(["sweep", *options, "--out", out]) == 0
    printed = capsys.readouterr().out
    lines = trial_lines(printed)
    assert [line[:5] for line in lines] == ["[1/3]", "[2/3]", "[3/3]"], printed
    assert ["continues trial" in line for line in lines] == [False, False, True]
    assert not [w for w in caught if "Skipping variable loading for optimizer" in str(w.message)]
    table = trials_table(out)
    continued = table[table["reloaded_from"].notna()]
    assert sorted(continued["arm"]) == ["autoinit", "default"] and set(continued["trial_id"]) == {"2"}
    assert set(continued["reloaded_from"]) < {"0", "1"} and (continued["epochs"] == 1).all()
    assert f"continues trial {continued['reloaded_from'].iloc[0]}" in lines[2]
    assert not continued["initialized"].astype(bool).any()
    saved = json.loads((tmp_path / "hb" / "sweep.json").read_text())
    assert saved["spec"]["engine_options"] == {"tuner": "hyperband", "hyperband_factor": 2}


def test_hyperband_factor_is_checked(tmp_path, capsys):
    assert cli.main(["sweep", "--tuner", "hyperband", "--hyperband-factor", "1", "--out", str(tmp_path)]) == \
        cli.USAGE_ERROR
    assert "`hyperband_factor` must be an int of at least 2. Received: hyperband_factor=1" in capsys.readouterr().err
