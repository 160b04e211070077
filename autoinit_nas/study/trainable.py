"""What one study trial runs on a Ray worker: one candidate, trained twice under every arm.

The candidate is built and compiled once; its zero-cost proxies are read on
the freshly built model. Then, per arm:

- the **ranked run**: the arm applied with the trial seed
  (``prepare_model(..., arm=...)``, which re-draws the declared weights first),
  optimizer and random streams put back to their start (``TrainingStart``),
  trained ``epochs`` epochs with every epoch's validation scores in the trial
  record (``RayReportCallback``), then scored on the test split;
- the **reference run**: the same arm applied with the reference seed (another
  weight draw), other data order and dropout masks, trained ``epochs`` epochs
  and scored on the test split only. Nothing ranks or selects on it.

With ``bn_recalibrate`` every validation pass during training reads BatchNorm
moving statistics recomputed on training batches (``trials.batchnorm``, put
back after the pass); training and the test scores are exactly those of a study
without it, so the two differ only in the validation scores that rank and select.
Record fields per arm: ``test_accuracy`` and ``reference`` ({seed, epochs,
test_accuracy, diverged, train_seconds}); per record: ``proxies``.
"""

import math
import time

import keras

from autoinit_nas.core.autoinit import AutoInit
from autoinit_nas.integrations.ray_tune import (RayReportCallback, build_from_config, current_record, prepare_model,
                                                update_record)
from autoinit_nas.trials.arms import apply_arm, data_batch
from autoinit_nas.trials.batchnorm import BatchNormRecalibration
from autoinit_nas.trials.rerun import TrainingStart
from autoinit_nas.study.candidates import load_dataset, space_of
from autoinit_nas.study.proxies import parameter_count, zero_cost

REFERENCE_OFFSET = 104_729  # a prime: reference seeds never equal a ranked run's (trial seeds are < 2**31)


def reference_seed(seed):
    """The reference run's seed for a ranked run's ``seed`` (always different from it).

    Example:
        >>> reference_seed(0) != 0, reference_seed(5) == reference_seed(5)
        (True, True)
    """
    return (int(seed) + REFERENCE_OFFSET) % (2**31 - 1) or 1


def train_candidate(config, settings):
    """Ray function trainable: train ``config["candidate"]`` under each of ``settings["arms"]``, twice.

    ``settings``: arms, epochs, batch_size, lsuv_batch, seed, test_fraction,
    bn_recalibrate and ``cells`` ({"<space>/<dataset>": (space entry, dataset entry)}).
    """
    candidate = config["candidate"]
    space_entry, data_entry = settings["cells"][f"{candidate['space']}/{candidate['dataset']}"]
    dataset = load_dataset(data_entry, settings["seed"], settings.get("test_fraction"))
    model = build_from_config(space_of(space_entry, dataset), candidate["values"])
    if not isinstance(model, keras.Model):
        raise TypeError(f"Space {space_entry['space']!r} built {model!r}, not a keras.Model.")
    update_record({"proxies": _proxies(model)})
    seed = current_record()["seed"]
    start = TrainingStart(model)
    batch_size = settings["batch_size"]
    x, y = dataset.train
    probe = data_batch(x, settings.get("lsuv_batch") or batch_size)
    callbacks = [BatchNormRecalibration(x, batch_size)] if settings.get("bn_recalibrate") else []
    for arm in settings["arms"]:
        start.restore()  # LSUV measures in training mode: the dropout streams it draws from too
        prepare_model(model, batch_size=batch_size, data=probe, arm=arm)
        start.restore()
        model.fit(x, y, validation_data=dataset.validation, epochs=settings["epochs"], batch_size=batch_size,
                  verbose=0, callbacks=[*callbacks, RayReportCallback()])
        update_record({"test_accuracy": _test_accuracy(model, dataset, batch_size)}, arm=arm)
        reference = _reference_run(model, arm, reference_seed(seed), start, dataset, probe, settings)
        update_record({"reference": reference}, arm=arm)


def _proxies(model):
    """The zero-cost proxies of the freshly built model (synflow needs TensorFlow's gradients)."""
    if keras.backend.backend() == "tensorflow":
        return zero_cost(model)
    return {"params": parameter_count(model)}


def _reference_run(model, arm, seed, start, dataset, probe, settings):
    """Train ``arm`` again from ``seed``; {seed, epochs, test_accuracy, diverged, train_seconds}."""
    batch_size = settings["batch_size"]
    start.restore()
    apply_arm(arm, model, AutoInit(), seed, probe_batch=batch_size, data=probe, redraw=True)
    start.restore(seed=seed)
    keras.utils.set_random_seed(seed)  # data order
    began = time.monotonic()
    x, y = dataset.train
    history = model.fit(x, y, epochs=settings["epochs"], batch_size=batch_size, verbose=0,
                        callbacks=[keras.callbacks.TerminateOnNaN()])
    losses = history.history.get("loss") or []
    diverged = len(losses) < settings["epochs"] or not all(math.isfinite(loss) for loss in losses)
    return {"seed": seed, "epochs": len(losses), "diverged": diverged,
            "test_accuracy": _test_accuracy(model, dataset, batch_size),
            "train_seconds": time.monotonic() - began}


def _test_accuracy(model, dataset, batch_size):
    """Accuracy on the test split (None when the model's outputs are not finite)."""
    x_test, y_test = dataset.test
    scores = model.evaluate(x_test, y_test, batch_size=batch_size, verbose=0, return_dict=True)
    value = scores.get("accuracy", scores.get("compile_metrics"))
    return float(value) if value is not None and math.isfinite(float(value)) else None
