"""The study report on a synthetic study: the files it writes, their columns and known answers."""

import functools
import json
import os

import numpy as np
import pandas as pd
import pytest

from autoinit_nas.study import report
from autoinit_nas.study.spec import StudySpec

ARMS = ["default", "he", "autoinit"]
EPOCHS = 3
CANDIDATES = 8


def _record(space, dataset, index):
    """A finished record: he's curve follows the candidate's worth, default's is reversed, autoinit's is flat+index.

    Reference runs score like the ranked runs, so he ranks its own reference perfectly (rho +1) and
    default ranks its own reversed (-1 at budget 1 and the same at E).
    """
    worth = index / 10
    curves = {"he": [worth + 0.01 * e for e in range(EPOCHS)],
              "default": [0.9 - worth + 0.01 * e for e in range(EPOCHS)],
              "autoinit": [0.5 + 0.001 * e for e in range(EPOCHS)]}
    curves["autoinit"][0] += worth / 100  # budget 1 follows the worth too
    test = {"he": 0.3 + worth, "default": 0.9 - worth, "autoinit": 0.35 + worth}
    arms = {arm: {"history": {"val_accuracy": curves[arm]}, "epochs": EPOCHS, "diverged": False, "init_seconds": 0.1,
                  "train_seconds": 1.0, "test_accuracy": test[arm],
                  "reference": {"seed": 1000 + index, "epochs": EPOCHS, "test_accuracy": test[arm] - 0.01}}
            for arm in ARMS}
    values = {"blocks": 1, "block_0_layers": 2 + index % 2, "block_0_activation": "relu" if index % 2 else "tanh",
              "block_0_normalization": "batch" if index < CANDIDATES // 2 else "none"}
    candidate = f"{space}_{dataset}_{index}"
    classes = 4 if index == CANDIDATES - 1 else 10  # the last: chance 0.25, default's 0.2 is untrained
    return candidate, {"hyperparameters": {"candidate": {"candidate": candidate, "space": space, "dataset": dataset,
                                                         "index": index, "num_classes": classes, "values": values}},
                       "executions": [{"arms": arms}], "proxies": {"params": 100 + index, "synflow": 5.0 - index},
                       "seed": 7 + index, "status": "completed"}


def read(path):
    """A report CSV as written: "none" and "all" stay strings, empty cells are NaN."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def finished():
    return dict(_record("h", dataset, i) for dataset in ("d1", "d2") for i in range(CANDIDATES))


def spec(out):
    return StudySpec(spaces=[{"name": "h", "space": "heterogeneous"}], datasets=[{"name": "d1"}, {"name": "d2"}],
                     arms=ARMS, candidates=CANDIDATES, epochs=EPOCHS, budgets=[1, 2], ks=[4], out=str(out))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    patch = pytest.MonkeyPatch()
    patch.setattr(report, "finished_runs", lambda *args: finished())
    # Fewer replayed subsets than a study's 2,000 keep make test quick; the tables' shape is what is checked here.
    patch.setattr(report.replay, "replay", functools.partial(report.replay.replay, draws=200, boot_subsets=10))
    try:
        files = report.build_report(spec(out), wall_seconds=90, samples=40)
    finally:
        patch.undo()
    return files


def test_report_writes_every_table_with_the_documented_columns(written):
    expected = {
        "ranking.csv": ["space", "dataset", "stratum", "arm", "budget", "reference", "spearman", "ci_low", "ci_high",
                        "n", "cells"],
        "ceiling.csv": ["space", "dataset", "stratum", "arm", "spearman", "ci_low", "ci_high", "n", "cells"],
        "untrained.csv": ["space", "dataset", "arm", "untrained", "n"],
        "search_paired.csv": ["space", "dataset", "stratum", "arm", "baseline", "search", "factor", "budget", "k",
                              "mean_diff", "ci_low", "ci_high", "p", "p_holm"],
        "reference.csv": ["space", "dataset", "candidate", "arm", "seed", "epochs", "test_accuracy"],
        "proxies.csv": ["space", "dataset", "candidate", "proxy", "value"],
    }
    for name, columns in expected.items():
        assert pd.read_csv(written[name]).columns.tolist() == columns, name
    search = pd.read_csv(written["search.csv"])
    assert {"search", "budget", "k", "mean_test_accuracy", "mean_regret", "mean_common_regret", "ci_low", "ci_high",
            "hit_rate", "n"} <= set(search.columns)
    assert set(search["search"]) == {"random", "hyperband", "asha"}
    for name in ("scores.csv", "outcomes.csv", "paired.csv", "paired_summary.csv", "report.md", "rho_vs_budget.png",
                 "regret.png", "design.json"):
        assert os.path.getsize(written[name]) > 0, name


def test_ranking_has_proxies_at_budget_zero_and_pooled_rows_with_known_rho(written):
    ranking = read(written["ranking.csv"])
    proxies = ranking[ranking["budget"] == 0]
    assert set(proxies["arm"]) == {"params", "synflow"} and set(proxies["reference"]) == {"neutral"}
    pooled = ranking[(ranking["space"] == "all") & (ranking["stratum"] == "all")].set_index(
        ["arm", "budget", "reference"])
    assert (pooled["dataset"] == "all").all()
    assert pooled.loc[("he", 1, "own"), "spearman"] == pytest.approx(1.0)
    assert pooled.loc[("default", 1, "own"), "spearman"] == pytest.approx(1.0)  # reversed curve, reversed reference
    assert pooled.loc[("he", 1, "own"), "n"] == 2 * CANDIDATES
    # neutral = mean over arms' references: (0.3 + w) + (0.9 - w) + (0.35 + w), rising with w
    assert pooled.loc[("default", 1, "neutral"), "spearman"] == pytest.approx(-1.0)
    assert pooled.loc[("params", 0, "neutral"), "spearman"] == pytest.approx(1.0)
    assert pooled.loc[("synflow", 0, "neutral"), "spearman"] == pytest.approx(-1.0)
    strata = set(ranking.loc[ranking["space"] == "all", "stratum"])
    assert {"normalization=every", "normalization=none", "activation_family=rectifier",
            "activation_family=saturating", "batchnorm=every", "batchnorm=none", "trains=every arm",
            "trains=not every arm"} <= strata
    # others: the mean of the other arms' references; for default, (0.3 + w) + (0.35 + w) rises with w
    assert pooled.loc[("default", 1, "others"), "spearman"] == pytest.approx(-1.0)
    # for he, (0.9 - w) + (0.35 + w) is constant: no rho in any cell, so no cell is pooled
    assert np.isnan(pooled.loc[("he", 1, "others"), "spearman"]) and pooled.loc[("he", 1, "others"), "cells"] == 0
    assert pooled.loc[("he", 1, "own"), "cells"] == 2


def test_ceiling_paired_and_design(written):
    ceiling = read(written["ceiling.csv"])
    pooled = ceiling[(ceiling["space"] == "all") & (ceiling["stratum"] == "all")].set_index("arm")
    assert pooled["spearman"].to_dict() == pytest.approx({"autoinit": 1.0, "default": 1.0, "he": 1.0})
    paired = pd.read_csv(written["paired.csv"])
    he = paired[paired["arm"] == "autoinit"]
    assert np.allclose(he["difference_he"], 0.05) and len(he) == 2 * CANDIDATES
    summary = read(written["paired_summary.csv"])
    row = summary[(summary["space"] == "all") & (summary["stratum"] == "all") & (summary["arm"] == "autoinit")
                  & (summary["baseline"] == "he")].iloc[0]
    assert (row["n"], row["wins"], row["median_difference"]) == (2 * CANDIDATES, 2 * CANDIDATES, pytest.approx(0.05))
    design = json.load(open(written["design.json"], encoding="utf-8"))
    assert (design["epochs"], design["budgets"], design["ks"], design["shared_seeds"]) == (3, [1, 2], [4], 0)
    assert design["wall_minutes"] == 1.5 and design["bn_recalibrate"] is False


def test_untrained_shares_and_trains_stratum(written):
    untrained = read(written["untrained.csv"]).set_index(["space", "dataset", "arm"])["untrained"]
    assert untrained[("h", "d1", "default")] == pytest.approx(1 / CANDIDATES)
    assert untrained[("all", "all", "default")] == pytest.approx(1 / CANDIDATES)
    assert untrained[("all", "all", "he")] == 0
    scores = read(written["scores.csv"]).drop_duplicates(["dataset", "candidate"]).set_index("candidate")
    assert scores.loc["h_d1_7", "trains"] == "not every arm" and scores.loc["h_d1_0", "trains"] == "every arm"
    assert scores.loc["h_d1_0", "batchnorm"] == "every" and scores.loc["h_d1_7", "batchnorm"] == "none"


def test_report_markdown_states_the_design_and_has_every_section(written):
    text = open(written["report.md"], encoding="utf-8").read()
    for piece in ("E = 3 epochs", "Budgets [1, 2]", "BN recalibration off", "test fraction 0.2",
                  "Wall time of the run that finished the study: 1.5 min", "## Ranking fidelity", "### Noise ceiling",
                  "### Zero-cost baselines", "## Replayed searches", "## Strata", "win/tie/loss", "pooled",
                  "common regret", "Untrained:", "| cell | default | he | autoinit | n |", "| others |"):
        assert piece in text, piece
    assert "Converged quality" not in text and "best cell" not in text


def test_training_time_survives_a_report_only_rerun(tmp_path):
    tables = {"scores": pd.DataFrame({"space": ["h"], "dataset": ["d1"], "candidate": [0]}),
              "outcomes": pd.DataFrame({"seed": [1]}), "reference": pd.DataFrame({"seed": [2]})}
    assert report.design_of(spec(tmp_path), tables)["wall_minutes"] is None
    report.write_timing(str(tmp_path), 90)
    assert json.load(open(tmp_path / "timing.json", encoding="utf-8")) == {"train_minutes": 1.5}
    assert report.design_of(spec(tmp_path), tables)["wall_minutes"] == 1.5
    assert report.design_of(spec(tmp_path), tables, wall_seconds=120)["wall_minutes"] == 2.0
