"""Smoke test of the init-speed benchmark: structure only, never time budgets."""

import csv
import math

import pytest

from experiments.benchmarks import init_speed


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    status = init_speed.main(["--tiny", "--out", str(out)])
    return status, out


def test_tiny_run_writes_one_row_per_model(tiny_run):
    status, out = tiny_run
    assert status == 0
    with open(out / "init_speed.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(init_speed.COLUMNS)
    assert [row["model"] for row in rows] == list(init_speed.MODELS)
    for row in rows:
        assert int(row["layers"]) > 1
        assert int(row["parameters"]) > 0
        for column in ("build_s", "autoinit_first_s", "autoinit_steady_s", "steady_over_build"):
            value = float(row[column])
            assert math.isfinite(value) and value > 0, (row["model"], column, value)
        rss = float(row["rss_growth_mb"])
        assert math.isfinite(rss) and rss >= 0
        assert row["budget"] in ("PASS", "MISS")
        assert (row["budget"] == "MISS") == bool(row["misses"])


def test_tiny_run_writes_markdown(tiny_run):
    _, out = tiny_run
    text = (out / "init_speed.md").read_text()
    assert "| model |" in text
    for name in init_speed.MODELS:
        assert f"| {name} |" in text


def test_model_subset_and_arguments():
    args = init_speed.parse_args(["--models", "mlp,gru", "--tiny"])
    assert args.models == ["mlp", "gru"] and args.repeats == init_speed.TINY_REPEATS
    with pytest.raises(SystemExit):
        init_speed.parse_args(["--models", "nope"])


def test_package_runner_discovers_init_speed():
    from experiments.benchmarks import __main__ as runner

    assert "init_speed" in runner.discover()
