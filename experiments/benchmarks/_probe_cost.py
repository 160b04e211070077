"""What AutoInit's probe costs on keras.applications models, against what training costs.

A measurement script, not a ``make bench`` benchmark (hence the underscore).

Each figure comes from its own fresh process (so one measurement's memory
never hides another's): the model is built (``weights=None``, ``classes=10``,
``classifier_activation=None``), then exactly one of

* ``init``: ``AutoInit(weight_init_config={"seed": 0}, propagation=...)``
  ``.initialize_model(model)``, then the logits' variance on N(0, 1) input at
  batch 32 in training mode;
* ``forward``: one training-mode forward pass at batch 32;
* ``train``: ``train_on_batch`` at batch 32, twice (the second is timed:
  steady state, tracing excluded).

Peak RSS growth is the kernel's high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` just before the step) less the resident size just
before it. Usage::

    python -m experiments.benchmarks._probe_cost --models VGG16 ResNet50 --sizes 96
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import time

BATCH = 32


def _status(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM to the current resident size


def _measure(step):
    """(seconds, peak RSS growth in bytes, step's result) of ``step()``."""
    gc.collect()
    _reset_peak()
    before = _status("VmRSS")
    start = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - start
    return seconds, _status("VmHWM") - before, result


def time_series_transformer(length, blocks=4):
    """keras-io's "timeseries classification with a transformer" (head size 256, 4 heads), 10 classes."""
    import keras

    layers = keras.layers
    inputs = keras.Input((length, 1))
    x = inputs
    for _ in range(blocks):
        attended = layers.MultiHeadAttention(key_dim=256, num_heads=4, dropout=0.25)(x, x)
        residual = layers.LayerNormalization(epsilon=1e-6)(layers.Dropout(0.25)(attended)) + x
        hidden = layers.Conv1D(4, 1, activation="relu")(residual)
        hidden = layers.Conv1D(1, 1)(layers.Dropout(0.25)(hidden))
        x = layers.LayerNormalization(epsilon=1e-6)(hidden) + residual
    x = layers.GlobalAveragePooling1D(data_format="channels_first")(x)
    x = layers.Dropout(0.4)(layers.Dense(128, activation="relu")(x))
    return keras.Model(inputs, layers.Dense(10)(x))


def run_one(name, size, mode, propagation):
    """One measurement in this process; returns a dict of figures."""
    import keras
    import numpy as np

    started = time.perf_counter()
    if name == "TimeSeriesTransformer":  # size: the sequence length
        model = time_series_transformer(size)
        shape = (BATCH, size, 1)
    else:
        model = getattr(keras.applications, name)(
            weights=None, input_shape=(size, size, 3), classes=10, classifier_activation=None
        )
        shape = (BATCH, size, size, 3)
    build = time.perf_counter() - started
    batch = np.random.default_rng(0).standard_normal(shape).astype("float32")
    row = {"model": name, "size": size, "mode": mode, "build_s": build}
    if mode == "init":
        from autoinit_nas import AutoInit

        autoinit = AutoInit(weight_init_config={"seed": 0}, propagation=propagation)
        seconds, growth, _ = _measure(lambda: autoinit.initialize_model(model))
        logits = keras.ops.convert_to_numpy(model(batch, training=True))
        row.update(propagation=propagation, used=getattr(autoinit, "propagation_used", None),
                   logits_var=float(np.var(logits)))
    elif mode == "forward":
        seconds, growth, _ = _measure(lambda: model(batch, training=True))
    else:
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        labels = np.arange(BATCH) % 10
        model.train_on_batch(batch, labels)
        seconds, growth, _ = _measure(lambda: model.train_on_batch(batch, labels))
    row.update(seconds=seconds, peak_rss_growth_mb=growth / 2**20)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["VGG16", "ResNet50", "MobileNetV2", "EfficientNetB0"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[96])
    parser.add_argument("--modes", nargs="+", default=["init", "forward", "train"])
    parser.add_argument("--propagation", default="probe")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.models[0], args.sizes[0], args.modes[0], args.propagation)))
        return
    for name in args.models:
        for size in args.sizes:
            for mode in args.modes:
                command = [sys.executable, "-m", "experiments.benchmarks._probe_cost", "--one",
                           "--models", name, "--sizes", str(size), "--modes", mode,
                           "--propagation", args.propagation]
                done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
                lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
                print(lines[-1] if lines else json.dumps(
                    {"model": name, "size": size, "mode": mode, "error": done.stderr[-400:]}), flush=True)


if __name__ == "__main__":
    main()
