"""Smoke tests of the benchmarks: each runs on its tiny setting and writes the
expected files and columns. Structure only, never timings or budgets."""

import csv
import math

import pytest

from experiments.benchmarks import _common, cost_growth, fidelity, init_speed, sweep_overhead

BENCHMARKS = ("cost_growth", "fidelity", "init_speed", "sweep_overhead")


def read_csv(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def finite(value):
    number = float(value)
    return math.isfinite(number)


# init_speed


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    status = init_speed.main(["--tiny", "--out", str(out)])
    return status, out


@pytest.mark.slow  # runs a benchmark end to end (~15 s each run): make check
def test_tiny_run_writes_one_row_per_model(tiny_run):
    status, out = tiny_run
    assert status == 0
    fields, rows = read_csv(out / "init_speed.csv")
    assert fields == list(init_speed.COLUMNS)
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


@pytest.mark.slow  # runs a benchmark end to end (~15 s each run): make check
def test_tiny_run_writes_markdown(tiny_run):
    _, out = tiny_run
    text = (out / "init_speed.md").read_text()
    assert "| model |" in text
    for name in init_speed.MODELS:
        assert f"| {name} |" in text


def test_model_subset_and_arguments():
    args = init_speed.parse_args(["--models", "mlp,gru", "--tiny"])
    assert args.models == ["mlp", "gru"] and args.repeats == init_speed.TINY_REPEATS
    assert args.isolation == "shared"
    assert init_speed.parse_args([]).isolation == "model"
    assert "mlp200" in init_speed.MODELS
    with pytest.raises(SystemExit):
        init_speed.parse_args(["--models", "nope"])


def test_steady_budget_applies_below_one_million_parameters():
    def row(parameters):
        return {"autoinit_steady_s": 0.2, "build_s": 1.0, "rss_growth_mb": 1.0, "parameters": parameters}

    assert init_speed.judge(row(500_000))["budget"] == "MISS"
    assert init_speed.judge(row(2_000_000))["budget"] == "PASS"


# cost_growth


@pytest.fixture(scope="module")
def growth_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("growth")
    status = cost_growth.main(["--tiny", "--out", str(out)])
    return status, out


@pytest.mark.slow  # runs a benchmark end to end (~15 s each run): make check
def test_cost_growth_points_and_slopes(growth_run):
    status, out = growth_run
    assert status == 0
    fields, rows = read_csv(out / "cost_growth.csv")
    assert fields == list(cost_growth.POINT_TABLE.columns)
    depth_rows = [row for row in rows if row["series"] == "depth"]
    parameter_rows = [row for row in rows if row["series"] == "parameters"]
    assert [int(row["dense_layers"]) for row in depth_rows] == list(cost_growth.TINY_DEPTHS)
    assert len(parameter_rows) == len(cost_growth.TINY_PARAMETER_TARGETS)
    counts = [int(row["parameters"]) for row in parameter_rows]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    for row in rows:
        timings = ("build_s", "autoinit_first_s", "autoinit_steady_s", "us_per_layer", "ns_per_parameter")
        for column in timings:
            assert finite(row[column]) and float(row[column]) > 0, (row, column)
    fields, slopes = read_csv(out / "cost_growth_slopes.csv")
    assert fields == list(cost_growth.SLOPE_TABLE.columns)
    assert [row["series"] for row in slopes] == list(cost_growth.SERIES)
    for row in slopes:
        assert finite(row["slope_all"]) and finite(row["slope_upper"])
        assert row["verdict"] == "PASS" or row["verdict"].startswith("MISS")


@pytest.mark.slow  # runs a benchmark end to end (~15 s each run): make check
def test_cost_growth_writes_plot_and_markdown(growth_run):
    _, out = growth_run
    png = out / "cost_growth.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "cost_growth.md").read_text()
    assert "slope (all points)" in text and "cost_growth.png" in text


def test_loglog_slope_and_widths():
    assert _common.loglog_slope([1, 10, 100], [2, 20, 200]) == pytest.approx(1.0)
    assert _common.loglog_slope([1, 10, 100], [3, 3, 3]) == pytest.approx(0.0)
    assert math.isnan(_common.loglog_slope([1], [1]))
    for target in cost_growth.PARAMETER_TARGETS:
        width = cost_growth.width_for_parameters(target)
        assert abs(cost_growth.PARAMETER_LAYERS * (width * width + width) - target) / target < 0.05


# fidelity


def test_fidelity_zoo_covers_the_families():
    assert len(fidelity.ZOO) >= 20
    families = {family for family, _, _, _ in fidelity.ZOO.values()}
    assert {"MLP", "CNN", "ResNet", "RNN", "transformer", "NAS anchor"} <= families
    documented = {tag for _, _, _, tags in fidelity.ZOO.values() for tag in tags}
    hard = {fidelity.POOL_AFTER_RELU, fidelity.GLOBAL_POOL, fidelity.FIXED_POINT, fidelity.STACKED_RNN}
    assert hard <= documented
    # The fidelity issue's zoo: 50-layer MLPs of every common activation, pooled CNNs.
    assert {f"mlp_{a}_d50" for a in fidelity.ACTIVATIONS_50} <= set(fidelity.ZOO)
    assert {"cnn20_maxpool_gap", "cnn20_avgpool_gap", "resnet_bn", "resnet_plain", "mobilenet"} <= set(fidelity.ZOO)
    assert set(fidelity.ANCHORS) == {"anchor_mnist", "anchor_pmlb", "anchor_toxicity"}
    assert set(fidelity.models_for(tiny=True)) == set(fidelity.ZOO) - set(fidelity.ANCHORS)


@pytest.fixture(scope="module")
def fidelity_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fidelity")
    status = fidelity.main(["--tiny", "--out", str(out)])
    return status, out


@pytest.mark.slow  # runs a benchmark end to end (~15 s each run): make check
def test_fidelity_one_row_per_model(fidelity_run):
    status, out = fidelity_run
    assert status == 0
    fields, rows = read_csv(out / "fidelity.csv")
    assert fields == list(fidelity.TABLE.columns)
    assert [row["model"] for row in rows] == fidelity.models_for(tiny=True)
    for row in rows:
        assert row["verdict"] in ("PASS", "MISS"), (row["model"], row["reason"])
        assert (row["verdict"] == "PASS") == (row["reason"] == "")
        assert int(row["layers"]) > 0
        for mode in fidelity.MODES:
            median, largest = float(row[f"{mode}_median"]), float(row[f"{mode}_max"])
            assert 0 <= median <= largest
            assert finite(row[f"{mode}_final"]) and float(row[f"{mode}_final"]) >= 0
        assert row["probe_worst_layer"]
        assert float(row["probe_seconds"]) > 0 and float(row["scalar_seconds"]) > 0


@pytest.mark.slow  # runs a benchmark end to end (~15 s each run): make check
def test_fidelity_layer_rows_and_markdown(fidelity_run):
    _, out = fidelity_run
    fields, layers = read_csv(out / "fidelity_layers.csv")
    assert fields == list(fidelity.LAYER_TABLE.columns)
    assert {row["model"] for row in layers} == set(fidelity.models_for(tiny=True))
    assert {row["mode"] for row in layers} == set(fidelity.MODES)
    for row in layers:
        assert float(row["abs_log2"]) == pytest.approx(abs(float(row["signed_log2"])))
    text = (out / "fidelity.md").read_text()
    assert "| model |" in text and "## Misses" in text and "targets (probe)" in text


# sweep_overhead


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    status = sweep_overhead.main(["--tiny", "--spaces", "mlp", "--out", str(out)])
    return status, out


@pytest.mark.slow  # runs a benchmark end to end (~15 s each run): make check
def test_sweep_overhead_trial_rows(sweep_run):
    status, out = sweep_run
    assert status == 0
    fields, rows = read_csv(out / "sweep_overhead.csv")
    assert fields == list(sweep_overhead.TRIAL_TABLE.columns)
    assert len(rows) == sweep_overhead.TINY_TRIALS
    for row in rows:
        assert row["space"] == "mlp"
        assert float(row["init_seconds"]) > 0 and float(row["train_seconds"]) > 0
        assert 0 < float(row["init_share_pct"]) < 100
        assert int(row["cache_hits"]) >= 0 and int(row["cache_misses"]) >= 0
        assert float(row["replay_cold_s"]) > 0 and float(row["replay_warm_s"]) > 0


@pytest.mark.slow  # runs a benchmark end to end (~15 s each run): make check
def test_sweep_overhead_summary(sweep_run):
    _, out = sweep_run
    fields, summaries = read_csv(out / "sweep_overhead_summary.csv")
    assert fields == list(sweep_overhead.SUMMARY_TABLE.columns)
    assert [row["space"] for row in summaries] == ["mlp"]
    (summary,) = summaries
    assert int(summary["trials"]) == sweep_overhead.TINY_TRIALS
    assert finite(summary["init_share_pct"]) and finite(summary["warm_share_pct"])
    assert summary["verdict"] == "PASS" or summary["verdict"].startswith("MISS")
    assert "| space |" in (out / "sweep_overhead.md").read_text()


# the runner


def test_package_runner_discovers_every_benchmark():
    from experiments.benchmarks import __main__ as runner

    found = runner.discover()
    assert set(BENCHMARKS) <= set(found)
    assert not any(name.startswith("_") for name in found)
    for name in BENCHMARKS:
        assert callable(found[name])


def test_every_benchmark_accepts_tiny_and_out(tmp_path):
    for module in (init_speed, cost_growth, fidelity, sweep_overhead):
        args = module.parse_args(["--tiny", "--out", str(tmp_path)])
        assert args.tiny and args.out == tmp_path
