"""The winners of per-arm searches: each search's best trial, retrained under its arm and scored on the test split.

A search selects on the validation split only (its objective, e.g.
``val_accuracy``); the test split, held out before the searches split train
and validation, is seen only here, once per winner. Each winner is rebuilt
from its recorded hyperparameters, started under its arm from its trial seed,
trained for the spec's ``epochs`` on the training split and scored on the
test split; the result is kept in ``<search>/winner.json``, so a rerun skips
it. One search is one sample: the winners table shows what one search per arm
found, not how the arms compare on average.

Example:
    >>> format_winners([{"arm": "he", "trial_id": "03", "architecture": "ab12", "val_score": 0.9,
    ...                  "test_accuracy": 0.85, "epochs": 2}]).splitlines()[1].split()
    ['he', '03', 'ab12', '0.900', '0.850', '2']
"""

import math
import os

import numpy as np

from autoinit_nas.integrations.keras_tuner import hyperparameters_from_overrides
from autoinit_nas.engines.errors import SweepError
from autoinit_nas.sweeps.state import read_state, write_state
from autoinit_nas.trials import records
from autoinit_nas.trials.arms import apply_arm, data_batch

SEARCHES = "searches"  # the folder under a sweep's ``out`` holding one search per arm
WINNER_FILE = "winner.json"  # in each search's folder: its retrained winner
COLUMNS = ("arm", "trial_id", "architecture", "val_score", "test_accuracy", "epochs")


def best_record(directory, objective, direction):
    """The finished record under ``directory`` with the best ``objective`` value (first in trial order on ties).

    Diverged and failed trials never win; None when no trial finished with a value.
    """
    best, best_value = None, None
    for record in records.read_records(directory):
        value = objective_value(record, objective)
        if record.get("status") != "completed" or value is None:
            continue
        better = best_value is None or (value > best_value if direction == "max" else value < best_value)
        if better:
            best, best_value = record, value
    return best


def objective_value(record, objective):
    """``objective`` at the best epoch of the record's arm in its last execution (None when missing or not finite)."""
    executions = record.get("executions") or []
    arms = (executions[-1].get("arms") or {}) if executions else {}
    fields = arms.get(record.get("init")) or (next(iter(arms.values())) if len(arms) == 1 else {})
    value = (fields.get("metrics") or {}).get(objective)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def retrain_winners(spec, searches, progress=print):
    """One row per search of ``searches`` (single-arm specs): its winner retrained and scored on the test split.

    A winner already retrained (``winner.json`` naming the same trial and
    epochs) is read back, not trained again. The data and space load once.
    """
    rows, loaded = [], None
    for search in searches:
        record = best_record(search.out, spec.objective, spec.direction)
        if record is None:
            progress(f"winner of {search.init}: none (no trial of {search.out} completed with {spec.objective})")
            continue
        path = os.path.join(search.out, WINNER_FILE)
        row = _read_row(path)
        if row is None or row.get("trial_id") != str(record["trial_id"]) or row.get("epochs") != search.epochs:
            loaded = loaded or search.load()
            row = retrain(search, record, *loaded)
            write_state(path, row)
        rows.append(row)
        progress(f"winner of {row['arm']}: trial {row['trial_id']}  {spec.objective} {row['val_score']:.3f}  "
                 f"test accuracy {row['test_accuracy']:.3f} after {row['epochs']} epochs")
    return rows


def retrain(search, record, dataset, build):
    """Rebuild ``record``'s candidate, start it under ``search.init`` from its trial seed, train, score on the test split."""
    import keras

    values = {name: value for name, value in (record.get("hyperparameters") or {}).items()
              if name != "init" and not records.is_bookkeeping(name)}
    seed = int(record.get("seed") or 0)
    keras.utils.set_random_seed(seed)
    model = build(hyperparameters_from_overrides(values))
    (x, y), (x_test, y_test) = dataset.train, dataset.test
    apply_arm(search.init, model, search.autoinit(), seed, probe_batch=search.batch_size,
              data=data_batch(x, search.batch_size))
    history = model.fit(x, y, validation_data=dataset.validation, epochs=search.epochs,
                        batch_size=search.batch_size, verbose=0)
    retrained = (history.history.get(search.objective) or [None])[-1]
    return {
        "arm": search.init, "trial_id": str(record["trial_id"]), "architecture": record.get("architecture_id"),
        "val_score": objective_value(record, search.objective), "test_accuracy": accuracy(model, x_test, y_test),
        "epochs": search.epochs, "seed": seed, "retrained_val_score": None if retrained is None else float(retrained),
        "hyperparameters": values,
    }


def accuracy(model, x, y):
    """The share of ``x`` whose predicted class (argmax; one output unit: above 0.5) is ``y``.

    Example:
        >>> import keras
        >>> inputs = keras.Input((2,))
        >>> model = keras.Model(inputs, keras.layers.Activation("softmax")(inputs))
        >>> accuracy(model, np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
        0.5
    """
    predictions = np.asarray(model.predict(x, verbose=0))
    if predictions.ndim > 1 and predictions.shape[-1] > 1:
        predicted = predictions.argmax(axis=-1)
    else:
        predicted = (predictions.reshape(len(predictions)) > 0.5).astype(int)
    return float(np.mean(predicted == np.asarray(y).reshape(len(predicted))))


def read_winners(out):
    """The winners rows of the per-arm searches under ``out`` (``<out>/searches/<arm>/winner.json``), by arm order."""
    from autoinit_nas.sweeps.state import read_spec

    spec = read_spec(out)
    arms = list(spec.arms or []) if spec is not None else []
    rows = [_read_row(os.path.join(out, SEARCHES, arm, WINNER_FILE)) for arm in arms]
    return [row for row in rows if row is not None]


def format_winners(rows):
    """The winners as a text table (one line per arm, the ``COLUMNS``)."""
    lines = ["  ".join(f"{name:<14}" for name in COLUMNS).rstrip()]
    for row in rows:
        cells = [_cell(row.get(name)) for name in COLUMNS]
        lines.append("  ".join(f"{cell:<14}" for cell in cells).rstrip())
    return "\n".join(lines)


def _cell(value):
    if isinstance(value, float):
        return f"{value:.3f}" if math.isfinite(value) else "nan"
    return "" if value is None else str(value)[:14]


def _read_row(path):
    try:
        return read_state(path)
    except SweepError:
        return None  # a torn write: retrain
