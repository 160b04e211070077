"""Per-arm searches: under a multi-fidelity search, one search per arm from one seed, winners scored on a test split."""

import json
import os

import pytest

from autoinit_nas import report, sweeps
from autoinit_nas.engines import ENGINES
from autoinit_nas.sweeps import searches, winners
from autoinit_nas.trials import records

TINY = {"depth": {"min": 1, "max": 2}, "units": 8}
ARMS = ["he", "lecun"]


def tiny_spec(out, **fields):
    values = dict(space="mlp", data="wine", trials=3, epochs=2, arms=ARMS, out=str(out), hyperparameters=TINY,
                  engine_options={"tuner": "hyperband"})
    values.update(fields)
    return sweeps.SweepSpec(**values)


@pytest.mark.parametrize("engine, options, expected", [
    ("keras-tuner", {"tuner": "hyperband"}, True),
    ("keras-tuner", {"tuner": "random"}, False),
    ("ray", {"scheduler": "asha"}, True),
    ("ray", {"scheduler": "hyperband"}, True),
    ("ray", {"scheduler": "fifo"}, False),
    ("ray", {"scheduler": "pbt"}, False),  # PBT takes one arm: the Ray driver keeps refusing several
])
def test_only_multi_fidelity_searches_with_several_arms_run_one_search_per_arm(engine, options, expected):
    assert ENGINES[engine].option_module().multi_fidelity(ENGINES[engine].resolve_options(options)) is expected
    spec = sweeps.SweepSpec(engine=engine, arms=ARMS, engine_options=options)
    assert searches.per_arm(spec) is expected
    assert searches.per_arm(sweeps.SweepSpec(engine=engine, arms=["he"], engine_options=options)) is False


def test_a_bad_test_fraction_is_explained():
    with pytest.raises(ValueError, match="Received: test_fraction=1.5"):
        sweeps.SweepSpec(test_fraction=1.5).validate()


@pytest.fixture(scope="module")
def hyperband_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("per_arm") / "wine"
    lines = []
    sweep = sweeps.run_sweep(tiny_spec(out), progress=lines.append)
    return out, sweep, lines


def first_bracket(directory):
    """(hyperparameters without bookkeeping) of each fresh trial (not a continuation), in trial order."""
    found = sorted(records.read_records(directory), key=lambda record: int(record["trial_id"]))
    return [{k: v for k, v in record["hyperparameters"].items() if not records.is_bookkeeping(k)}
            for record in found if record.get("reloaded_from") is None]


def test_keras_tuner_hyperband_runs_one_search_per_arm_with_the_same_candidates(hyperband_sweep):
    out, sweep, _ = hyperband_sweep
    streams = {}
    for arm in ARMS:
        found = records.read_records(out / "searches" / arm)
        assert found and {record["init"] for record in found} == {arm}
        streams[arm] = first_bracket(out / "searches" / arm)
    assert streams["he"] and streams["he"] == streams["lecun"]
    # The searches never saw the test split: it was held out before train / validation.
    state = json.loads((out / "searches" / "he" / "sweep.json").read_text())
    assert state["dataset"]["test"] > 0 and state["spec"]["test_fraction"] == 0.2
    assert sweep.winners and [row["arm"] for row in sweep.winners] == ARMS


def test_winners_are_each_searchs_best_trial_scored_on_the_test_split(hyperband_sweep, tmp_path):
    out, sweep, lines = hyperband_sweep
    for row in sweep.winners:
        best = winners.best_record(out / "searches" / row["arm"], "val_accuracy", "max")
        assert row["trial_id"] == str(best["trial_id"]) and row["architecture"] == best["architecture_id"]
        assert row["val_score"] == winners.objective_value(best, "val_accuracy")
        scores = [record["executions"][-1]["arms"][row["arm"]]["metrics"]["val_accuracy"]
                  for record in records.read_records(out / "searches" / row["arm"]) if record["status"] == "completed"]
        assert row["val_score"] == pytest.approx(max(scores))  # the best trial by the validation objective
        assert 0.0 <= row["test_accuracy"] <= 1.0 and row["epochs"] == 2
    assert any(line.startswith("winner of lecun: trial") for line in lines)
    written = report.build_report(out, out=tmp_path / "report", plots=False)
    import pandas as pd

    table = pd.read_csv(written.files["winners.csv"])
    assert list(table["arm"]) == ARMS and set(winners.COLUMNS) <= set(table.columns)
    assert table["test_accuracy"].between(0, 1).all()
    assert "one search is one sample" in (tmp_path / "report" / "report.md").read_text().lower()


def test_a_rerun_skips_finished_searches_and_retrains(hyperband_sweep):
    out, sweep, _ = hyperband_sweep
    stamps = {arm: os.path.getmtime(out / "searches" / arm / winners.WINNER_FILE) for arm in ARMS}
    lines = []
    again = sweeps.run_sweep(tiny_spec(out), progress=lines.append)
    assert again.ran == [] and again.winners == sweep.winners
    assert sum("done before" in line for line in lines) == len(ARMS)
    assert stamps == {arm: os.path.getmtime(out / "searches" / arm / winners.WINNER_FILE) for arm in ARMS}


def test_the_command_prints_the_winners_table(hyperband_sweep, capsys):
    from autoinit_nas.sweeps.command import main

    out, _, _ = hyperband_sweep
    code = main(["--space", "mlp", "--data", "wine", "--trials", "3", "--epochs", "2", "--arms", "he,lecun",
                 "--tuner", "hyperband", "--hp", 'depth={"min": 1, "max": 2}', "--hp", "units=8", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "test_accuracy" in printed
    assert [line.split()[0] for line in printed.splitlines() if line.split()[:1] in (["he"], ["lecun"])] == ARMS


@pytest.mark.slow
def test_ray_asha_runs_one_search_per_arm_with_the_same_candidates(ray_session, tmp_path):
    spec = tiny_spec(tmp_path / "asha", engine="ray", trials=3, engine_options={"scheduler": "asha"})
    sweep = sweeps.run_sweep(spec, progress=lambda line: None)
    streams = {}
    for arm in ARMS:
        found = records.read_records(tmp_path / "asha" / "searches" / arm)
        assert len(found) == 3 and {record["init"] for record in found} == {arm}
        streams[arm] = sorted(json.dumps({k: v for k, v in r["hyperparameters"].items() if k != "init"},
                                         sort_keys=True) for r in found)
    assert streams["he"] == streams["lecun"]
    assert [row["arm"] for row in sweep.winners] == ARMS
    assert all(0.0 <= row["test_accuracy"] <= 1.0 for row in sweep.winners)
