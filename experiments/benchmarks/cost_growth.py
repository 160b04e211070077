"""How AutoInit's cost grows with depth and with parameter count.

Run with ``python -m experiments.benchmarks.cost_growth`` (``--help`` for the
options). Two series of plain ReLU MLPs, each series measured in one fresh
(spawned) process, smallest model first:

* **depth**: 10, 30, 100, 300, 1,000 Dense(32, relu) layers on 32 inputs
  (about 1 k parameters per layer): per-layer overhead dominates;
* **parameters**: 4 Dense(w, relu) layers on w inputs, w chosen for about
  10 k, 100 k, 1 M, 10 M and 50 M parameters: drawing and assigning weights
  dominates.

For every model: the Keras build (one cold build, after a warm-up model),
AutoInit's first call (and the peak RSS growth during it), and the median of
``--repeats`` steady-state calls
(``AutoInit(weight_init_config={"seed": 0}, propagation=...).initialize_model(model)``, ``--propagation`` probe (default) or scalar, on the
same model), taken round-robin over the series' models so that a change in
machine load moves all points together rather than bending the curve. The fitted log-log
slope of steady seconds against layers (depth series) and against parameters
(parameters series) says how the cost grows: 1 is linear. The target is a
slope of about 1 or below (at most ``SLOPE_TARGET``); it is fitted over all
points and, since fixed costs flatten the small end, also over the largest
three ("upper").

Writes ``cost_growth.csv`` (one row per model), ``cost_growth_slopes.csv``,
``cost_growth.md`` and ``cost_growth.png`` (both curves, log-log, with the
Keras build times and a slope-1 guide) under ``--out`` (default
``out/benchmarks``). ``--profile`` also writes a cProfile of the steady-state
calls on the largest model of each series (``cost_growth_profile_<series>.txt``).
"""

import argparse
import math
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from experiments.benchmarks import _common  # noqa: E402

DEFAULT_REPEATS = 5
TINY_REPEATS = 2
SLOPE_TARGET = 1.15  # "about 1 or below": linear, with room for timing noise

DEPTH_WIDTH = 32
DEPTHS = (10, 30, 100, 300, 1000)
TINY_DEPTH_WIDTH = 8
TINY_DEPTHS = (3, 10, 30)

PARAMETER_LAYERS = 4
PARAMETER_TARGETS = (10_000, 100_000, 1_000_000, 10_000_000, 50_000_000)
TINY_PARAMETER_TARGETS = (1_000, 10_000, 100_000)

SERIES = ("depth", "parameters")

POINT_TABLE = _common.Table(
    columns=(
        "series", "dense_layers", "width", "parameters", "build_s", "autoinit_first_s",
        "autoinit_steady_s", "steady_over_build", "us_per_layer", "ns_per_parameter",
        "rss_growth_mb",
    ),
    headers={
        "series": "series",
        "dense_layers": "Dense layers",
        "width": "width",
        "parameters": "parameters",
        "build_s": "build s",
        "autoinit_first_s": "AutoInit first s",
        "autoinit_steady_s": "AutoInit steady s",
        "steady_over_build": "steady/build",
        "us_per_layer": "us/layer",
        "ns_per_parameter": "ns/parameter",
        "rss_growth_mb": "peak RSS growth MB (first call)",
    },
    formats={
        "parameters": _common.thousands,
        "build_s": _common.seconds,
        "autoinit_first_s": _common.seconds,
        "autoinit_steady_s": _common.seconds,
        "steady_over_build": _common.fixed(2),
        "us_per_layer": _common.fixed(0),
        "ns_per_parameter": _common.fixed(2),
        "rss_growth_mb": _common.fixed(1),
    },
    text_columns=("series",),
)

SLOPE_TABLE = _common.Table(
    columns=("series", "x", "points", "slope_all", "slope_upper", "target", "verdict"),
    headers={
        "series": "series",
        "x": "against",
        "points": "points",
        "slope_all": "slope (all points)",
        "slope_upper": "slope (largest 3)",
        "target": "target",
        "verdict": "verdict",
    },
    formats={
        "slope_all": _common.fixed(2),
        "slope_upper": _common.fixed(2),
        "target": lambda value: f"<= {value:.2f}",
    },
    text_columns=("series", "x", "verdict"),
)


def width_for_parameters(target, layers=PARAMETER_LAYERS):
    """The width w with ``layers * (w * w + w)`` closest to ``target``."""
    width = (-1.0 + math.sqrt(1.0 + 4.0 * target / layers)) / 2.0
    return max(int(round(width)), 1)


def plan(tiny=False):
    """[(series, dense layers, width, input width)] in measuring order."""
    points = []
    depth_width = TINY_DEPTH_WIDTH if tiny else DEPTH_WIDTH
    for depth in TINY_DEPTHS if tiny else DEPTHS:
        points.append(("depth", depth, depth_width, depth_width))
    for target in TINY_PARAMETER_TARGETS if tiny else PARAMETER_TARGETS:
        width = width_for_parameters(target)
        points.append(("parameters", PARAMETER_LAYERS, width, width))
    return points


def build_mlp(depth, width, input_width):
    import keras

    _common.raise_recursion_limit()
    inputs = keras.Input((input_width,))
    hidden = inputs
    for _ in range(depth):
        hidden = keras.layers.Dense(width, activation="relu")(hidden)
    return keras.Model(inputs, hidden)


def _initialize(model, propagation="probe"):
    from autoinit_nas import AutoInit

    AutoInit(weight_init_config={"seed": 0}, propagation=propagation).initialize_model(model)


def measure_series(points, repeats, profile_path=None, propagation="probe"):
    """Measure ``points`` (one series) in this process; returns one dict per point.

    Every model is built (timed) and initialized once (the first call, with
    the peak RSS growth it causes) in order; then ``repeats`` rounds each time
    one steady-state call per model, round-robin, so a change in machine load
    during the run shifts every point alike instead of bending the curve.
    """
    import gc
    import warnings

    import autoinit_nas  # noqa: F401  (import cost outside the timings)

    _common.raise_recursion_limit()
    warnings.simplefilter("ignore")
    _initialize(build_mlp(2, 4, 4), propagation)  # warm-up: first TF ops, first Keras build
    models, rows = [], []
    for series, depth, width, input_width in points:
        gc.collect()
        model, build_s = _common.timed_result(build_mlp, depth, width, input_width)
        rss_before = _common.peak_rss_mb()
        first = _common.timed(_initialize, model, propagation)
        rss_after = _common.peak_rss_mb()
        models.append(model)
        rows.append({
            "series": series,
            "dense_layers": depth,
            "width": width,
            "parameters": int(model.count_params()),
            "build_s": build_s,
            "autoinit_first_s": first,
            "rss_growth_mb": max(rss_after - rss_before, 0.0),
        })
    steady = [[] for _ in models]
    for _ in range(repeats):
        for index, model in enumerate(models):
            steady[index].append(_common.timed(_initialize, model, propagation))
    for row, times in zip(rows, steady):
        steady_s = statistics.median(times)
        row.update(
            autoinit_steady_s=steady_s,
            steady_over_build=steady_s / row["build_s"] if row["build_s"] > 0 else math.inf,
            us_per_layer=steady_s / row["dense_layers"] * 1e6,
            ns_per_parameter=steady_s / row["parameters"] * 1e9,
        )
    if profile_path is not None and models:
        _profile(models[-1], repeats, profile_path, propagation)
    return rows


def _profile(model, repeats, path, propagation="probe"):
    _common.profile_calls(
        lambda: _initialize(model, propagation), repeats, path,
        f"cProfile of {repeats} steady-state AutoInit calls, {model.count_params():,} parameters",
    )


def slopes(rows):
    """One row per series: fitted log-log slopes and the verdict."""
    result = []
    for series, x_column in (("depth", "dense_layers"), ("parameters", "parameters")):
        points = [row for row in rows if row["series"] == series]
        xs = [row[x_column] for row in points]
        ys = [row["autoinit_steady_s"] for row in points]
        slope_all = _common.loglog_slope(xs, ys)
        slope_upper = _common.loglog_slope(xs[-3:], ys[-3:])
        worst = max((s for s in (slope_all, slope_upper) if not math.isnan(s)), default=math.nan)
        if math.isnan(worst):
            verdict = "n/a"
        elif worst <= SLOPE_TARGET:
            verdict = "PASS"
        else:
            verdict = f"MISS (slope {worst:.2f} > {SLOPE_TARGET:.2f})"
        result.append({
            "series": series,
            "x": "Dense layers" if series == "depth" else "parameters",
            "points": len(points),
            "slope_all": slope_all,
            "slope_upper": slope_upper,
            "target": SLOPE_TARGET,
            "verdict": verdict,
        })
    return result


def plot(rows, slope_rows, path):
    """Both curves on log-log axes, with build times and a slope-1 guide; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fitted = {row["series"]: row for row in slope_rows}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, (series, x_column, label) in zip(
        axes, (("depth", "dense_layers", "Dense layers"), ("parameters", "parameters", "parameters"))
    ):
        points = [row for row in rows if row["series"] == series]
        xs = [row[x_column] for row in points]
        steady = [row["autoinit_steady_s"] for row in points]
        builds = [row["build_s"] for row in points]
        slope = fitted[series]["slope_all"]
        axis.loglog(xs, steady, "o-", label=f"AutoInit steady (slope {slope:.2f})")
        axis.loglog(xs, builds, "s--", alpha=0.7, label="Keras build")
        if xs and steady[0] > 0:
            guide = [steady[0] * (x / xs[0]) for x in xs]
            axis.loglog(xs, guide, ":", color="grey", label="slope 1 (linear)")
        axis.set_xlabel(label)
        axis.set_ylabel("seconds")
        title = (
            f"vs depth (Dense({points[0]['width']}) chain)" if series == "depth" and points
            else f"vs parameters ({PARAMETER_LAYERS} Dense layers)"
        )
        axis.set_title(f"AutoInit cost {title}")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.cost_growth",
        description="AutoInit seconds against depth and parameter count, with fitted log-log slopes.",
    )
    parser.add_argument(
        "--repeats", type=int, default=None,
        help=f"steady-state AutoInit calls per model (default {DEFAULT_REPEATS}; {TINY_REPEATS} with --tiny)",
    )
    parser.add_argument("--tiny", action="store_true", help="small models: a smoke run, not a measurement")
    parser.add_argument(
        "--out", type=Path, default=_common.DEFAULT_OUT,
        help=f"directory for the CSV, Markdown and PNG (default {_common.DEFAULT_OUT})",
    )
    parser.add_argument(
        "--series", nargs="+", default=list(SERIES), choices=SERIES, help="series to run (default both)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the largest model of each series")
    _common.add_propagation_argument(parser)
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a slope misses")
    args = parser.parse_args(argv)
    args.repeats = _common.tiny_or_default(parser, args.repeats, "repeats", args.tiny,
                                           (TINY_REPEATS, DEFAULT_REPEATS), 1)
    return args


def main(argv=None):
    """Run the benchmark; returns the exit status (0 unless --strict and a miss)."""
    args = parse_args(argv)
    header = _common.start_run(args.out, [
        f"propagation {args.propagation}; "
        f"steady state = median of {args.repeats} calls{' (tiny models)' if args.tiny else ''}; "
        f"one spawned process per series; slope target <= {SLOPE_TARGET}",
    ])
    rows = []
    points = plan(args.tiny)
    for series in args.series:
        chosen = [point for point in points if point[0] == series]
        profile_path = None
        if args.profile:
            profile_path = str((args.out / f"cost_growth_profile_{series}.txt").resolve())
        measured = _common.run_spawned(
            measure_series, chosen, args.repeats, profile_path, args.propagation
        )
        for row in measured:
            print(
                f"  {series}: {row['dense_layers']} x Dense({row['width']}), {row['parameters']:,} "
                f"parameters: build {row['build_s']:.4f}s, AutoInit steady {row['autoinit_steady_s']:.4f}s",
                flush=True,
            )
        rows += measured
    slope_rows = [row for row in slopes(rows) if row["series"] in args.series]
    print()
    print(POINT_TABLE.text(rows))
    print()
    print(SLOPE_TABLE.text(slope_rows))

    csv_path = args.out / "cost_growth.csv"
    slopes_path = args.out / "cost_growth_slopes.csv"
    md_path = args.out / "cost_growth.md"
    png_path = args.out / "cost_growth.png"
    POINT_TABLE.write_csv(rows, csv_path)
    SLOPE_TABLE.write_csv(slope_rows, slopes_path)
    plotted = set(args.series) == set(SERIES)
    if plotted:
        plot(rows, slope_rows, png_path)
    sections = [
        ("Cost per model", POINT_TABLE.markdown(rows)),
        ("Fitted log-log slopes", SLOPE_TABLE.markdown(slope_rows)),
    ]
    if plotted:
        sections.append(("Plot", f"![AutoInit cost growth]({png_path.name})"))
    md_path.write_text(_common.markdown_document("AutoInit cost growth", header, sections))
    written = [csv_path, slopes_path, md_path] + ([png_path] if plotted else [])
    print("\nwrote " + ", ".join(str(path) for path in written))
    if args.profile:
        for series in args.series:
            print(f"profile of {series}: {args.out / f'cost_growth_profile_{series}.txt'}")
    missed = [row for row in slope_rows if row["verdict"].startswith("MISS")]
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
