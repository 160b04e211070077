"""autoinit_nas.results with any arms: every arm against a baseline arm, Holm across the arms."""

import pandas as pd
import pytest

from autoinit_nas import results, stats

# Six candidates under three arms; lecun beats default by 0.1 everywhere, he by 0.0/0.2 alternately.
DEFAULT = [0.50, 0.60, 0.70, 0.40, 0.55, 0.65]
HE = [d + (0.2 if i % 2 else 0.0) for i, d in enumerate(DEFAULT)]
LECUN = [d + 0.1 for d in DEFAULT]


def three_arm_table(arms=("default", "he", "lecun")):
    values = {"default": DEFAULT, "he": HE, "lecun": LECUN}
    rows = []
    for candidate in range(len(DEFAULT)):
        for arm in arms:
            rows.append({"trial_id": str(candidate), "architecture_id": f"c{candidate}", "arm": arm,
                         "depth": candidate + 1, "diverged": arm == "he" and candidate == 0,
                         "best_val_accuracy": values[arm][candidate]})
    return pd.DataFrame(rows)


def test_every_arm_is_paired_with_the_default_baseline():
    comparison = results.compare_inits(three_arm_table())
    assert comparison.attrs["baseline"] == "default" and comparison.attrs["arms"] == ["he", "lecun"]
    assert comparison["arm"].tolist() == ["he"] * 6 + ["lecun"] * 6
    assert set(comparison["baseline"]) == {"default"}
    assert comparison["difference"].round(6).tolist() == [0.0, 0.2] * 3 + [0.1] * 6
    assert comparison["baseline_value"].tolist() == pytest.approx(DEFAULT * 2)
    assert comparison["arm_diverged"].tolist() == [True] + [False] * 11
    # Each row also carries every arm's value for its candidate.
    assert comparison["lecun_val_accuracy"].tolist() == pytest.approx(LECUN * 2)


def test_a_chosen_baseline_and_the_first_arm_when_default_is_absent():
    against_he = results.compare_inits(three_arm_table(), baseline="he")
    assert against_he["arm"].tolist() == ["default"] * 6 + ["lecun"] * 6
    lecun = against_he[against_he["arm"] == "lecun"]
    assert lecun["difference"].round(6).tolist() == [0.1, -0.1] * 3
    default_last = results.compare_inits(three_arm_table(("he", "lecun", "default")))
    assert default_last.attrs["baseline"] == "default" and default_last.attrs["arms"] == ["he", "lecun"]
    no_default = results.compare_inits(three_arm_table(("he", "lecun")))
    assert no_default.attrs["baseline"] == "he" and set(no_default["arm"]) == {"lecun"}
    with pytest.raises(ValueError, match=r"No arm 'lsuv'.*Arms present: \['default', 'he', 'lecun'\]"):
        results.compare_inits(three_arm_table(), baseline="lsuv")


def test_summary_has_one_row_per_arm_with_holm_across_the_arms():
    summary = results.summarize(results.compare_inits(three_arm_table()), samples=200)
    assert summary["arm"].tolist() == ["he", "lecun"] and summary["baseline"].tolist() == ["default"] * 2
    assert (summary["wins"].tolist(), summary["ties"].tolist()) == ([3, 6], [3, 0])
    p_he = stats.wilcoxon_p([0.0, 0.2] * 3)  # three zeros dropped: three positive differences
    p_lecun = stats.wilcoxon_p([0.1] * 6)
    assert summary["wilcoxon_p"].tolist() == pytest.approx([p_he, p_lecun])
    assert summary["p_holm"].tolist() == pytest.approx(stats.holm([p_he, p_lecun]))
    assert p_lecun < p_he  # Holm by hand: the smaller p doubled, the larger at least that
    assert summary["p_holm"].tolist() == pytest.approx([max(p_he, 2 * p_lecun), 2 * p_lecun])
    assert summary["arm_diverged"].tolist() == [1, 0]


def test_holm_runs_within_each_group_of_a_split():
    comparison = results.compare_inits(three_arm_table())
    comparison["half"] = ["a", "a", "a", "b", "b", "b"] * 2
    summary = results.summarize(comparison, by="half", samples=100)
    assert summary[["arm", "half"]].values.tolist() == [["he", "a"], ["he", "b"], ["lecun", "a"], ["lecun", "b"]]
    for half in ("a", "b"):
        part = summary[summary["half"] == half]
        assert part["p_holm"].tolist() == pytest.approx(stats.holm(part["wilcoxon_p"].tolist()))


def test_two_arm_tables_keep_their_columns_and_numbers():
    table = three_arm_table(("default", "lecun")).replace({"arm": {"lecun": "autoinit"}})
    comparison = results.compare_inits(table)
    assert comparison["autoinit_val_accuracy"].tolist() == pytest.approx(LECUN)
    assert comparison["default_val_accuracy"].tolist() == pytest.approx(DEFAULT)
    assert comparison["difference"].round(6).tolist() == [0.1] * 6
    row = results.summarize(comparison).iloc[0]
    assert (row.arm, row.baseline, row.wins, row.default_diverged, row.autoinit_diverged) == (
        "autoinit", "default", 6, 0, 0)
    assert row.wilcoxon_p == pytest.approx(stats.wilcoxon_p([0.1] * 6)) and row.p_holm == row.wilcoxon_p


def write_three_arm_sweep(root):
    """Records of a sweep that trained default, he and lecun on each of six candidates."""
    from autoinit_nas.trials import records

    values = {"default": DEFAULT, "he": HE, "lecun": LECUN}
    for candidate in range(len(DEFAULT)):
        record = records.new_record("keras_tuner", str(candidate), "default+he+lecun", seed=1,
                                    hyperparameters={"units": 8 * (candidate + 1)},
                                    architecture_id=f"c{candidate}", depth=candidate + 1)
        record["status"] = "completed"
        record["executions"] = [{"execution": 0, "arms": {arm: {
            "diverged": False, "metrics": {"val_accuracy": values[arm][candidate]},
            "final_metrics": {"val_accuracy": values[arm][candidate]}} for arm in values}}]
        records.write_record(str(root / f"trial_{candidate}"), record)


def test_report_command_takes_a_baseline_and_writes_arm_and_baseline_columns(tmp_path, capsys):
    import argparse

    from autoinit_nas import report

    write_three_arm_sweep(tmp_path / "sweep")
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    assert report.run(parser.parse_args([str(tmp_path / "sweep"), "--baseline", "he", "--no-plots"])) == 0
    printed = capsys.readouterr().out
    assert "lecun better on 3, tied on 0, worse on 3 of 6 candidates against he." in printed
    written = pd.read_csv(tmp_path / "sweep" / "report" / "comparison.csv")
    assert {"arm", "baseline"} <= set(written.columns)
    assert written[["arm", "baseline"]].drop_duplicates().values.tolist() == [["default", "he"], ["lecun", "he"]]
    summary = pd.read_csv(tmp_path / "sweep" / "report" / "summary.csv")
    overall = summary[summary["group"] == "all"]
    assert overall["arm"].tolist() == ["default", "lecun"]
    assert overall["p_holm"].tolist() == pytest.approx(stats.holm(overall["wilcoxon_p"].tolist()))
    lines = report.summary_line(results.trials_table(tmp_path / "sweep")).splitlines()
    assert [line.split(" on ")[0] for line in lines] == ["he vs default", "lecun vs default"]
    with pytest.raises(ValueError, match="No arm 'lsuv'"):
        report.build_report(tmp_path / "sweep", baseline="lsuv", plots=False)


def test_sweep_progress_line_shows_each_arm_against_the_baseline():
    from autoinit_nas.sweeps.progress import TrialReport, format_report
    from autoinit_nas.sweeps.spec import SweepSpec

    spec = SweepSpec()
    two = TrialReport("0", "completed", 1.0, {"he": 0.80, "lecun": 0.85}, {}, {})
    assert "he 0.800  lecun 0.850  +0.050" in format_report(two, 1, 3, spec)
    three = TrialReport("1", "completed", 1.0, {"lecun": 0.85, "default": 0.70, "he": 0.80}, {}, {})
    line = format_report(three, 2, 3, spec)
    assert "he-default +0.100" in line and "lecun-default +0.150" in line


def test_a_continued_trial_replaces_its_parent_instead_of_being_averaged_with_it():
    # Hyperband: trial 1 continues trial 0 (1 epoch -> 3 epochs). Averaging them would mix budgets.
    table = pd.DataFrame({
        "architecture_id": ["a"] * 4 + ["b"] * 2, "arm": ["autoinit", "default"] * 3,
        "trial_id": ["0", "0", "1", "1", "2", "2"], "reloaded_from": [None, None, "0", "0", None, None],
        "depth": [3] * 6, "diverged": [False] * 6,
        "best_val_accuracy": [0.5, 0.4, 0.9, 0.6, 0.7, 0.7]})
    comparison = results.compare_inits(table)
    assert comparison.set_index("architecture_id")["difference"].round(6).to_dict() == {"a": 0.3, "b": 0.0}
    assert comparison.set_index("architecture_id")["autoinit_n"].to_dict() == {"a": 1, "b": 1}


def test_summarize_leaves_infinite_differences_out_and_says_so():
    comparison = pd.DataFrame({"difference": [0.2, 0.2, 0.2, float("inf")], "arm": ["he"] * 4,
                               "baseline": ["default"] * 4})
    row = results.summarize(comparison).iloc[0]
    assert row["n"] == 3 and row["wins"] == 3
    assert row["wilcoxon_p"] == pytest.approx(0.25)  # exact: three equal positive ranks, 2 * (1/2)^3
    assert "1 pair(s) without a finite value" in row["note"]
