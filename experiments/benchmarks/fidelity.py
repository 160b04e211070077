"""Fidelity of AutoInit's two propagations, and Keras's default, over a model zoo.

Run with ``python -m experiments.benchmarks.fidelity`` (``--help`` for the
options). For every model of a zoo of MLPs (50 layers of every common
activation among them), plain and pooled CNNs, ResNets with and without
batch norm, depthwise nets, stacked RNNs, transformers, merges, and the three
NAS-generated anchor models of the original library's tests (``ZOO``), in
one fresh (spawned) process:

1. the model is built with ``keras.utils.set_random_seed(seed)`` (Keras's
   default initializers) and fed a batch of N(0, 1) noise (``--batch``,
   default 512; token models get uniform random token ids); every layer's
   output moments are read with ``autoinit_nas.core.measure.measure_moments``
   (training mode, as AutoInit predicts);
2. for ``propagation`` "scalar" (the paper's) and "probe" (the default),
   ``AutoInit(weight_init_config={"seed": seed}, propagation=...)``
   initializes it twice (the second call is timed: steady state) and
   returns its estimates; the same batch is fed again and measured;
3. per layer (every entry of the estimates except input layers) the error is
   ``|log2(measured variance / predicted variance)|``; per model and mode,
   the median and max of it and the final variance. Keras's default has no
   prediction: its layers are scored against what the probe-initialized
   network measures at the same layer.

Every zoo model ends in a linear ``Dense(64, name="head")`` (64 units; tiny:
16), so the final variance is read over batch x 64 units (``MATH-NOTES.md``,
"Measuring fidelity"); the anchors end in their own output layers (softmax,
sigmoid), whose variance is not meant to be 1.

Targets (the fidelity issue's), for probe propagation: final variance in
[0.5, 2] and median error <= 0.2 on at least 90% of the zoo; median <= 0.3
on each anchor. ``verdict`` is PASS or MISS with the reason.
``documented`` lists the scalar-propagation approximations (README,
``MATH-NOTES.md``) each model exercises: pooling after ReLU, global
pooling, finite width at depth, gelu/swish fixed points, stacked RNNs. The
zoo is not tuned to pass: the known-hard cases are in it on purpose.

Writes ``fidelity.csv``, ``fidelity_layers.csv`` (every layer of every model
and mode) and ``fidelity.md`` under ``--out`` (default ``out/benchmarks``).
"""

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from experiments.benchmarks import _common  # noqa: E402

DEFAULT_BATCH = 512
TINY_BATCH = 64
DEFAULT_SEED = 1

from experiments.benchmarks.fidelity_zoo import (  # noqa: E402,F401  (re-exported for tests)
    ACTIVATIONS_50,
    HEAD_UNITS,
    TINY_HEAD_UNITS,
    ANCHORS,
    DEPTH,
    FIXED_POINT,
    GLOBAL_POOL,
    POOL_AFTER_RELU,
    STACKED_RNN,
    ZOO,
    Size,
    models_for,
)


MODES = ("scalar", "probe", "default")
TARGET_BAND = (0.5, 2.0)
TARGET_MEDIAN = 0.2
TARGET_ANCHOR_MEDIAN = 0.3
TARGET_SHARE = 0.9

_MODE_COLUMNS = tuple(
    f"{mode}_{quantity}" for mode in MODES for quantity in ("median", "max", "final")
)
TABLE = _common.Table(
    columns=("model", "family", "parameters", "layers") + _MODE_COLUMNS + (
        "probe_worst_layer", "scalar_seconds", "probe_seconds", "verdict", "documented", "reason",
    ),
    headers={
        "model": "model", "family": "family", "parameters": "parameters", "layers": "layers",
        **{f"{mode}_median": f"{mode} median" for mode in MODES},
        **{f"{mode}_max": f"{mode} max" for mode in MODES},
        **{f"{mode}_final": f"{mode} final var" for mode in MODES},
        "probe_worst_layer": "probe max at",
        "scalar_seconds": "scalar s",
        "probe_seconds": "probe s",
        "verdict": "verdict (probe)",
        "documented": "scalar approximations exercised",
        "reason": "reason",
    },
    formats={
        "parameters": _common.thousands,
        **{f"{mode}_median": _common.fixed(2) for mode in MODES},
        **{f"{mode}_max": _common.fixed(2) for mode in MODES},
        **{f"{mode}_final": _common.general(3) for mode in MODES},
        "scalar_seconds": _common.fixed(3),
        "probe_seconds": _common.fixed(3),
    },
    text_columns=("model", "family", "probe_worst_layer", "verdict", "documented", "reason"),
)
PRINTED_COLUMNS = ("model", "layers") + _MODE_COLUMNS + ("probe_seconds", "verdict")
LAYER_TABLE = _common.Table(
    columns=("model", "mode", "layer", "predicted_mean", "predicted_var", "measured_mean",
             "measured_var", "signed_log2", "abs_log2"),
)


def make_inputs(model, kind, batch, seed):
    """A batch of N(0, 1) noise per input, token ids for inputs that feed an Embedding.

    Drawn by the core's builder (``probe_batch.synthetic_inputs``) from
    ``numpy.random.default_rng(seed)``; ``kind`` (the zoo's input kind) is
    implied by the model's inputs and not read.
    """
    import numpy as np

    from autoinit_nas.core.probe_batch import synthetic_inputs

    arrays = synthetic_inputs(model, batch, np.random.default_rng(seed))
    return arrays if len(arrays) > 1 else arrays[0]


def _input_layer_names(model):
    import keras

    names = set()
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            names.add(layer.name)
        elif isinstance(layer, keras.Model):
            names |= _input_layer_names(layer)
    return names


def variance_error(measured, predicted):
    """Signed ``visualize.log2_error``; a variance that collapsed or blew up is an infinite miss."""
    from autoinit_nas.visualize import log2_error

    if measured == predicted:
        return 0.0
    error = log2_error(measured, predicted, signed=True)
    return math.copysign(math.inf, measured - predicted) if math.isnan(error) else error


def _output_key(model):
    """The entry name of the model's (first) output layer."""
    from autoinit_nas.core.architecture import output_layer_name

    return output_layer_name(model)


def _layer_rows(name, mode, references, measured, skip):
    rows = []
    for key, (mean_ref, var_ref) in references.items():
        if key.split("/")[-1].split("@")[0] in skip or key not in measured:
            continue
        mean_meas, var_meas = measured[key]
        signed = variance_error(var_meas, var_ref)
        rows.append({
            "model": name, "mode": mode, "layer": key, "predicted_mean": mean_ref,
            "predicted_var": var_ref, "measured_mean": mean_meas, "measured_var": var_meas,
            "signed_log2": signed, "abs_log2": abs(signed),
        })
    return rows


def _timed_autoinit(model, propagation, config):
    """(estimates, seconds of a second, steady-state call): the first call fills the caches."""
    from autoinit_nas import AutoInit

    autoinit = AutoInit(weight_init_config=config, propagation=propagation)
    autoinit.initialize_model(model)
    (_, estimates), seconds = _common.timed_result(autoinit.initialize_model, model, return_estimates=True)
    return estimates, seconds


def evaluate_model(name, tiny=False, batch=DEFAULT_BATCH, seed=DEFAULT_SEED):
    """Build; measure under Keras's default, scalar and probe AutoInit; one row plus layer rows.

    Per layer, each AutoInit mode is scored by |log2(measured / predicted
    variance)|. Keras's default init has no prediction: it is scored
    against the variance the probe-initialized network measures at the same
    layer (how far the default's signal is from a signal-preserving one).
    """
    import warnings

    import keras

    from autoinit_nas.core.measure import measure_moments

    family, builder, kind, documented = ZOO[name]
    size = Size(tiny)
    keras.utils.set_random_seed(seed)
    model = builder(size)
    inputs = make_inputs(model, kind, batch, seed + 1000)
    skip = _input_layer_names(model)
    output = _output_key(model)
    config = {"seed": seed}
    if tiny:
        config.update(monte_carlo_samples=100_000, recurrent_monte_carlo_samples=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = measure_moments(model, inputs)
        results, seconds = {}, {}
        for propagation in ("scalar", "probe"):
            estimates, seconds[propagation] = _timed_autoinit(model, propagation, config)
            results[propagation] = (estimates, measure_moments(model, inputs))
    layer_rows = []
    row = {"model": name, "family": family, "parameters": int(model.count_params())}
    probe_measured = results["probe"][1]
    scored = {
        "scalar": results["scalar"],
        "probe": results["probe"],
        "default": (probe_measured, default),
    }
    for mode, (references, measured) in scored.items():
        rows = _layer_rows(name, mode, references, measured, skip)
        layer_rows += rows
        errors = [r["abs_log2"] for r in rows]
        worst = max(rows, key=lambda r: r["abs_log2"])
        row[f"{mode}_median"] = statistics.median(errors)
        row[f"{mode}_max"] = worst["abs_log2"]
        row[f"{mode}_final"] = measured[output][1]
        if mode == "probe":
            row["layers"] = len(rows)
            row["probe_worst_layer"] = worst["layer"]
    row["scalar_seconds"] = seconds["scalar"]
    row["probe_seconds"] = seconds["probe"]
    reasons = []
    if name in ANCHORS:
        if row["probe_median"] > TARGET_ANCHOR_MEDIAN:
            reasons.append(f"median {row['probe_median']:.2f} > {TARGET_ANCHOR_MEDIAN}")
    else:
        if row["probe_median"] > TARGET_MEDIAN:
            reasons.append(f"median {row['probe_median']:.2f} > {TARGET_MEDIAN}")
        low, high = TARGET_BAND
        if not low <= row["probe_final"] <= high:
            reasons.append(f"final variance {row['probe_final']:.3g} outside [{low}, {high}]")
    row.update(verdict="MISS" if reasons else "PASS", documented=", ".join(documented),
               reason="; ".join(reasons))
    return row, layer_rows


def _error_row(name, error):
    row = {column: math.nan for column in TABLE.columns}
    row.update(
        model=name, family=ZOO[name][0], parameters=0, layers=0, probe_worst_layer="",
        verdict="ERROR", documented=", ".join(ZOO[name][3]),
        reason=f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300],
    )
    return row


def evaluate_zoo(names, tiny=False, batch=DEFAULT_BATCH, seed=DEFAULT_SEED):
    """``evaluate_model`` for each name, printing progress; returns (rows, layer rows)."""
    import autoinit_nas  # noqa: F401

    rows, layers = [], []
    for name in names:
        start = time.perf_counter()
        try:
            row, layer_rows = evaluate_model(name, tiny, batch, seed)
        except Exception as error:  # noqa: BLE001 - report it, keep measuring the others
            row, layer_rows = _error_row(name, error), []
            rows.append(row)
            print(f"  {name}: ERROR {row['reason']}", flush=True)
            continue
        rows.append(row)
        layers += layer_rows
        print(
            f"  {name}: median scalar {row['scalar_median']:.2f} / probe {row['probe_median']:.2f}, "
            f"final var scalar {row['scalar_final']:.3g} / probe {row['probe_final']:.3g} / "
            f"default {row['default_final']:.3g}, {row['verdict']} "
            f"({time.perf_counter() - start:.1f}s)",
            flush=True,
        )
    return rows, layers


def _share(rows, test):
    return sum(1 for row in rows if test(row)), len(rows)


def summary_lines(rows):
    """Per mode: how much of the zoo is in band, median errors; and the anchors' medians."""
    measured = [row for row in rows if row["verdict"] != "ERROR"]
    zoo = [row for row in measured if row["model"] not in ANCHORS]
    anchors = [row for row in measured if row["model"] in ANCHORS]
    low, high = TARGET_BAND
    lines = []
    for mode in MODES:
        in_band, total = _share(zoo, lambda row: low <= row[f"{mode}_final"] <= high)
        small, _ = _share(zoo, lambda row: row[f"{mode}_median"] <= TARGET_MEDIAN)
        both, _ = _share(zoo, lambda row: low <= row[f"{mode}_final"] <= high
                         and row[f"{mode}_median"] <= TARGET_MEDIAN)
        medians = [row[f"{mode}_median"] for row in zoo]
        label = "Keras default (vs probe-initialized)" if mode == "default" else f"AutoInit {mode}"
        lines.append(
            f"{label}: final variance in [{low}, {high}] for {in_band}/{total} zoo models, "
            f"median per-layer error <= {TARGET_MEDIAN} for {small}/{total}, both for {both}/{total}"
            + (f"; median of medians {statistics.median(medians):.3f}" if medians else "")
        )
    if anchors:
        lines.append("NAS anchors, median per-layer error (scalar -> probe): " + ", ".join(
            f"{row['model']} {row['scalar_median']:.2f} -> {row['probe_median']:.2f}" for row in anchors
        ))
    passed, total = _share(zoo, lambda row: row["verdict"] == "PASS")
    share_ok = total and passed / total >= TARGET_SHARE
    anchors_ok = all(row["verdict"] == "PASS" for row in anchors)
    lines.append(
        f"targets (probe): >= {TARGET_SHARE:.0%} of the zoo in band with median <= {TARGET_MEDIAN}: "
        f"{passed}/{total} {'MET' if share_ok else 'MISSED'}; anchors median <= "
        f"{TARGET_ANCHOR_MEDIAN}: {'MET' if anchors_ok else 'MISSED'}"
        + (" (anchors not run)" if not anchors else "")
    )
    errors = [row["model"] for row in rows if row["verdict"] == "ERROR"]
    if errors:
        lines.append(f"{len(errors)} ERROR: {', '.join(errors)}")
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.fidelity",
        description="Predicted vs measured variance, layer by layer, over a zoo of architectures.",
    )
    _common.add_models_argument(parser, ZOO, what="zoo models")
    parser.add_argument("--batch", type=int, default=None,
                        help=f"noise batch size (default {DEFAULT_BATCH}; {TINY_BATCH} with --tiny)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="build and AutoInit seed")
    parser.add_argument("--tiny", action="store_true", help="tiny models and batch: a smoke run")
    parser.add_argument("--out", type=Path, default=_common.DEFAULT_OUT,
                        help=f"directory for the CSV and Markdown (default {_common.DEFAULT_OUT})")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when probe propagation misses a target on any model")
    args = parser.parse_args(argv)
    args.models = _common.selected_names(parser, args.models or models_for(args.tiny), ZOO)
    args.batch = _common.tiny_or_default(parser, args.batch, "batch", args.tiny, (TINY_BATCH, DEFAULT_BATCH), 2)
    return args


def main(argv=None):
    """Run the benchmark; returns the exit status (0 unless --strict and a miss or error)."""
    args = parse_args(argv)
    low, high = TARGET_BAND
    header = _common.start_run(args.out, [
        f"{len(args.models)} models{' (tiny)' if args.tiny else ''}, N(0,1) noise batch {args.batch}, "
        f"seed {args.seed}, training-mode measurement; per-layer error |log2(measured / predicted "
        f"variance)|; final variance at the output over batch x "
        f"{TINY_HEAD_UNITS if args.tiny else HEAD_UNITS} head units (anchors: their own output); "
        f"targets (probe): final variance in [{low}, {high}] and median <= {TARGET_MEDIAN} for "
        f">= {TARGET_SHARE:.0%} of the zoo, median <= {TARGET_ANCHOR_MEDIAN} on each NAS anchor",
    ])
    rows, layers = _common.run_spawned(evaluate_zoo, args.models, args.tiny, args.batch, args.seed)
    printed = _common.Table(
        PRINTED_COLUMNS, TABLE.headers, TABLE.formats, TABLE.text_columns,
    )
    summary = summary_lines(rows)
    print()
    print(printed.text(rows))
    print()
    for line in summary:
        print(line)
    misses = [row for row in rows if row["reason"]]
    if misses:
        print("\nmisses (probe):")
        for row in misses:
            print(f"  {row['model']}: {row['reason']}")

    csv_path = args.out / "fidelity.csv"
    layers_path = args.out / "fidelity_layers.csv"
    md_path = args.out / "fidelity.md"
    TABLE.write_csv(rows, csv_path)
    LAYER_TABLE.write_csv(layers, layers_path)
    miss_text = "\n".join(
        f"- **{row['model']}** ({row['verdict']}): {row['reason']}" for row in misses
    ) or "none"
    md_path.write_text(_common.markdown_document(
        "AutoInit fidelity: scalar and probe propagation vs Keras's default",
        header + summary,
        [("Per model", TABLE.markdown(rows)), ("Misses", miss_text)],
    ))
    print(f"\nwrote {csv_path}, {layers_path}, {md_path}")
    failed = [row for row in rows if row["verdict"] in ("MISS", "ERROR")]
    return 1 if (args.strict and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
