"""What AutoInit costs inside a real architecture search.

Run with ``python -m experiments.benchmarks.sweep_overhead`` (``--help`` for
the options). For each search space (default: ``mlp`` and ``cnn`` from
``search_spaces``), in one fresh (spawned) process, so the estimate cache and
TensorFlow start cold:

1. a keras-tuner ``RandomSearch`` over ``AutoInitHyperModel(space)`` on
   scikit-learn's bundled digits (1,797 8x8 images, standardized; 80/20
   split), ``--trials`` trials (default 6) of ``--epochs`` epochs (default 2),
   batch 64. The space is narrowed to small candidates (depth <= 12, at most
   128 units or filters) so trials take seconds, not minutes, on a laptop;
2. the per-trial records (``autoinit_nas.trials.records``) give
   ``init_seconds`` and ``train_seconds``; AutoInit's share of a trial is
   ``init / (init + train)``, and of the sweep the sum of both. Target: at
   most 1%;
3. the process-wide estimate cache: ``GLOBAL_CACHE.hits/misses`` are read
   around each trial's ``fit`` (where AutoInit runs), so each trial shows how
   many expensive estimates it reused. To isolate what the cache saves from
   first-call costs (TensorFlow warm-up, imports), every trial's architecture
   is then rebuilt and AutoInit timed again (median of 3) with an empty
   cache (``cold``) and with the cache the sweep filled (``warm``);
   ``share at warm-cache init`` is what AutoInit's share of the sweep would
   be if every trial found its estimates cached.

The tables are printed and written as ``sweep_overhead.csv`` (one row per
trial), ``sweep_overhead_summary.csv`` (one per space) and
``sweep_overhead.md`` under ``--out`` (default ``out/benchmarks``); the
keras-tuner project (with the records) goes to ``<out>/sweep_overhead_runs``.

``--sampling-seed 0`` passes ``AutoInit(weight_init_config={"sampling_seed": 0})``
to the wrapper: Monte Carlo estimates then share one seed across trials (as the
Ray integration does by default), so the cache can serve them.

Ray Tune: not run here. The Ray integration (``autoinit_nas.integrations.ray_tune``)
records the same ``init_seconds``/``train_seconds`` and cache counts, so the
same share can be read from a Ray sweep's records.
"""

import argparse
import math
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from experiments.benchmarks import _common  # noqa: E402

DEFAULT_TRIALS = 6
DEFAULT_EPOCHS = 2
TINY_TRIALS = 2
TINY_EPOCHS = 1
BATCH_SIZE = 64
REPLAYS = 3
TARGET_SHARE = 0.01
SPACES = ("mlp", "cnn")
TINY_SAMPLES = 400

TRIAL_TABLE = _common.Table(
    columns=(
        "space", "trial_id", "status", "architecture", "parameters", "depth", "init_seconds",
        "train_seconds", "init_share_pct", "cache_hits", "cache_misses", "replay_cold_s",
        "replay_warm_s", "val_accuracy",
    ),
    headers={
        "space": "space",
        "trial_id": "trial",
        "status": "status",
        "architecture": "architecture",
        "parameters": "parameters",
        "depth": "depth",
        "init_seconds": "init s",
        "train_seconds": "train s",
        "init_share_pct": "init share %",
        "cache_hits": "cache hits",
        "cache_misses": "cache misses",
        "replay_cold_s": "replay cold-cache s",
        "replay_warm_s": "replay warm-cache s",
        "val_accuracy": "best val acc",
    },
    formats={
        "parameters": _common.thousands,
        "init_seconds": _common.seconds,
        "train_seconds": _common.fixed(2),
        "init_share_pct": _common.fixed(3),
        "replay_cold_s": _common.seconds,
        "replay_warm_s": _common.seconds,
        "val_accuracy": _common.fixed(3),
    },
    text_columns=("space", "trial_id", "status", "architecture"),
)

SUMMARY_TABLE = _common.Table(
    columns=(
        "space", "trials", "sweep_wall_s", "init_total_s", "train_total_s", "init_share_pct",
        "max_trial_share_pct", "first_init_s", "later_init_median_s", "cache_hits", "cache_misses",
        "replay_cold_median_s", "replay_warm_median_s", "warm_share_pct", "verdict",
    ),
    headers={
        "space": "space",
        "trials": "trials",
        "sweep_wall_s": "sweep wall s",
        "init_total_s": "init total s",
        "train_total_s": "train total s",
        "init_share_pct": "init share %",
        "max_trial_share_pct": "max trial share %",
        "first_init_s": "first trial init s",
        "later_init_median_s": "later trials init s (median)",
        "cache_hits": "cache hits",
        "cache_misses": "cache misses",
        "replay_cold_median_s": "cold-cache init s (median)",
        "replay_warm_median_s": "warm-cache init s (median)",
        "warm_share_pct": "share at warm-cache init %",
        "verdict": "verdict",
    },
    formats={
        "sweep_wall_s": _common.fixed(1),
        "init_total_s": _common.seconds,
        "train_total_s": _common.fixed(2),
        "init_share_pct": _common.fixed(3),
        "max_trial_share_pct": _common.fixed(3),
        "first_init_s": _common.seconds,
        "later_init_median_s": _common.seconds,
        "replay_cold_median_s": _common.seconds,
        "replay_warm_median_s": _common.seconds,
        "warm_share_pct": _common.fixed(3),
    },
    text_columns=("space", "verdict"),
)


def load_digits(tiny=False):
    """Standardized digits, 80/20 stratified split: (x_train, y_train, x_val, y_val) for rank-1 inputs."""
    import numpy as np
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    data = sklearn_digits()
    x = data.data.astype("float32")
    y = data.target.astype("int32")
    if tiny:
        x, y = x[:TINY_SAMPLES], y[:TINY_SAMPLES]
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    mean, std = x_train.mean(), x_train.std()
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    return x_train.astype(np.float32), y_train, x_val.astype(np.float32), y_val


def narrowed_hyperparameters(space_name, tiny=False):
    """A HyperParameters that bounds the space to candidates that train in seconds."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    if space_name == "mlp":
        hp.Int("depth", 1, 3 if tiny else 12)
        hp.Choice("units", [16, 32] if tiny else [32, 64, 128])
    elif space_name == "cnn":
        hp.Int("depth", 1, 2 if tiny else 8)
        hp.Choice("filters", [8] if tiny else [8, 16, 32])
    return hp


def _architecture(space_name, values):
    keys = {
        "mlp": ("depth", "units", "skip", "activation", "normalization"),
        "cnn": ("depth", "filters", "pooling", "head", "activation", "normalization"),
    }.get(space_name, ())
    return " ".join(f"{key}={values[key]}" for key in keys if key in values)


def run_space(space_name, trials, epochs, directory, tiny=False, seed=0, sampling_seed=None):
    """One sweep in this process; returns (trial rows, summary row)."""
    import warnings

    import search_spaces
    from autoinit_nas import AutoInit
    from autoinit_nas.core.cache import GLOBAL_CACHE

    warnings.simplefilter("ignore")
    x_train, y_train, x_val, y_val = load_digits(tiny)
    input_shape = (64,) if space_name == "mlp" else (8, 8, 1)
    data = (x_train.reshape((-1,) + input_shape), y_train, x_val.reshape((-1,) + input_shape), y_val)
    space = search_spaces.get(space_name)(input_shape, 10)
    cache_counts = {}
    GLOBAL_CACHE.clear()
    autoinit = None
    if sampling_seed is not None:
        autoinit = AutoInit(weight_init_config={"sampling_seed": sampling_seed})
    hypermodel = _counting_hypermodel(space, cache_counts, autoinit, seed)
    tuner, sweep_wall = _search(hypermodel, space_name, trials, epochs, directory, tiny, seed, data)
    trials_by_id = {trial.trial_id: trial for trial in tuner.oracle.trials.values()}
    rows = _trial_rows(space_name, space, Path(directory) / space_name, trials_by_id, cache_counts, sampling_seed)
    return rows, summarize(space_name, rows, sweep_wall)


def _counting_hypermodel(space, cache_counts, autoinit, seed):
    """An ``AutoInitHyperModel`` that notes the process cache's hits and misses of each trial."""
    from autoinit_nas.core.cache import GLOBAL_CACHE
    from autoinit_nas.integrations.keras_tuner import AutoInitHyperModel

    class CountingHyperModel(AutoInitHyperModel):
        """Reads the process cache's counts around each fit (AutoInit runs at its start)."""

        def fit(self, hp, model, *args, **kwargs):
            trial_id = None
            for callback in kwargs.get("callbacks") or []:
                trial = getattr(callback, "trial", None)
                if trial is not None and hasattr(trial, "trial_id"):
                    trial_id = str(trial.trial_id)
            before = (GLOBAL_CACHE.hits, GLOBAL_CACHE.misses)
            try:
                return super().fit(hp, model, *args, **kwargs)
            finally:
                cache_counts[trial_id] = (GLOBAL_CACHE.hits - before[0], GLOBAL_CACHE.misses - before[1])

    return CountingHyperModel(space, autoinit=autoinit, seed=seed)


def _search(hypermodel, space_name, trials, epochs, directory, tiny, seed, data):
    """Run a fresh ``RandomSearch`` over the narrowed space; returns (tuner, wall seconds)."""
    import keras_tuner

    x_train, y_train, x_val, y_val = data
    project = Path(directory) / space_name
    if project.exists():
        shutil.rmtree(project)
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective="val_accuracy",
        max_trials=trials,
        hyperparameters=narrowed_hyperparameters(space_name, tiny),
        tune_new_entries=True,
        seed=seed,
        directory=str(directory),
        project_name=space_name,
        overwrite=True,
        max_consecutive_failed_trials=None,
    )
    start = time.perf_counter()
    tuner.search(
        x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, batch_size=BATCH_SIZE, verbose=0,
    )
    return tuner, time.perf_counter() - start


def _trial_rows(space_name, space, project, trials_by_id, cache_counts, sampling_seed):
    """One row per trial's initialized AutoInit arm: its costs, cache counts and replayed init times."""
    import keras

    from autoinit_nas import AutoInit
    from autoinit_nas.core.cache import GLOBAL_CACHE, EstimateCache
    from autoinit_nas.trials import records

    rows = []
    for record in records.read_records(str(project)):
        for row in records.rows(record):
            if row.get("arm") != "autoinit" or not row.get("initialized"):
                continue
            trial_id = str(row["trial_id"])
            init_s = float(row.get("init_seconds") or 0.0)
            train_s = float(row.get("train_seconds") or 0.0)
            hits, misses = cache_counts.get(trial_id, (None, None))
            cold, warm = _replay(
                space, trials_by_id.get(trial_id), row.get("autoinit_seed"), sampling_seed, AutoInit,
                EstimateCache, GLOBAL_CACHE, keras,
            )
            rows.append({
                "space": space_name,
                "trial_id": trial_id,
                "status": record.get("status"),
                "architecture": _architecture(space_name, dict(record.get("hyperparameters") or {})),
                "parameters": record.get("parameter_count"),
                "depth": record.get("depth"),
                "init_seconds": init_s,
                "train_seconds": train_s,
                "init_share_pct": 100.0 * init_s / (init_s + train_s) if init_s + train_s > 0 else math.nan,
                "cache_hits": hits,
                "cache_misses": misses,
                "replay_cold_s": cold,
                "replay_warm_s": warm,
                "val_accuracy": row.get("best/val_accuracy"),
            })
    return rows


def _replay(space, trial, seed, sampling_seed, AutoInit, EstimateCache, global_cache, keras):
    """AutoInit seconds on a rebuild of the trial's model, with the trial's AutoInit
    seed: (an empty cache, the cache the sweep filled)."""
    if trial is None or seed is None:
        return math.nan, math.nan

    def timed(cache):
        keras.utils.clear_session()
        model = space(trial.hyperparameters.copy())
        start = time.perf_counter()
        config = {"seed": int(seed), "sampling_seed": sampling_seed}
        AutoInit(weight_init_config=config, cache=cache).initialize_model(model)
        return time.perf_counter() - start

    cold = statistics.median(timed(EstimateCache()) for _ in range(REPLAYS))
    warm = statistics.median(timed(global_cache) for _ in range(REPLAYS))
    return cold, warm


def summarize(space_name, rows, sweep_wall):
    init_total = sum(row["init_seconds"] for row in rows)
    train_total = sum(row["train_seconds"] for row in rows)
    share = 100.0 * init_total / (init_total + train_total) if rows else math.nan
    shares = [row["init_share_pct"] for row in rows]
    later = [row["init_seconds"] for row in rows[1:]]

    def median(values):
        values = [value for value in values if value is not None and not math.isnan(value)]
        return statistics.median(values) if values else math.nan

    def total(column):
        values = [row[column] for row in rows if row[column] is not None]
        return sum(values) if values else None

    warm = [row["replay_warm_s"] for row in rows if not math.isnan(row["replay_warm_s"])]
    warm_share = 100.0 * sum(warm) / (sum(warm) + train_total) if warm else math.nan
    if not rows:
        verdict = "n/a (no completed trial)"
    elif share <= 100.0 * TARGET_SHARE:
        verdict = "PASS"
    else:
        verdict = f"MISS ({share:.2f}% > {100.0 * TARGET_SHARE:.0f}%)"
    return {
        "space": space_name,
        "trials": len(rows),
        "sweep_wall_s": sweep_wall,
        "init_total_s": init_total,
        "train_total_s": train_total,
        "init_share_pct": share,
        "max_trial_share_pct": max(shares) if shares else math.nan,
        "first_init_s": rows[0]["init_seconds"] if rows else math.nan,
        "later_init_median_s": median(later),
        "cache_hits": total("cache_hits"),
        "cache_misses": total("cache_misses"),
        "replay_cold_median_s": median(row["replay_cold_s"] for row in rows),
        "replay_warm_median_s": median(row["replay_warm_s"] for row in rows),
        "warm_share_pct": warm_share,
        "verdict": verdict,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.sweep_overhead",
        description="AutoInit's share of trial time in a keras-tuner sweep, "
        "and what the estimate cache saves.",
    )
    parser.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES,
                        help="search spaces to sweep (default: mlp cnn)")
    parser.add_argument("--trials", type=int, default=None,
                        help=f"trials per space (default {DEFAULT_TRIALS}; {TINY_TRIALS} with --tiny)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs per trial (default {DEFAULT_EPOCHS}; {TINY_EPOCHS} with --tiny)")
    parser.add_argument("--seed", type=int, default=0, help="tuner and trial seed")
    parser.add_argument(
        "--sampling-seed", type=int, default=None,
        help="pass AutoInit(weight_init_config={'sampling_seed': N}) to the wrapper, so Monte Carlo "
        "estimates no longer follow each trial's seed (default: the wrapper's own AutoInit)",
    )
    parser.add_argument("--tiny", action="store_true",
                        help="2 one-epoch trials on 400 examples per space: a smoke run")
    parser.add_argument("--out", type=Path, default=_common.DEFAULT_OUT,
                        help=f"directory for the CSV and Markdown (default {_common.DEFAULT_OUT})")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when the share misses")
    args = parser.parse_args(argv)
    if args.trials is None:
        args.trials = TINY_TRIALS if args.tiny else DEFAULT_TRIALS
    if args.epochs is None:
        args.epochs = TINY_EPOCHS if args.tiny else DEFAULT_EPOCHS
    if args.trials < 1 or args.epochs < 1:
        parser.error("--trials and --epochs must be at least 1")
    return args


def main(argv=None):
    """Run the benchmark; returns the exit status (0 unless --strict and a miss)."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = args.out / "sweep_overhead_runs"
    header = _common.machine_info() + [
        f"keras-tuner {_common.package_version('keras-tuner')} RandomSearch, "
        f"{args.trials} trials x {args.epochs} epochs per space{' (tiny)' if args.tiny else ''}, "
        f"sklearn digits, batch {BATCH_SIZE}; one spawned process per space; target: AutoInit "
        f"<= {100 * TARGET_SHARE:.0f}% of trial time; AutoInit sampling_seed "
        + ("not set (the wrapper's default)" if args.sampling_seed is None else str(args.sampling_seed)),
    ]
    for text in header:
        print(text, flush=True)
    rows, summaries = [], []
    for space_name in args.spaces:
        trial_rows, summary = _common.run_spawned(
            run_space, space_name, args.trials, args.epochs, str(runs.resolve()), args.tiny, args.seed,
            args.sampling_seed,
        )
        for row in trial_rows:
            print(
                f"  {space_name} trial {row['trial_id']}: init {row['init_seconds']:.4f}s, "
                f"train {row['train_seconds']:.2f}s ({row['init_share_pct']:.3f}%), cache "
                f"+{row['cache_hits']} hits +{row['cache_misses']} misses",
                flush=True,
            )
        rows += trial_rows
        summaries.append(summary)
    print()
    print(TRIAL_TABLE.text(rows))
    print()
    print(SUMMARY_TABLE.text(summaries))

    csv_path = args.out / "sweep_overhead.csv"
    summary_path = args.out / "sweep_overhead_summary.csv"
    md_path = args.out / "sweep_overhead.md"
    TRIAL_TABLE.write_csv(rows, csv_path)
    SUMMARY_TABLE.write_csv(summaries, summary_path)
    md_path.write_text(_common.markdown_document(
        "AutoInit overhead in a keras-tuner sweep",
        header,
        [("Per space", SUMMARY_TABLE.markdown(summaries)), ("Per trial", TRIAL_TABLE.markdown(rows))],
    ))
    print(f"\nwrote {csv_path}, {summary_path}, {md_path} (tuner projects under {runs})")
    missed = [row for row in summaries if row["verdict"].startswith("MISS")]
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
