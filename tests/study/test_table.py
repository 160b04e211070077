"""The study's tables from trial records: the trains and batchnorm strata and the untrained shares."""

import pandas as pd
import pytest

from autoinit_nas.study import table


def _record(candidate, tests, references, normalizations=("batch",), classes=4):
    """A finished record of one candidate: per arm its ranked-run and reference-run test accuracy."""
    values = {"blocks": len(normalizations)}
    for i, normalization in enumerate(normalizations):
        values.update({f"block_{i}_layers": 2, f"block_{i}_activation": "relu",
                       f"block_{i}_normalization": normalization})
    arms = {arm: {"history": {"val_accuracy": [0.5, 0.6]}, "epochs": 2, "test_accuracy": tests[arm],
                  "reference": {"seed": 99, "epochs": 2, "test_accuracy": references[arm]}} for arm in tests}
    return {"hyperparameters": {"candidate": {"candidate": candidate, "space": "h", "dataset": "d",
                                              "num_classes": classes, "values": values}},
            "executions": [{"arms": arms}], "seed": 1}


def test_trains_needs_every_arms_ranked_and_reference_run_above_chance():
    # 4 classes: chance 0.25, a run trains at >= 0.35.
    finished = {
        "ok": _record("ok", {"he": 0.35, "autoinit": 0.9}, {"he": 0.8, "autoinit": 0.8}),
        "dead_ranked": _record("dead_ranked", {"he": 0.34, "autoinit": 0.9}, {"he": 0.8, "autoinit": 0.8}),
        "dead_reference": _record("dead_reference", {"he": 0.9, "autoinit": 0.9}, {"he": 0.8, "autoinit": 0.25}),
        "nan": _record("nan", {"he": float("nan"), "autoinit": 0.9}, {"he": 0.8, "autoinit": 0.8}),
    }
    scores = table.study_tables(finished, ["he", "autoinit"], epochs=2)["scores"]
    trains = scores.groupby("candidate")["trains"].agg(set).to_dict()
    assert trains == {"ok": {"every arm"}, "dead_ranked": {"not every arm"},
                      "dead_reference": {"not every arm"}, "nan": {"not every arm"}}


def test_batchnorm_counts_batch_normalization_only():
    tests = {"he": 0.9}
    finished = {name: _record(name, tests, tests, normalizations)
                for name, normalizations in (("bb", ("batch", "batch")), ("bl", ("batch", "layer")),
                                             ("ll", ("layer", "layer")), ("nn", ("none", "none")))}
    scores = table.study_tables(finished, ["he"], epochs=2)["scores"].drop_duplicates("candidate")
    labels = scores.set_index("candidate")[["normalization", "batchnorm"]].apply(tuple, axis=1).to_dict()
    assert labels == {"bb": ("every", "every"), "bl": ("every", "some"), "ll": ("every", "none"),
                      "nn": ("none", "none")}
    plain = table.splits({"space": "p", "values": {"depth": 10, "width": 8, "activation": "tanh"}})
    assert plain["batchnorm"] == "none"
    assert table.splits({"space": "x", "values": {"units": 3}})["batchnorm"] == "?"


def test_untrained_shares_per_cell_and_pooled():
    outcomes = pd.DataFrame(
        [("h", "d1", c, arm, 0.25, 0.3 if (arm == "default" and c < 2) else 0.9)
         for c in range(4) for arm in ("he", "default")]
        + [("h", "d2", c, arm, 0.1, 0.15 if (arm == "default" and c == 0) else 0.8)
           for c in range(2) for arm in ("he", "default")],
        columns=["space", "dataset", "candidate", "arm", "chance", "test_accuracy"])
    shares = table.untrained_shares(outcomes).set_index(["space", "dataset", "arm"])
    assert shares.loc[("h", "d1", "default"), "untrained"] == pytest.approx(0.5)
    assert shares.loc[("h", "d2", "default"), "untrained"] == pytest.approx(0.5)
    assert shares.loc[("all", "all", "default"), "untrained"] == pytest.approx(3 / 6)
    assert shares.loc[("all", "all", "default"), "n"] == 6
    assert (shares.xs("he", level="arm")["untrained"] == 0).all()
    assert list(shares.index.get_level_values("space")) == ["h", "h", "h", "h", "all", "all"]
