"""AutoInit on real models: keras.applications and two keras-io examples, against Keras's default.

Run with ``python -m experiments.benchmarks.real_models`` (``--help`` for the
options). Models: ResNet50, MobileNetV2, EfficientNetB0, DenseNet121,
ConvNeXtTiny, VGG16 and NASNetMobile (``weights=None``, 10 classes, linear logits) at 96x96x3 and
224x224x3, plus the keras-io text-classification transformer (custom
``TokenAndPositionEmbedding`` and ``TransformerBlock`` layers, float Input;
``tests/e2e/models.py``) and the keras-io time-series transformer (4 blocks,
head size 256, 4 heads, ff_dim 4, sequence 500, 1 channel; written here from
its published structure, linear logits), each at its own fixed size.

For each model and mode (Keras's default, AutoInit ``scalar``, AutoInit
``probe``), with ``keras.utils.set_random_seed(seed)`` and
``AutoInit(weight_init_config={"seed": seed})``, in training mode on N(0, 1)
input (token ids, uniform over the vocabulary, for models with an Embedding):

* ``init s``: the median of three ``initialize_model`` calls after the first
  (steady state; the first is in the CSV), against the build and against one
  ``train_on_batch`` at batch 32 (the median of three calls after the first,
  which traces; Adam, cross-entropy on the logits);
* ``init MB`` and ``fwd MB``: peak RSS growth of ``initialize_model`` and of
  one training-mode forward pass at batch 32, each in a fresh process (peak
  reset through ``/proc/self/clear_refs``, Linux);
* logits variance at batch 32 and 128 (batch 128 up to 128x128 only: at 224x224
  its forward pass outgrows a 24 GB machine);
* per layer (``autoinit_nas.core.measure`` at batch 32, the walk AutoInit
  uses), the median ``|log2(measured / predicted variance)|`` and the number
  of layers beyond 2x (> 1). Keras's default has no prediction: as in
  ``fidelity``, its layers are scored against what the probe-initialized
  network measures at the same layer.

Writes ``real_models.csv`` and ``real_models.md`` under ``--out`` (default
``out/bench``). Processes come from a fork server that has imported Keras
once, so each measurement starts clean without paying the import again.
"""

import argparse
import functools
import inspect
import math
import multiprocessing
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from experiments.benchmarks import _common  # noqa: E402

APPLICATIONS = {
    "resnet50": "ResNet50", "mobilenetv2": "MobileNetV2", "efficientnetb0": "EfficientNetB0",
    "densenet121": "DenseNet121", "convnexttiny": "ConvNeXtTiny", "vgg16": "VGG16",
    "nasnetmobile": "NASNetMobile",
}
KERAS_IO = ("text_transformer", "timeseries_transformer")
MODELS = tuple(APPLICATIONS) + KERAS_IO
RESOLUTIONS = (96, 224)
QUICK_MODELS = ("mobilenetv2", "text_transformer")
MODES = ("default", "scalar", "probe")
TRAIN_BATCH = 32
LARGE_BATCH = 128
# A training-mode forward pass of ResNet50 at 224x224 and batch 128 outgrows a 24 GB machine, so
# the batch-128 variance is measured up to this resolution only (left empty above it).
LARGE_BATCH_MAX_RESOLUTION = 128
CLASSES = 10
DEFAULT_SEED = 0
# Steady-state init and training-step seconds are medians of this many calls (one call is noisy).
REPEATS = 3
DEFAULT_OUT = Path("out") / "bench"
TIMESERIES = dict(length=500, head_size=256, num_heads=4, ff_dim=4, blocks=4, mlp_units=128,
                  dropout=0.25, mlp_dropout=0.4, classes=2)


def application(name, resolution):
    """A keras.applications model: random weights, 10 classes, linear logits."""
    import keras

    constructor = getattr(keras.applications, APPLICATIONS[name])
    kwargs = dict(weights=None, input_shape=(resolution, resolution, 3), classes=CLASSES,
                  classifier_activation=None)
    if "include_preprocessing" in inspect.signature(constructor).parameters:
        kwargs["include_preprocessing"] = False
    return constructor(**kwargs)


def _timeseries_block(inputs, spec):
    import keras

    layers = keras.layers
    x = layers.LayerNormalization(epsilon=1e-6)(inputs)
    x = layers.MultiHeadAttention(key_dim=spec["head_size"], num_heads=spec["num_heads"],
                                  dropout=spec["dropout"])(x, x)
    x = layers.Dropout(spec["dropout"])(x)
    residual = layers.Add()([x, inputs])
    x = layers.LayerNormalization(epsilon=1e-6)(residual)
    x = layers.Conv1D(filters=spec["ff_dim"], kernel_size=1, activation="relu")(x)
    x = layers.Dropout(spec["dropout"])(x)
    x = layers.Conv1D(filters=inputs.shape[-1], kernel_size=1)(x)
    return layers.Add()([x, residual])


def timeseries_transformer(spec=None):
    """The keras-io time-series classification transformer, with linear logits.

    Example:
        >>> timeseries_transformer(dict(TIMESERIES, length=20)).output_shape
        (None, 2)
    """
    import keras

    spec = dict(TIMESERIES, **(spec or {}))
    inputs = keras.Input((spec["length"], 1))
    x = inputs
    for _ in range(spec["blocks"]):
        x = _timeseries_block(x, spec)
    x = keras.layers.GlobalAveragePooling1D(data_format="channels_first")(x)
    x = keras.layers.Dense(spec["mlp_units"], activation="relu")(x)
    x = keras.layers.Dropout(spec["mlp_dropout"])(x)
    outputs = keras.layers.Dense(spec["classes"])(x)
    return keras.Model(inputs, outputs, name="keras_io_timeseries_transformer")


def text_transformer():
    """The keras-io text-classification transformer (custom layers, float Input)."""
    from tests.e2e.models import keras_io_text_transformer

    return keras_io_text_transformer()


# name -> builder(resolution); resolution applies to keras.applications only.
BUILDERS = {
    **{name: functools.partial(application, name) for name in APPLICATIONS},
    "text_transformer": lambda _resolution: text_transformer(),
    "timeseries_transformer": lambda _resolution: timeseries_transformer(),
}


def build(name, resolution):
    """The model ``name`` at ``resolution`` (ignored by the keras-io models)."""
    if name not in BUILDERS:
        raise ValueError(f"Unknown model {name!r}; expected one of {list(BUILDERS)}.")
    return BUILDERS[name](resolution)


def batch_of(model, batch, seed):
    """(inputs, labels): N(0, 1) noise, or token ids for a model that embeds its input.

    The inputs come from the core's builder (``probe_batch.synthetic_inputs``),
    the labels from the same generator after them.
    """
    import numpy as np

    from autoinit_nas.core.probe_batch import synthetic_inputs

    rng = np.random.default_rng(seed)
    inputs = synthetic_inputs(model, batch, rng)[0]
    labels = rng.integers(0, int(model.outputs[0].shape[-1]), size=(batch,))
    return inputs, labels


def memory_task(name, resolution, what, seed):
    """Peak RSS growth (MB) of AutoInit (``what`` = its propagation) or of a forward pass."""
    import warnings

    import keras

    from autoinit_nas import AutoInit

    keras.utils.set_random_seed(seed)
    model = build(name, resolution)
    inputs, _ = batch_of(model, TRAIN_BATCH, seed + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if what == "forward":
            return _common.peak_growth_mb(lambda: model(inputs, training=True))
        autoinit = AutoInit(weight_init_config={"seed": seed}, propagation=what)
        return _common.peak_growth_mb(lambda: autoinit.initialize_model(model))


def _variance(model, inputs):
    import keras
    import numpy as np

    out = keras.ops.convert_to_numpy(model(inputs, training=True))
    return float(np.var(np.asarray(out, dtype=np.float64)))


def _layer_errors(references, measured, skip):
    """|log2(measured / predicted variance)| per layer present in both (input layers skipped)."""
    from experiments.benchmarks.fidelity import variance_error

    errors = []
    for key, (_, predicted) in references.items():
        if key.split("/")[-1].split("@")[0] in skip or key not in measured:
            continue
        errors.append(abs(variance_error(measured[key][1], predicted)))
    return errors


def _initialized(model, propagation, seed):
    """(estimates, first-call s, steady-state s) of AutoInit on ``model``."""
    from autoinit_nas import AutoInit

    autoinit = AutoInit(weight_init_config={"seed": seed}, propagation=propagation)
    _, first = _common.timed_result(autoinit.initialize_model, model)
    seconds = []
    for _ in range(REPEATS):
        (_, estimates), elapsed = _common.timed_result(
            autoinit.initialize_model, model, return_estimates=True)
        seconds.append(elapsed)
    return estimates, first, statistics.median(seconds)


def _train_step_seconds(model, inputs, labels):
    """Seconds of one ``train_on_batch``: the median of ``REPEATS`` calls after the first (which traces)."""
    import keras

    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(inputs, labels)
    return statistics.median(_common.timed(model.train_on_batch, inputs, labels) for _ in range(REPEATS))


def quality_task(name, resolution, propagations, seed):
    """Timings, logits variance and per-layer errors of every mode on one model, in order.

    Returns (shared columns, {mode: columns}).
    """
    import warnings

    import keras

    from autoinit_nas.core.measure import measure_moments
    from experiments.benchmarks.fidelity import _input_layer_names, _output_key

    keras.utils.set_random_seed(seed)
    model, build_s = _common.timed_result(build, name, resolution)
    small, labels = batch_of(model, TRAIN_BATCH, seed + 1)
    large = None
    if resolution is None or resolution <= LARGE_BATCH_MAX_RESOLUTION:
        large, _ = batch_of(model, LARGE_BATCH, seed + 2)
    skip = _input_layer_names(model)
    output = _output_key(model)
    modes, measured = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode in ("default",) + tuple(propagations):
            row = {}
            if mode != "default":
                estimates, row["init_first_s"], row["init_s"] = _initialized(model, mode, seed)
            measured[mode] = measure_moments(model, small)
            # The walk's output entry is the logits on the same batch: no second forward pass.
            row["var32"] = measured[mode][output][1]
            row["var128"] = None if large is None else _variance(model, large)
            if mode != "default":
                row["errors"] = _layer_errors(estimates, measured[mode], skip)
            modes[mode] = row
        if "probe" in measured:
            modes["default"]["errors"] = _layer_errors(measured["probe"], measured["default"], skip)
        step_s = _train_step_seconds(model, small, labels)
    shared = {"parameters": int(model.count_params()), "build_s": build_s, "step_s": step_s}
    return shared, modes


def _safe(task, *args):
    """``task(*args)`` as ("ok", result) or ("error", message): one failure never stops the run."""
    try:
        return "ok", task(*args)
    except Exception as error:  # reported in the row, the run goes on
        first = str(error).splitlines()[0] if str(error) else ""
        return "error", f"{type(error).__name__}: {first}"[:300]


def fork_server():
    """A pool whose every task runs in a fresh process forked from a server that imported Keras once."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["keras", "autoinit_nas", __name__])
    return context.Pool(processes=1, maxtasksperchild=1)


def _ratio(numerator, denominator):
    if numerator is None or denominator is None or not denominator or math.isnan(denominator):
        return None
    return numerator / denominator


TARGET_BAND = (0.5, 2.0)
TARGET_MEDIAN = 0.05
TARGET_BEYOND = 2
TARGET_STEPS = {96: 1.0, 224: 0.5}  # issue 22: init within one training step at 96x96, half a step at 224
TARGET_STEPS_OTHER = 1.0  # keras-io models (their own sizes) and other resolutions
TARGET_MEMORY_FLOOR_MB = 100.0


def misses(row):
    """The issue's targets an AutoInit row misses (empty when it meets them all)."""
    found = []
    low, high = TARGET_BAND
    if row.get("var32") is not None and not low <= row["var32"] <= high:
        found.append(f"var@32 {row['var32']:.3g}")
    if row.get("median_log2") is not None and row["median_log2"] > TARGET_MEDIAN:
        found.append(f"median {row['median_log2']:.3f}")
    if row.get("beyond_2x") is not None and row["beyond_2x"] > TARGET_BEYOND:
        found.append(f"{row['beyond_2x']} layers >2x")
    steps = TARGET_STEPS.get(row.get("resolution"), TARGET_STEPS_OTHER)
    if row.get("init_per_step") is not None and row["init_per_step"] > steps:
        found.append(f"{row['init_per_step']:.2f} steps > {steps:g}")
    bound = max(TARGET_MEMORY_FLOOR_MB, row.get("forward_mb") or 0.0)
    if row.get("init_mb") is not None and row["init_mb"] > bound:
        found.append(f"{row['init_mb']:.0f} MB > {bound:.0f}")
    return "; ".join(found)


def rows_for(name, resolution, quality, memory):
    """One row per mode from the quality task's result and the memory figures {what: MB}."""
    base = {"model": name, "resolution": resolution if name in APPLICATIONS else "-"}
    status, result = quality
    if status == "error":
        return [dict(base, mode="all", error=result)]
    shared, modes = result
    rows = []
    for mode, values in modes.items():
        errors = values.get("errors") or []
        row = dict(base, mode=mode, **shared, **{k: v for k, v in values.items() if k != "errors"})
        row.update(
            init_per_build=_ratio(row.get("init_s"), row["build_s"]),
            init_per_step=_ratio(row.get("init_s"), row["step_s"]),
            forward_mb=memory.get("forward"), init_mb=memory.get(mode),
            median_log2=statistics.median(errors) if errors else None,
            beyond_2x=sum(error > 1.0 for error in errors) if errors else None,
            layers=len(errors) or None,
        )
        row["init_per_forward"] = _ratio(row["init_mb"], row["forward_mb"])
        row["misses"] = misses(row) if mode != "default" else ""
        rows.append(row)
    return rows


_G3 = _common.general(3)
TABLE = _common.Table(
    ("model", "resolution", "mode", "parameters", "build_s", "init_s", "init_first_s",
     "init_per_build", "step_s", "init_per_step", "init_mb", "forward_mb", "init_per_forward",
     "var32", "var128", "median_log2", "beyond_2x", "layers", "misses", "error"),
    headers={"resolution": "res", "build_s": "build s", "init_s": "init s",
             "init_first_s": "first init s", "init_per_build": "init/build", "step_s": "step s",
             "init_per_step": "init/step", "init_mb": "init MB", "forward_mb": "fwd MB",
             "init_per_forward": "init/fwd", "var32": "var@32", "var128": "var@128",
             "median_log2": "median log2 err", "beyond_2x": ">2x", "layers": "layers"},
    formats={"parameters": _common.thousands, "build_s": _common.fixed(2), "init_s": _common.fixed(2),
             "init_first_s": _common.fixed(2), "init_per_build": _common.fixed(2),
             "step_s": _common.fixed(2), "init_per_step": _common.fixed(2),
             "init_mb": _common.fixed(0), "forward_mb": _common.fixed(0),
             "init_per_forward": _common.fixed(2), "var32": _G3, "var128": _G3,
             "median_log2": _common.fixed(3)},
    text_columns=("model", "resolution", "mode", "misses", "error"),
)
MARKDOWN_COLUMNS = ("model", "resolution", "mode", "build_s", "init_s", "init_per_build", "step_s",
                    "init_per_step", "init_mb", "forward_mb", "var32", "var128", "median_log2",
                    "beyond_2x", "misses")


def configurations(models, resolutions):
    """(model, resolution) pairs to run; the keras-io models have one fixed size."""
    pairs = []
    for name in models:
        for resolution in (resolutions if name in APPLICATIONS else (None,)):
            pairs.append((name, resolution))
    return pairs


def run_configuration(pool, name, resolution, propagations, seed, memory=True):
    """All rows of one model: the quality task, then each memory figure in its own process."""
    quality = pool.apply(_safe, (quality_task, name, resolution, propagations, seed))
    figures, problems = {}, []
    for what in (("forward",) + tuple(propagations)) if memory else ():
        status, result = pool.apply(_safe, (memory_task, name, resolution, what, seed))
        figures[what] = result if status == "ok" else None
        if status == "error":
            problems.append(f"{what} memory: {result}")
    rows = rows_for(name, resolution, quality, figures)
    for row in rows:
        if problems:
            row["error"] = "; ".join(filter(None, [row.get("error"), *problems]))
    return rows


def _progress(row):
    figures = [f"{TABLE.headers[c]} {TABLE.cell(c, row.get(c))}" for c in
               ("init_s", "init_per_step", "init_mb", "forward_mb", "var32", "median_log2", "beyond_2x")
               if row.get(c) is not None]
    text = ", ".join(figures) or row.get("error", "")
    print(f"  {row['model']} {row['resolution']} {row['mode']}: {text}", flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.real_models",
        description="AutoInit (probe, scalar) against Keras's default on keras.applications "
                    "and two keras-io examples.",
    )
    parser.add_argument("--models", nargs="+", default=None,
                        help=f"subset, space- or comma-separated (default all: {', '.join(MODELS)})")
    parser.add_argument("--resolutions", nargs="+", default=None,
                        help="image sizes for keras.applications (default 96,224)")
    parser.add_argument("--propagation", nargs="+", default=["probe,scalar"],
                        help="AutoInit propagations to compare with Keras's default (default probe,scalar)")
    parser.add_argument("--quick", action="store_true",
                        help=f"96x96 only, two models ({', '.join(QUICK_MODELS)})")
    parser.add_argument("--tiny", action="store_true", help="same as --quick (for `make bench` flags)")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="skip the peak-RSS processes")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    quick = args.quick or args.tiny
    args.models = _common.selected_names(parser, args.models or (QUICK_MODELS if quick else MODELS), MODELS)
    resolutions = _common.selected_names(parser, args.resolutions or (["96"] if quick else ["96,224"]),
                                         [str(r) for r in range(8, 1025)], what="resolution")
    args.resolutions = [int(r) for r in resolutions]
    args.propagation = _common.selected_names(parser, args.propagation, ("probe", "scalar"),
                                              what="propagation")
    return args


def main(argv=None):
    """Run the benchmark: progress lines, then a table; writes CSV and Markdown. Returns 0."""
    args = parse_args(argv)
    header = _common.start_run(args.out, [
        f"seed {args.seed}; modes default, {', '.join(args.propagation)}; batch {TRAIN_BATCH} "
        f"(variance also at {LARGE_BATCH} up to {LARGE_BATCH_MAX_RESOLUTION}x{LARGE_BATCH_MAX_RESOLUTION}); "
        f"one fresh process per measurement",
    ])
    rows = []
    pool = fork_server()
    try:
        for name, resolution in configurations(args.models, args.resolutions):
            print(f"{name} {resolution or ''}...", flush=True)
            for row in run_configuration(pool, name, resolution, args.propagation, args.seed,
                                         args.memory):
                _progress(row)
                rows.append(row)
    finally:
        pool.close()
        pool.join()
    print()
    print(TABLE.text(rows))
    csv_path, md_path = args.out / "real_models.csv", args.out / "real_models.md"
    TABLE.write_csv(rows, csv_path)
    table = _common.Table(MARKDOWN_COLUMNS, TABLE.headers, TABLE.formats, TABLE.text_columns)
    md_path.write_text(_common.markdown_document("AutoInit on real models", header,
                                                 [(None, table.markdown(rows))]))
    print(f"\nwrote {csv_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
