"""keras-tuner integration: every candidate a tuner trains starts from AutoInit.

Swap ``build`` for ``AutoInitHyperModel(build)``; nothing else changes:

```python
import keras, keras_tuner
from sklearn.datasets import load_digits
from autoinit_nas.integrations.keras_tuner import AutoInitHyperModel

digits = load_digits()
x = (digits.data / 16.0).astype("float32")
y = digits.target

def build(hp):
    inputs = keras.Input((64,))
    h = inputs
    for _ in range(hp.Int("depth", 1, 20)):
        h = keras.layers.Dense(hp.Choice("units", [32, 64]), activation="tanh")(h)
    outputs = keras.layers.Dense(10, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model

tuner = keras_tuner.RandomSearch(
    AutoInitHyperModel(build),          # was: build
    objective="val_accuracy", max_trials=3, directory="runs", project_name="digits",
    overwrite=True,
)
tuner.search(x[:1000], y[:1000], validation_data=(x[1000:], y[1000:]), epochs=2, verbose=0)
```

Modes (``init=``):

- ``"autoinit"``: AutoInit initializes each candidate before it trains.
- ``"default"``: the control arm; Keras's initializers are left alone, the
  bookkeeping (seed, records, divergence handling) is the same.
- ``"compare"``: each trial trains the candidate twice, once per arm, from
  the same seed (same Keras default draws before AutoInit, same data order,
  same dropout masks) with the same fit arguments. The trial reports a dict
  of metrics: the AutoInit arm's under their own names (``val_accuracy``,
  ``loss``, ...) and the default arm's prefixed with ``default_``
  (``default_val_accuracy``, ``default_loss``, ...), each arm's taken at
  its own best epoch by the tuner's objective. The objective, the
  checkpoint (``tuner.get_best_models()``) and Hyperband's promotions follow
  the AutoInit arm. Non-finite ``default_`` values are left out of what the
  tuner sees (they stay in the record). keras-tuner guesses "min" as the
  direction of the ``default_`` metrics it displays; it does not matter,
  only the objective is optimized.

Seeds: each trial's seed is a hash of the wrapper's ``seed`` and the
hyperparameter values the oracle proposed (``tuner/*`` bookkeeping values
excluded), so it is reproducible and the same wherever the trial runs; a
trial continuing another (Hyperband) keeps that trial's seed. Before
building, and again before each arm trains, Python, NumPy and the backend are
seeded with it (``keras.utils.set_random_seed``); AutoInit draws its weights from it too,
unless the ``AutoInit`` you pass has a ``seed`` of its own.

When AutoInit runs: at the start of ``fit``, not in ``build``. keras-tuner
builds the hypermodel several times while constructing a tuner, to discover
the search space, and again to reload weights (``get_best_models``,
Hyperband); those builds only build. A custom ``Tuner.run_trial`` must
therefore train through ``self.hypermodel.fit(hp, model, ...)``, as
keras-tuner's own tuners do. A user ``HyperModel``'s ``declare_hyperparameters``
and ``fit`` are called as usual (``fit`` once per arm).

Hyperband: a trial that continues an earlier one (``hp.values["tuner/trial_id"]``)
has had that trial's checkpoint loaded by Hyperband, so AutoInit does not
run again; the record says ``reloaded_from`` and copies the earlier
predictions. In ``"compare"`` mode the default arm's best weights are saved to
``trial_<id>/default_arm.weights.h5`` and reloaded the same way.

Divergence: an arm diverges when its training ``loss`` or ``val_loss`` is not
finite; training stops at once (like ``TerminateOnNaN``). A diverged trial is
recorded (``status: "diverged"``, the arm's ``diverged: true`` and the reason)
and then ends as a failed trial: ``fit`` raises
``keras_tuner.errors.FailedTrialError`` with the reason, which keras-tuner
stores in the trial's ``message``. Failed trials never feed the oracle a made-up
objective value. keras-tuner stops a search after ``max_consecutive_failed_trials``
(default 3) failed trials in a row, which a space where one arm often diverges
reaches quickly: pass ``max_consecutive_failed_trials=None`` (no limit) or a
larger number to the tuner for such sweeps. In ``"compare"`` mode only the
AutoInit arm's divergence fails the trial; a diverged default arm is recorded
(its arm in the record has ``diverged: true``) and the trial completes.
Other errors are recorded with ``status: "error"`` and re-raised unchanged.

Records: one JSON file per trial, ``<directory>/<project_name>/trial_<id>/autoinit_record.json``
(``status: "running"`` after initialization, rewritten atomically after each
arm trains and when the trial ends or fails): init arm(s), AutoInit seconds,
predicted output mean and variance, layers without an estimator, architecture
id, parameter count, depth, train seconds, seed, divergence, per-epoch and
best metrics. The format is documented in ``autoinit_nas.integrations.records``,
which also reads the files back (``read_records(project_dir)``, ``rows(record)``)
without a tuner or the process that ran the search. Each execution of a trial
(``executions_per_trial``) is one entry of the record's ``executions``.

Distributed tuning: the wrapper keeps no state that needs the chief. Every
value it writes comes from the trial it runs (its hyperparameters, its id,
the worker's own project directory), so with ``KERASTUNER_TUNER_ID``,
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` set, the same script
runs unchanged on the chief and on every worker; each worker writes the
records of the trials it runs, and ``read_records`` over a shared (or
gathered) project directory sees all of them.
"""

import copy
import hashlib
import json
import os
import time
import warnings

import keras
import keras_tuner

from autoinit_nas.integrations import records

INIT_MODES = ("autoinit", "default", "compare")
DEFAULT_PREFIX = "default_"
DEFAULT_ARM_WEIGHTS = "default_arm.weights.h5"
_SEED_ATTRIBUTE = "_autoinit_nas_seed"
# Callbacks keras-tuner adds for the trial it reports; the default arm of
# "compare" mode trains without them.
_TUNER_CALLBACKS = ("SaveBestEpoch", "TensorBoard", "KerasCallback")


class AutoInitHyperModel(keras_tuner.HyperModel):
    """A keras-tuner HyperModel that initializes every candidate with AutoInit.

    Wraps a build function or a ``HyperModel``; pass it to any tuner in its
    place. See the module docstring for modes, seeds, records, divergence
    and distributed tuning.

    Example:
        >>> import keras, keras_tuner
        >>> def build(hp):
        ...     inputs = keras.Input((8,))
        ...     hidden = keras.layers.Dense(hp.Int("units", 4, 16), activation="relu")(inputs)
        ...     model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
        ...     model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        ...     return model
        >>> hypermodel = AutoInitHyperModel(build, init="compare")
        >>> model = hypermodel.build(keras_tuner.HyperParameters())
        >>> model.count_params()  # units=4, the default
        46

    Args:
        hypermodel_or_build_fn: a ``keras_tuner.HyperModel`` or a function
            ``build(hp) -> keras.Model``.
        autoinit: the ``AutoInit`` to use (default ``AutoInit()``); pass your
            own for custom estimators, input moments or weight config. Each
            trial uses a copy seeded with the trial seed (unless its
            ``weight_init_config`` has a seed); after each initialization its
            ``unsupported_layers`` lists the trial's layers without estimator.
        init: "autoinit", "default" (Keras's initializers, the control arm)
            or "compare" (both, reported side by side).
        seed: int mixed into every trial's seed; change it to replicate a
            sweep with fresh randomness.
        name: optional name (defaults to the wrapped HyperModel's).
    """

    def __init__(self, hypermodel_or_build_fn, autoinit=None, init="autoinit", seed=0, name=None):
        if isinstance(hypermodel_or_build_fn, keras_tuner.HyperModel):
            hypermodel = hypermodel_or_build_fn
        elif callable(hypermodel_or_build_fn):
            hypermodel = _BuildFunction(hypermodel_or_build_fn)
        else:
            raise TypeError(
                "`hypermodel_or_build_fn` must be a keras_tuner.HyperModel or a function "
                f"build(hp) returning a keras.Model. Received: {hypermodel_or_build_fn!r} of type "
                f"{type(hypermodel_or_build_fn).__name__}"
            )
        if init not in INIT_MODES:
            raise ValueError(f"`init` must be one of {INIT_MODES}. Received: init={init!r}")
        autoinit, seed = records.checked_options(autoinit, seed)
        super().__init__(name=name or hypermodel.name, tunable=True)
        self.hypermodel = hypermodel
        self.autoinit = autoinit
        self.init = init
        self.seed = seed
        self._current = None  # (trial_id, record, executions started) of the running trial

    # keras-tuner entry points.

    def declare_hyperparameters(self, hp):
        return self.hypermodel.declare_hyperparameters(hp)

    def build(self, hp):
        """Seed everything with the trial seed, then build the wrapped model.

        No AutoInit here: builds also happen while the tuner discovers its
        search space and when it reloads weights; AutoInit runs in ``fit``.
        """
        seed = self.trial_seed(hp)
        keras.utils.set_random_seed(seed)
        model = self.hypermodel.build(hp)
        if isinstance(model, keras.Model):
            try:
                setattr(model, _SEED_ATTRIBUTE, seed)
            except (AttributeError, TypeError):
                pass
        return model

    def fit(self, hp, model, *args, **kwargs):
        """Initialize ``model`` per ``init``, train it (and its default twin), record both."""
        context = _TrialContext.find(kwargs.get("callbacks"))
        seed = getattr(model, _SEED_ATTRIBUTE, None)
        if seed is None:
            seed = self.trial_seed(hp)
        reloaded_from = hp.values.get("tuner/trial_id")
        if reloaded_from is not None:
            seed = self._inherited_seed(context, reloaded_from, seed)
        record, execution = self._start_execution(context, hp, seed, reloaded_from)
        arms = execution["arms"]
        tuner_arm = "default" if self.init == "default" else "autoinit"
        callbacks = list(kwargs.get("callbacks") or [])
        if self.init == "compare":
            # Copied before the AutoInit arm uses (and binds) them.
            default_callbacks = _copy_callbacks([c for c in callbacks if not _is_tuner_callback(c)])
        try:
            if record["architecture_id"] is None:
                record.update(records.describe_model(model))
            default_model = None
            if self.init == "compare":
                default_model = self._build_default_arm(hp, model, seed, reloaded_from, context)
            if tuner_arm == "autoinit":
                arms["autoinit"] = self._initialize(model, seed, reloaded_from, context)
            else:
                arms["default"] = records.uninitialized_arm()
            self._write(context, record)

            results, outcome = self._train_arm(hp, model, args, kwargs, callbacks, seed, context)
            arms[tuner_arm].update(outcome)
            self._write(context, record)

            if default_model is not None:
                arms["default"] = records.uninitialized_arm()
                if context is not None and "tuner/epochs" in hp.values:
                    default_callbacks.append(
                        _SaveBestWeights(context.objective, os.path.join(context.trial_dir, DEFAULT_ARM_WEIGHTS))
                    )
                _, default_outcome = self._train_arm(
                    hp, default_model, args, kwargs, default_callbacks, seed, context
                )
                arms["default"].update(default_outcome)
        except Exception as error:
            record["status"] = "error"
            record["reason"] = f"{type(error).__name__}: {error}"
            self._write(context, record)
            raise

        diverged = arms[tuner_arm]["divergence"]
        record["status"] = "diverged" if diverged else "completed"
        record["reason"] = f"{tuner_arm} arm: {diverged}" if diverged else None
        path = self._write(context, record)
        if diverged:
            where = f" Recorded in {path}." if path else ""
            raise keras_tuner.errors.FailedTrialError(
                f"Training diverged ({tuner_arm} arm): {diverged}.{where} Diverged trials fail; "
                "raise the tuner's `max_consecutive_failed_trials` (or pass None) for search "
                "spaces where divergence is common."
            )
        if self.init != "compare":
            return results
        reported = {name: value for name, value in arms["autoinit"]["metrics"].items() if value is not None}
        for name, value in arms["default"]["metrics"].items():
            if value is not None:
                reported[DEFAULT_PREFIX + name] = value
        return reported

    # Public helpers.

    def trial_seed(self, hp):
        """The seed of a trial starting from hyperparameters ``hp`` (an int in [0, 2**31 - 1)).

        A sha256 of ``self.seed`` and ``hp.values`` as the oracle proposed
        them (before the build registers defaults for any new entries),
        without the ``tuner/*`` entries Hyperband adds. A trial that
        continues another (Hyperband) keeps that trial's recorded seed.
        """
        values = {key: value for key, value in hp.values.items() if not key.startswith("tuner/")}
        text = json.dumps([self.seed, values], sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % (2**31 - 1)

    # Internals.

    @staticmethod
    def _inherited_seed(context, reloaded_from, seed):
        """A continued trial trains on with the seed of the trial it continues."""
        if context is None:
            return seed
        previous = records.read_record(context.tuner.get_trial_dir(reloaded_from))
        if previous and isinstance(previous.get("seed"), int):
            return previous["seed"]
        return seed

    def _start_execution(self, context, hp, seed, reloaded_from):
        trial_id = context.trial_id if context is not None else None
        executions = context.executions_per_trial if context is not None else 1
        if self._current is not None and self._current[0] == trial_id and trial_id is not None:
            _, record, started = self._current
            index = started % executions
        else:
            record, index = None, 0
        if index == 0 or record is None:
            record = records.new_record(
                "keras_tuner", trial_id, self.init, seed=seed, hyperparameters=hp.values, reloaded_from=reloaded_from
            )
            if context is not None:
                record["worker"]["tuner_id"] = context.tuner_id
                record["objective"] = context.objective_fields()
            started = 0
            index = 0
        execution = {"execution": index, "arms": {}}
        record["executions"].append(execution)
        record["status"], record["reason"] = "running", None
        self._current = (trial_id, record, started + 1)
        return record, execution

    def _initialize(self, model, seed, reloaded_from, context):
        if reloaded_from is not None:
            fields = records.uninitialized_arm()
            previous = None
            if context is not None:
                previous = records.read_record(context.tuner.get_trial_dir(reloaded_from))
            if previous and previous.get("executions"):
                arm = previous["executions"][-1]["arms"].get("autoinit") or {}
                for key in records.PREDICTION_FIELDS:
                    fields[key] = arm.get(key)
            return fields
        # Weights follow the trial's seed; sampled estimates keep one seed so the
        # estimate cache is reused across trials.
        fields, initializer = records.initialize_arm(self.autoinit, model, seed)
        self.autoinit.unsupported_layers = list(initializer.unsupported_layers)
        return fields

    def _build_default_arm(self, hp, model, seed, reloaded_from, context):
        keras.utils.set_random_seed(seed)
        default_model = self.hypermodel.build(hp.copy())
        tuner = context.tuner if context is not None else None
        if tuner is not None and any(getattr(tuner, name, None) for name in ("optimizer", "loss", "metrics")):
            # The tuner recompiled its model with its own optimizer/loss/metrics.
            try:
                default_model.compile_from_config(model.get_compile_config())
            except Exception as error:  # noqa: BLE001 - keep the build's own compile
                warnings.warn(
                    "Could not copy the tuner's compile arguments to the default arm "
                    f"({type(error).__name__}: {error}); it trains as its build compiled it.",
                    stacklevel=3,
                )
        if reloaded_from is not None and context is not None:
            path = os.path.join(context.tuner.get_trial_dir(reloaded_from), DEFAULT_ARM_WEIGHTS)
            if os.path.exists(path):
                default_model.load_weights(path)
            else:
                warnings.warn(
                    f"Trial {context.trial_id} continues trial {reloaded_from}, but that trial "
                    f"saved no default-arm weights ({path}); the default arm starts afresh.",
                    stacklevel=3,
                )
        return default_model

    def _train_arm(self, hp, model, args, kwargs, callbacks, seed, context):
        monitor = _DivergenceMonitor()
        fit_kwargs = dict(kwargs)
        fit_kwargs["callbacks"] = list(callbacks) + [monitor]
        keras.utils.set_random_seed(seed)
        start = time.perf_counter()
        results = self.hypermodel.fit(hp, model, *args, **fit_kwargs)
        seconds = time.perf_counter() - start
        objective = context.objective if context is not None else None
        history = _as_history(results, objective)
        reason = monitor.reason or records.non_finite_loss(history)
        epochs = max((len(values) for values in history.values()), default=0)
        best = _best_epoch(history, objective, epochs)
        outcome = {
            "train_seconds": seconds,
            "diverged": reason is not None,
            "divergence": reason,
            "epochs": epochs,
            "metrics": records.epoch_metrics(history, best),
            "final_metrics": records.epoch_metrics(history, epochs - 1),
            "history": history,
        }
        return results, outcome

    def _write(self, context, record):
        if context is None:
            return None
        return records.write_record(context.trial_dir, record)


class _BuildFunction(keras_tuner.HyperModel):
    """A build function as a HyperModel (picklable when the function is)."""

    def __init__(self, build_fn):
        super().__init__(name=getattr(build_fn, "__name__", None))
        self.build_fn = build_fn

    def build(self, hp):
        return self.build_fn(hp)


class _TrialContext:
    """The tuner and trial behind a fit call, found among its callbacks.

    keras-tuner's ``Tuner.run_trial`` always adds a callback holding both
    (``tuner_utils.TunerCallback``); it is recognised by its ``tuner`` and
    ``trial`` attributes.
    """

    def __init__(self, tuner, trial):
        self.tuner = tuner
        self.trial = trial
        self.trial_id = str(trial.trial_id)
        self.trial_dir = tuner.get_trial_dir(trial.trial_id)
        self.tuner_id = getattr(tuner, "tuner_id", None)
        self.executions_per_trial = max(int(getattr(tuner, "executions_per_trial", 1) or 1), 1)
        self.objective = getattr(getattr(tuner, "oracle", None), "objective", None)

    @classmethod
    def find(cls, callbacks):
        for callback in callbacks or []:
            tuner = getattr(callback, "tuner", None)
            trial = getattr(callback, "trial", None)
            if tuner is not None and hasattr(trial, "trial_id") and hasattr(tuner, "get_trial_dir"):
                return cls(tuner, trial)
        return None

    def objective_fields(self):
        if self.objective is None:
            return None
        return {"name": self.objective.name, "direction": getattr(self.objective, "direction", None)}


def _is_tuner_callback(callback):
    if hasattr(callback, "tuner") and hasattr(callback, "trial"):
        return True
    return type(callback).__name__ in _TUNER_CALLBACKS


def _copy_callbacks(callbacks):
    try:
        return copy.deepcopy(callbacks)
    except Exception:  # noqa: BLE001 - fall back to sharing them
        return list(callbacks)


class _DivergenceMonitor(keras.callbacks.Callback):
    """Stops training at the first non-finite ``loss`` or ``val_loss`` and says where."""

    def __init__(self):
        super().__init__()
        self.reason = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"epoch {self.epoch}, batch {batch}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"epoch {epoch}")

    def _check(self, logs, where):
        if self.reason is not None or not logs:
            return
        self.reason = records.logs_divergence(logs, where)
        if self.reason is not None:
            self.model.stop_training = True


class _SaveBestWeights(keras.callbacks.Callback):
    """Save weights at the best epoch by ``objective`` (as keras-tuner does for its arm)."""

    def __init__(self, objective, filepath):
        super().__init__()
        self.objective = objective
        self.filepath = filepath
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.objective is None or not self.objective.has_value(logs):
            self.model.save_weights(self.filepath)
            return
        value = self.objective.get_value(logs)
        if not records.finite(value):
            return
        if self.best is None or self.objective.better_than(value, self.best):
            self.best = value
            self.model.save_weights(self.filepath)


def _as_history(results, objective):
    """{metric: [value per epoch]} from what a HyperModel's fit returned."""
    if isinstance(results, keras.callbacks.History):
        return {name: [float(v) for v in values] for name, values in results.history.items()}
    if isinstance(results, dict):
        history = {}
        for name, value in results.items():
            try:
                history[name] = [float(value)]
            except (TypeError, ValueError):
                continue
        return history
    if isinstance(results, (int, float)) and not isinstance(results, bool):
        name = objective.name if objective is not None else "objective"
        return {name: [float(results)]}
    if isinstance(results, list) and results:
        # Several executions inside one fit: average their best values, as keras-tuner does.
        parts = []
        for item in results:
            history = _as_history(item, objective)
            epochs = max((len(values) for values in history.values()), default=0)
            parts.append(records.epoch_metrics(history, _best_epoch(history, objective, epochs)))
        names = sorted({name for part in parts for name in part})
        averaged = {}
        for name in names:
            values = [part[name] for part in parts if part.get(name) is not None]
            averaged[name] = [sum(values) / len(values) if values else float("nan")]
        return averaged
    return {}


def _best_epoch(history, objective, epochs):
    """The epoch whose logs the tuner's ``objective`` likes best (the last one without an objective)."""
    if objective is None:
        return epochs - 1
    values = []
    for epoch in range(epochs):
        logs = {name: series[epoch] for name, series in history.items() if epoch < len(series)}
        values.append(objective.get_value(logs) if objective.has_value(logs) else None)
    return records.best_epoch(values, objective.better_than)
