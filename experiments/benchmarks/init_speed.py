"""How long AutoInit takes, next to how long Keras takes to build the model.

Run with ``python -m experiments.benchmarks.init_speed`` (``--help`` for the
options). Every model is measured in a fresh process (``multiprocessing``
with the spawn start method), so one model's allocations, caches and traced
functions neither hide nor help another's. In that process:

1. the model is built once (cold) and kept;
2. ``AutoInit(weight_init_config={"seed": 0}, propagation=...)
   .initialize_model(model)`` (``--propagation``: probe, the default, or
   scalar) is timed once (first call: empty estimate cache, first TF ops) and then
   ``--repeats`` more times on the same model (steady state: median);
3. the peak resident set size (``ru_maxrss``) is read before step 2 and after
   it; the difference is the peak RSS growth during AutoInit;
4. the model is built ``--repeats`` more times (warm); the median of those
   builds is the Keras build time.

Columns: ``layers`` counts every layer of the model, nested ones included
(``Model._flatten_layers(recursive=True)``: input layers and recurrent cells
count), without the model itself. ``budget`` is PASS when AutoInit's steady
state takes at most 0.1 s (models below 1 M parameters; larger ones are held
to the ratio only), at most 1.5x the build, and the RSS growth is at most
100 MB; otherwise MISS, with the reasons in ``misses``.

``--tiny`` shrinks the built-in models (the anchors keep their size) and runs
every model in one shared spawned process instead of one each: a smoke run,
not a measurement (RSS growth then includes what earlier models left behind).

The table is printed and written as ``init_speed.csv`` and ``init_speed.md``
under ``--out`` (default ``out/benchmarks``, ignored by git through ``out/``).
``--profile`` also runs cProfile over the steady-state calls of each model and
writes ``init_speed_profile_<model>.txt`` there.
"""

import argparse
import csv
import math
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from experiments.benchmarks import _common  # noqa: E402

DEFAULT_OUT = _common.DEFAULT_OUT
DEFAULT_REPEATS = 5
TINY_REPEATS = 2

BUDGET_STEADY_S = 0.1
BUDGET_STEADY_MAX_PARAMETERS = 1_000_000
BUDGET_BUILD_RATIO = 1.5
BUDGET_RSS_MB = 100.0

COLUMNS = (
    "model",
    "layers",
    "parameters",
    "build_s",
    "autoinit_first_s",
    "autoinit_steady_s",
    "steady_over_build",
    "rss_growth_mb",
    "budget",
    "misses",
)
_TEXT_COLUMNS = ("model", "budget", "misses")
HEADERS = {
    "model": "model",
    "layers": "layers",
    "parameters": "parameters",
    "build_s": "build s",
    "autoinit_first_s": "AutoInit first s",
    "autoinit_steady_s": "AutoInit steady s",
    "steady_over_build": "steady/build",
    "rss_growth_mb": "peak RSS growth MB",
    "budget": "budget",
    "misses": "misses",
}


# Models. Each builder takes ``tiny`` and returns a built functional model.


def _relu_chain(depth, width, name):
    """``depth`` Dense(width, relu) layers on ``width`` inputs."""
    import keras

    inputs = keras.Input((width,))
    x = inputs
    for _ in range(depth):
        x = keras.layers.Dense(width, activation="relu")(x)
    return keras.Model(inputs, x, name=name)


def build_mlp(tiny=False):
    """50 Dense(256, relu) layers (tiny: 4 x Dense(16))."""
    return _relu_chain(*((4, 16) if tiny else (50, 256)), "mlp")


def build_mlp200(tiny=False):
    """200 Dense(64, relu) layers on 64 inputs: 832 k parameters, where per-layer
    overhead dominates (tiny: 20 x Dense(8))."""
    _common.raise_recursion_limit()
    return _relu_chain(*((20, 8) if tiny else (200, 64)), "mlp200")


def build_cnn(tiny=False):
    """18 x [Conv2D(32, 3, same, relu), MaxPooling2D(3, strides=1, same)] on 32x32x3,
    then GlobalAveragePooling2D and Dense(10) (tiny: 2 blocks, 4 filters, 8x8)."""
    import keras

    blocks, filters, size = (2, 4, 8) if tiny else (18, 32, 32)
    inputs = keras.Input((size, size, 3))
    x = inputs
    for _ in range(blocks):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(3, strides=1, padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x), name="cnn")


def build_gru(tiny=False):
    """Three stacked GRU(64) over (100, 32) inputs, then Dense(10) (tiny: GRU(8), (10, 4))."""
    import keras

    units, steps, features = (8, 10, 4) if tiny else (64, 100, 32)
    inputs = keras.Input((steps, features))
    x = keras.layers.GRU(units, return_sequences=True)(inputs)
    x = keras.layers.GRU(units, return_sequences=True)(x)
    x = keras.layers.GRU(units)(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x), name="gru")


def build_resnet(tiny=False):
    """1x1 projection to 32 filters on 32x32x16, 16 residual blocks of
    2 x [Conv2D(3, same), BatchNormalization, ReLU] plus an Add skip, then
    GlobalAveragePooling2D and Dense(10) (tiny: 2 blocks, 8 filters, 8x8x4)."""
    import keras

    blocks, filters, size, channels = (2, 8, 8, 4) if tiny else (16, 32, 32, 16)
    inputs = keras.Input((size, size, channels))
    x = keras.layers.Conv2D(filters, 1)(inputs)
    for _ in range(blocks):
        y = x
        for _ in range(2):
            y = keras.layers.Conv2D(filters, 3, padding="same")(y)
            y = keras.layers.BatchNormalization()(y)
            y = keras.layers.ReLU()(y)
        x = keras.layers.Add()([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x), name="resnet")


def build_transformer(tiny=False):
    """Token Embedding, 6 pre-LN encoder blocks (MultiHeadAttention(4 heads) and
    a gelu feed-forward of 4x width, residual adds), final LayerNorm, Dense(10),
    width 128, 64 tokens (tiny: 1 block, width 16, 8 tokens)."""
    import keras

    blocks, width, length = (1, 16, 8) if tiny else (6, 128, 64)
    tokens = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(1000, width)(tokens)
    for _ in range(blocks):
        y = keras.layers.LayerNormalization()(x)
        x = keras.layers.Add()([x, keras.layers.MultiHeadAttention(4, width // 4)(y, y)])
        y = keras.layers.LayerNormalization()(x)
        y = keras.layers.Dense(4 * width, activation="gelu")(y)
        x = keras.layers.Add()([x, keras.layers.Dense(width)(y)])
    x = keras.layers.LayerNormalization()(x)
    return keras.Model(tokens, keras.layers.Dense(10)(x), name="transformer")


MODELS = {
    "mlp": build_mlp,
    "mlp200": build_mlp200,
    "cnn": build_cnn,
    "gru": build_gru,
    "resnet": build_resnet,
    "transformer": build_transformer,
    "anchor_mnist": _common.anchor_builder("mnist"),
    "anchor_pmlb": _common.anchor_builder("pmlb"),
    "anchor_toxicity": _common.anchor_builder("toxicity"),
}


# Measurement (runs in a fresh process per model).


def _initialize(model, propagation="probe"):
    from autoinit_nas import AutoInit

    AutoInit(weight_init_config={"seed": 0}, propagation=propagation).initialize_model(model)


def _count_layers(model):
    return sum(1 for _ in model._flatten_layers(include_self=False, recursive=True))


def measure(name, tiny=False, repeats=DEFAULT_REPEATS, profile_path=None, propagation="probe"):
    """Measure one model in the current process; returns a dict of raw numbers.

    Meant to run in a fresh process (see ``run_isolated``): the RSS figure
    is only meaningful when nothing else ran there first.
    """
    import gc
    import warnings

    import autoinit_nas  # noqa: F401  (import cost outside the timings)
    import keras  # noqa: F401

    _common.raise_recursion_limit()
    builder = MODELS[name]
    repeats = max(int(repeats), 1)
    model, build_first = _common.timed_result(builder, tiny)

    gc.collect()
    peak_before = _common.peak_rss_mb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = _common.timed(_initialize, model, propagation)
        steady = [_common.timed(_initialize, model, propagation) for _ in range(repeats)]
    peak_after = _common.peak_rss_mb()

    profile_text = None
    if profile_path is not None:
        profile_text = _profile(model, repeats, profile_path, propagation)

    builds = [_common.timed(builder, tiny) for _ in range(repeats)]
    return {
        "model": name,
        "layers": _count_layers(model),
        "parameters": int(model.count_params()),
        "build_s": statistics.median(builds),
        "build_first_s": build_first,
        "autoinit_first_s": first,
        "autoinit_steady_s": statistics.median(steady),
        "rss_growth_mb": max(peak_after - peak_before, 0.0),
        "profile": profile_text,
    }


def _profile(model, repeats, path, propagation="probe"):
    """cProfile over ``repeats`` steady-state calls; writes and returns the report."""
    return _common.profile_calls(
        lambda: _initialize(model, propagation), repeats, path,
        f"cProfile of {repeats} steady-state AutoInit calls",
    )


def run_isolated(name, tiny=False, repeats=DEFAULT_REPEATS, profile_path=None, pool=None,
                 propagation="probe"):
    """``measure`` in a fresh spawned process (or in ``pool``'s worker when given)."""
    if pool is not None:
        return pool.submit(measure, name, tiny, repeats, profile_path, propagation).result()
    return _common.run_spawned(measure, name, tiny, repeats, profile_path, propagation)


# Budgets and reporting.


def judge(row):
    """Fill ``steady_over_build``, ``budget`` and ``misses`` of a measured row."""
    steady, build = row["autoinit_steady_s"], row["build_s"]
    ratio = steady / build if build > 0 else math.inf
    misses = []
    if steady > BUDGET_STEADY_S and row["parameters"] < BUDGET_STEADY_MAX_PARAMETERS:
        misses.append(f"steady {steady:.3g}s > {BUDGET_STEADY_S}s at < 1M parameters")
    if ratio > BUDGET_BUILD_RATIO:
        misses.append(f"{ratio:.2f}x build > {BUDGET_BUILD_RATIO}x")
    if row["rss_growth_mb"] > BUDGET_RSS_MB:
        misses.append(f"RSS +{row['rss_growth_mb']:.0f}MB > {BUDGET_RSS_MB:.0f}MB")
    row["steady_over_build"] = ratio
    row["budget"] = "MISS" if misses else "PASS"
    row["misses"] = "; ".join(misses)
    return row


def _format(column, value):
    if column in ("build_s", "autoinit_first_s", "autoinit_steady_s"):
        return f"{value:.4f}"
    if column == "steady_over_build":
        return f"{value:.2f}"
    if column == "rss_growth_mb":
        return f"{value:.1f}"
    if column == "parameters":
        return f"{value:,}"
    return str(value)


def format_table(rows):
    """Fixed-width text table."""
    cells = [[HEADERS[c] for c in COLUMNS]]
    cells += [[_format(c, row[c]) for c in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    numeric = {i for i, c in enumerate(COLUMNS) if c not in _TEXT_COLUMNS}

    def line(values):
        return "  ".join(
            value.rjust(width) if i in numeric else value.ljust(width)
            for i, (value, width) in enumerate(zip(values, widths))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule] + [line(values) for values in cells[1:]])


def format_markdown(rows, header_lines):
    lines = ["# AutoInit initialization speed", ""]
    lines += [f"- {text}" for text in header_lines]
    lines += [
        "",
        "| " + " | ".join(HEADERS[c] for c in COLUMNS) + " |",
        "|" + "|".join("---" if c in _TEXT_COLUMNS else "---:" for c in COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_format(c, row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows, path):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row[c] for c in COLUMNS})


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.init_speed",
        description="Time AutoInit against Keras model building, one fresh process per model.",
    )
    _common.add_models_argument(parser, MODELS)
    parser.add_argument(
        "--repeats", type=int, default=None,
        help=f"steady-state AutoInit calls and warm builds per model "
        f"(default {DEFAULT_REPEATS}; {TINY_REPEATS} with --tiny)",
    )
    parser.add_argument(
        "--tiny", action="store_true",
        help="small widths and depths and 2 repeats: a fast smoke run, not a measurement",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT,
        help=f"directory for init_speed.csv / .md (default {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--profile", action="store_true",
        help="also cProfile the steady-state calls; writes init_speed_profile_<model>.txt",
    )
    parser.add_argument(
        "--isolation", choices=("model", "shared"), default=None,
        help="one fresh process per model (default) or one for all (default with --tiny)",
    )
    _common.add_propagation_argument(parser)
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when any budget is missed",
    )
    args = parser.parse_args(argv)
    args.models = _common.selected_names(parser, args.models or list(MODELS), MODELS)
    args.repeats = _common.tiny_or_default(parser, args.repeats, "repeats", args.tiny,
                                           (TINY_REPEATS, DEFAULT_REPEATS), 1)
    if args.isolation is None:
        args.isolation = "shared" if args.tiny else "model"
    return args


def main(argv=None):
    """Run the benchmark; returns the exit status (0 unless --strict and a miss)."""
    args = parse_args(argv)
    process = (
        "one spawned process per model" if args.isolation == "model"
        else "all models in one spawned process"
    )
    header = _common.start_run(args.out, [
        f"propagation {args.propagation}; "
        f"repeats {args.repeats}{' (tiny models)' if args.tiny else ''}; {process}; "
        f"budget: steady <= {BUDGET_STEADY_S}s (below 1M parameters), <= {BUDGET_BUILD_RATIO}x "
        f"build, RSS growth <= {BUDGET_RSS_MB:.0f}MB",
    ])
    rows = []
    pool = _common.spawned_pool() if args.isolation == "shared" else None
    try:
        for name in args.models:
            profile_path = None
            if args.profile:
                profile_path = str((args.out / f"init_speed_profile_{name}.txt").resolve())
            rows.append(judge(run_isolated(
                name, args.tiny, args.repeats, profile_path, pool, args.propagation
            )))
            _print_progress(rows[-1])
    finally:
        if pool is not None:
            pool.shutdown()
    _report(args, rows, header)
    missed = [row["model"] for row in rows if row["budget"] == "MISS"]
    return 1 if (args.strict and missed) else 0


def _print_progress(row):
    print(
        f"  {row['model']}: build {row['build_s']:.4f}s, AutoInit first {row['autoinit_first_s']:.4f}s "
        f"steady {row['autoinit_steady_s']:.4f}s, {row['budget']}",
        flush=True,
    )


def _report(args, rows, header):
    print()
    print(format_table(rows))
    csv_path = args.out / "init_speed.csv"
    md_path = args.out / "init_speed.md"
    write_csv(rows, csv_path)
    md_path.write_text(format_markdown(rows, header))
    print(f"\nwrote {csv_path} and {md_path}")
    for row in rows:
        if row.get("profile"):
            path = args.out / f"init_speed_profile_{row['model']}.txt"
            print(f"profile of {row['model']}: {path}")


if __name__ == "__main__":
    sys.exit(main())
