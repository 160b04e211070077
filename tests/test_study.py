"""The init study end to end on Ray: tiny studies train every candidate under every arm, resume, and report."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from autoinit_nas.trials import records
from autoinit_nas.study.report import build_report
from autoinit_nas.study.runner import RAY_FOLDER, finished_runs, run_study
from autoinit_nas.study.spec import load_spec

ARMS = ["he", "lsuv", "autoinit"]


def _tiny_config(directory, candidates=3, epochs=2):
    config = {
        "kind": "study",
        "spaces": [{"name": "tiny", "space": "heterogeneous",
                    "space_options": {"max_blocks": 2, "units": [8], "poolings": ["none"]}}],
        "datasets": [{"name": "digits", "limit": 200}],
        "arms": ARMS, "candidates": candidates, "epochs": epochs, "budgets": [1], "ks": [2],
        "batch_size": 32, "hyperparameters": {"learning_rate": 0.01, "layer_type": "dense"},
    }
    path = os.path.join(directory, "tiny-study.json")
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(config, stream)
    return path


def _trial_folders(out):
    return sorted(
        os.path.relpath(os.path.dirname(os.path.join(folder, "autoinit_record.json")), out)
        for folder, _, files in os.walk(os.path.join(out, RAY_FOLDER)) if "autoinit_record.json" in files
    )


# make check: ~40 s; the wheel test also runs a two-candidate study there
@pytest.mark.slow
def test_tiny_study_trains_every_arm_reports_and_resumes_only_what_is_missing(ray_session, tmp_path):
    out = str(tmp_path / "study")
    spec = load_spec(_tiny_config(str(tmp_path)), out=out)
    finished = run_study(spec)
    assert sorted(finished) == [f"tiny/digits/{i}" for i in range(3)]
    for record in finished.values():
        trained = record["executions"][-1]["arms"]
        assert sorted(trained) == sorted(ARMS)
        # Every arm ran its own initialization, trained both epochs, and every epoch is kept.
        for arm in ARMS:
            assert trained[arm]["initialized"] and trained[arm]["init_seconds"] > 0
            assert len(trained[arm]["history"]["val_accuracy"]) == 2
        # Same seed, same data order: the arms differ only by their initial weights.
        assert len({tuple(trained[arm]["history"]["val_accuracy"]) for arm in ARMS}) > 1
        # Each arm's ranked run has a test score; its reference run has its own seed and the full epochs.
        for arm in ARMS:
            assert 0.0 <= trained[arm]["test_accuracy"] <= 1.0
            reference = trained[arm]["reference"]
            assert reference["seed"] != record["seed"] and reference["epochs"] == 2
            assert 0.0 <= reference["test_accuracy"] <= 1.0
        assert record["proxies"]["params"] > 0 and "synflow" in record["proxies"]

    files = build_report(spec, samples=50)
    ranking = pd.read_csv(files["ranking.csv"])
    assert {"arm", "budget", "reference", "spearman", "ci_low", "ci_high", "n"} <= set(ranking.columns)
    assert set(ARMS) | {"params", "synflow"} <= set(ranking["arm"])
    assert set(ranking["reference"]) == {"own", "neutral", "others"}
    paired = pd.read_csv(files["paired.csv"])
    assert len(paired) == 3 * len(ARMS) and "difference_he" in paired.columns
    search = pd.read_csv(files["search.csv"])
    assert {"arm", "search", "budget", "k", "mean_regret", "ci_low", "ci_high", "hit_rate"} <= set(search.columns)
    assert set(pd.read_csv(files["ceiling.csv"])["arm"]) >= set(ARMS)
    text = open(files["report.md"], encoding="utf-8").read()
    assert "## Ranking fidelity" in text and "## Replayed searches" in text
    assert all(os.path.getsize(files[name]) > 0 for name in files if name.endswith(".png"))

    # A candidate whose trial was cut short (no finished record) trains again; the others do not.
    before = {folder: os.path.getmtime(os.path.join(out, folder, "autoinit_record.json"))
              for folder in _trial_folders(out)}
    lost = next(path for path in before if "tiny_digits_1_" in path)
    record = records.read_record(os.path.join(out, lost))
    record["status"] = "running"
    records.write_record(os.path.join(out, lost), record)
    again = run_study(spec)
    assert sorted(again) == sorted(finished)
    new = [folder for folder in _trial_folders(out) if folder not in before]
    assert len(new) == 1 and "tiny_digits_1_" in new[0] and "run-2" in new[0]
    for folder, mtime in before.items():
        if folder != lost:
            assert os.path.getmtime(os.path.join(out, folder, "autoinit_record.json")) == mtime


@pytest.mark.slow
def test_a_killed_study_resumes_without_retraining_finished_candidates(tmp_path):
    out = str(tmp_path / "study")
    config = _tiny_config(str(tmp_path), candidates=6, epochs=3)
    command = [sys.executable, "-m", "autoinit_nas.study", "--config", config, "--out", out]
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", RAY_AUTH_MODE="disabled")
    process = subprocess.Popen(command, env=environment, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while not finished_runs(out, ARMS, 3) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed = finished_runs(out, ARMS, 3)
    assert 0 < len(killed) < 6, "the study must be killed while candidates remain"
    stamps = {candidate: record["updated_at"] for candidate, record in killed.items()}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    # Ray's workers outlive the killed driver and may finish the trial they had started: at least the
    # candidates found finished right after the kill count as finished, never fewer.
    before = int(re.search(r"(\d+) finished before", result.stdout).group(1))
    assert len(killed) <= before <= 6, result.stdout
    resumed = finished_runs(out, ARMS, 3)
    assert len(resumed) == 6
    for candidate, stamp in stamps.items():
        assert resumed[candidate]["updated_at"] == stamp


def _record(candidate, histories, diverged=()):
    arms = {arm: {"history": {"val_accuracy": series}, "diverged": arm in diverged, "init_seconds": 0.1,
                  "train_seconds": 1.0, "epochs": len(series), "test_accuracy": None if arm in diverged else 0.9,
                  "reference": {"seed": 104736, "epochs": 3, "test_accuracy": 0.85}}
            for arm, series in histories.items()}
    values = {"blocks": 1, "block_0_layers": 2, "block_0_activation": "relu", "block_0_normalization": "none"}
    return {"hyperparameters": {"candidate": {"candidate": candidate, "space": "s", "dataset": "d",
                                              "num_classes": 4, "values": values}},
            "executions": [{"arms": arms}], "status": "diverged" if diverged else "completed", "seed": 7,
            "proxies": {"params": 120, "synflow": 3.5}}


def test_study_tables_score_a_diverged_run_at_chance_after_it_stopped():
    from autoinit_nas.study.table import study_tables

    finished = {"s/d/0": _record("s/d/0", {"he": [0.5, 0.7, 0.8], "autoinit": [0.6, None]}, diverged=["autoinit"])}
    tables = study_tables(finished, ["he", "autoinit"], epochs=3)
    scores = tables["scores"].pivot(index="epoch", columns="arm", values="val_accuracy")
    assert scores["he"].tolist() == [0.5, 0.7, 0.8]
    assert scores["autoinit"].tolist() == [0.6, 0.25, 0.25]  # 4 classes: chance is 1/4
    assert tables["scores"].groupby("arm")["diverged"].all().to_dict() == {"autoinit": True, "he": False}
    assert set(tables["scores"]["depth_bucket"]) == {"1-5"} and set(tables["scores"]["normalization"]) == {"none"}
    assert set(tables["scores"]["activation_family"]) == {"rectifier"}
    outcomes = tables["outcomes"].set_index("arm")["test_accuracy"].to_dict()
    assert outcomes == {"he": 0.9, "autoinit": 0.25}  # no finite test score: chance
    reference = tables["reference"]
    assert set(reference["seed"]) == {104736} and not set(reference["seed"]) & set(tables["outcomes"]["seed"])
    assert tables["proxies"].set_index("proxy")["value"].to_dict() == {"params": 120.0, "synflow": 3.5}


def test_a_record_without_reference_runs_is_not_finished(tmp_path):
    from autoinit_nas.study.runner import finished_runs
    from autoinit_nas.trials import records

    record = _record("s/d/0", {"he": [0.5, 0.7, 0.8]})
    old = _record("s/d/1", {"he": [0.5, 0.7, 0.8]})
    del old["executions"][0]["arms"]["he"]["reference"]  # a record of the first study design
    for index, item in enumerate((record, old)):
        full = records.new_record("ray", str(index), "he", seed=7)
        full.update(item)
        folder = tmp_path / "ray" / "run-1" / f"trial_{index}"
        records.write_record(str(folder), full)
    assert sorted(finished_runs(str(tmp_path), ["he"], 3)) == ["s/d/0"]


def test_flags_override_the_study_config_and_bad_arms_are_named():
    spec = load_spec("study-quick", space="normalized", data="digits", arms=["he", "autoinit"],
                     candidates=2, epochs=3, budgets=[1, 2])
    assert [entry["name"] for entry in spec.spaces] == ["normalized"]
    assert [entry["name"] for entry in spec.datasets] == ["digits"]
    assert (spec.arms, spec.candidates, spec.epochs, spec.budgets, spec.runs) == (["he", "autoinit"], 2, 3, [1, 2], 8)
    with pytest.raises(ValueError, match=r"Received: arms=\['he', 'glorot'\]"):
        load_spec("study-quick", arms=["he", "glorot"])
    with pytest.raises(ValueError, match="budgets"):
        load_spec("study-quick", epochs=2, budgets=[4])


def test_a_study_folder_refuses_another_training_design(tmp_path):
    from autoinit_nas.study.runner import _write_study_file, check_design, design_conflicts

    out = str(tmp_path / "study")
    spec = load_spec("study-quick", out=out)
    _write_study_file(spec, [])
    check_design(spec)  # the same design: fine
    check_design(load_spec("study-quick", out=out, candidates=44, arms=["he", "autoinit"]))  # more of the same
    ablation = load_spec("study-quick", out=out, bn_recalibrate=True)
    assert design_conflicts(ablation) == ["bn_recalibrate: False there, True now"]
    with pytest.raises(ValueError, match="another design.*bn_recalibrate.*another --out"):
        check_design(ablation)
    with pytest.raises(ValueError, match="epochs: 12 there, 13 now"):
        check_design(load_spec("study-quick", out=out, epochs=13))
    changed = load_spec("study-quick", out=out)
    changed.datasets[0]["limit"] = 500
    assert design_conflicts(changed) == [
        "datasets 'mnist1d': {'name': 'mnist1d', 'limit': 1200} there, {'name': 'mnist1d', 'limit': 500} now"]
