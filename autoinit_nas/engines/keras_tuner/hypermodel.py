"""``AutoInitHyperModel``: a keras-tuner HyperModel whose candidates start from an init arm.

Builds and seeds candidates, applies the arm, trains each arm, and writes the
trial record into keras-tuner's trial directory. Modes, seeds, Hyperband,
divergence and distributed tuning: docs/engines.md.
"""

import os
import time
import warnings

import keras
import keras_tuner

from autoinit_nas.core.architecture import describe_model
from autoinit_nas.engines.keras_tuner import context as trial_context
from autoinit_nas.engines.keras_tuner.history import as_history, objective_epoch
from autoinit_nas.trials import arms, records
from autoinit_nas.trials.divergence import DivergenceCallback
from autoinit_nas.trials.metrics import summarize_history

INIT_MODES = arms.INIT_MODES
DEFAULT_PREFIX = "default_"
DEFAULT_ARM_WEIGHTS = "default_arm.weights.h5"
KERAS_DEFAULT_BATCH = 32
_SEED_ATTRIBUTE = "_autoinit_nas_seed"
_ARM_ATTRIBUTE = "_autoinit_nas_arm"  # (seed, arm fields) of an arm build() applied


class AutoInitHyperModel(keras_tuner.HyperModel):
    """A keras-tuner HyperModel that initializes every candidate with AutoInit.

    Wraps a build function or a ``HyperModel``; pass it to any tuner in its
    place. Inside a trial the arm is applied once, in ``fit``, with the trial's
    batch size; ``build`` called by you (``tuner.hypermodel.build(best_hp)``)
    returns the model with its arm already applied, as it was searched.

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
        hypermodel_or_build_fn: a ``keras_tuner.HyperModel`` or ``build(hp) -> keras.Model``.
        autoinit: the ``AutoInit`` to use (default ``AutoInit()``); each trial
            uses a copy seeded with the trial seed (unless its config has a seed).
        init: "autoinit", "default" (Keras's initializers, the control arm)
            or "compare" (both, reported side by side).
        seed: int mixed into every trial's seed.
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
        autoinit, seed = arms.checked_options(autoinit, seed)
        super().__init__(name=name or hypermodel.name, tunable=True)
        self.hypermodel = hypermodel
        self.autoinit = autoinit
        self.init = init
        self.seed = seed
        self._current = None  # (trial_id, record, executions started) of the running trial

    @property
    def arm(self):
        """The arm the tuner's objective follows: "default" in default mode, else "autoinit"."""
        return "default" if self.init == "default" else "autoinit"

    def declare_hyperparameters(self, hp):
        return self.hypermodel.declare_hyperparameters(hp)

    def build(self, hp):
        """Seed everything with the trial seed, build the wrapped model, and apply its arm.

        keras-tuner's own builds (a trial's, search-space discovery, reloads)
        only build: a trial applies the arm in ``fit``, with its batch size.
        """
        seed = self.trial_seed(hp)
        keras.utils.set_random_seed(seed)
        model = self.hypermodel.build(hp)
        if not isinstance(model, keras.Model):
            return model
        _stamp(model, _SEED_ATTRIBUTE, seed)
        if self.arm == "autoinit" and not trial_context.built_by_tuner():
            fields = self._initialize(model, seed, KERAS_DEFAULT_BATCH)
            _stamp(model, _ARM_ATTRIBUTE, (seed, fields))
        return model

    def fit(self, hp, model, *args, **kwargs):
        """Initialize ``model`` per ``init``, train it (and its default twin), record both."""
        context = trial_context.TrialContext.find(kwargs.get("callbacks"))
        seed = getattr(model, _SEED_ATTRIBUTE, None)
        if seed is None:
            seed = self.trial_seed(hp)
        reloaded_from = hp.values.get("tuner/trial_id")
        if reloaded_from is not None:
            seed = self._inherited_seed(context, reloaded_from, seed)
        record, execution = self._start_execution(context, hp, seed, reloaded_from)
        trial = _Trial(hp, model, args, kwargs, seed, context, reloaded_from)
        try:
            results = self._run_arms(trial, record, execution["arms"])
        except Exception as error:
            record["status"] = "error"
            record["reason"] = f"{type(error).__name__}: {error}"
            self._write(context, record)
            raise
        return self._finish(trial, record, execution["arms"], results)

    def trial_seed(self, hp):
        """The seed of a trial starting from hyperparameters ``hp`` (``autoinit_nas.trials.arms.trial_seed``).

        From ``hp.values`` as the oracle proposed them, without ``tuner/*``
        entries; a trial continuing another (Hyperband) keeps that trial's seed.
        """
        return arms.trial_seed(hp.values, self.seed)

    # Steps of a trial.

    def _run_arms(self, trial, record, arm_fields):
        callbacks = list(trial.kwargs.get("callbacks") or [])
        default_callbacks = None
        if self.init == "compare":  # copied before the AutoInit arm uses (and binds) them
            default_callbacks = trial_context.copy_callbacks(
                [c for c in callbacks if not trial_context.is_tuner_callback(c)]
            )
        if record["architecture_id"] is None:
            record.update(describe_model(trial.model))
        default_model = self._build_default_arm(trial) if self.init == "compare" else None
        arm_fields[self.arm] = self._arm_fields(trial)
        self._write(trial.context, record)
        results, outcome = self._train_arm(trial, trial.model, callbacks)
        arm_fields[self.arm].update(outcome)
        self._write(trial.context, record)
        if default_model is not None:
            arm_fields["default"] = arms.uninitialized_arm()
            if trial.context is not None and "tuner/epochs" in trial.hp.values:
                path = os.path.join(trial.context.trial_dir, DEFAULT_ARM_WEIGHTS)
                default_callbacks.append(trial_context.SaveBestWeights(trial.context.objective, path))
            _, outcome = self._train_arm(trial, default_model, default_callbacks)
            arm_fields["default"].update(outcome)
        return results

    def _finish(self, trial, record, arm_fields, results):
        diverged = arm_fields[self.arm]["divergence"]
        record["status"] = "diverged" if diverged else "completed"
        record["reason"] = f"{self.arm} arm: {diverged}" if diverged else None
        path = self._write(trial.context, record)
        if diverged:
            where = f" Recorded in {path}." if path else ""
            raise keras_tuner.errors.FailedTrialError(
                f"Training diverged ({self.arm} arm): {diverged}.{where} Diverged trials fail; "
                "raise the tuner's `max_consecutive_failed_trials` (or pass None) for search "
                "spaces where divergence is common."
            )
        if self.init != "compare":
            return results
        reported = {name: value for name, value in arm_fields["autoinit"]["metrics"].items() if value is not None}
        for name, value in arm_fields["default"]["metrics"].items():
            if value is not None:
                reported[DEFAULT_PREFIX + name] = value
        return reported

    def _arm_fields(self, trial):
        """The tuner arm's fields: applied now, by build(), or inherited from a reloaded trial."""
        if self.arm == "default":
            return arms.uninitialized_arm()
        if trial.reloaded_from is not None:
            return self._reloaded_fields(trial)
        stamped = getattr(trial.model, _ARM_ATTRIBUTE, None)
        if stamped is not None and stamped[0] == trial.seed:
            return dict(stamped[1])  # build() applied the arm already: do not initialize twice
        fields = self._initialize(trial.model, trial.seed, trial.batch_size)
        _stamp(trial.model, _ARM_ATTRIBUTE, (trial.seed, fields))
        return fields

    def _initialize(self, model, seed, batch_size):
        fields, initializer = arms.apply_arm("autoinit", model, self.autoinit, seed, probe_batch=batch_size)
        self.autoinit.unsupported_layers = list(initializer.unsupported_layers)
        return fields

    def _reloaded_fields(self, trial):
        """Hyperband loaded an earlier trial's checkpoint: copy that trial's predictions."""
        fields = arms.uninitialized_arm()
        previous = None
        if trial.context is not None:
            previous = records.read_record(trial.context.tuner.get_trial_dir(trial.reloaded_from))
        if previous and previous.get("executions"):
            arm = previous["executions"][-1]["arms"].get("autoinit") or {}
            for key in arms.PREDICTION_FIELDS:
                fields[key] = arm.get(key)
        return fields

    def _build_default_arm(self, trial):
        keras.utils.set_random_seed(trial.seed)
        default_model = self.hypermodel.build(trial.hp.copy())
        context = trial.context
        tuner = context.tuner if context is not None else None
        if tuner is not None and any(getattr(tuner, name, None) for name in ("optimizer", "loss", "metrics")):
            try:  # the tuner recompiled its model with its own optimizer/loss/metrics
                default_model.compile_from_config(trial.model.get_compile_config())
            except Exception as error:  # noqa: BLE001 - keep the build's own compile
                warnings.warn(
                    "Could not copy the tuner's compile arguments to the default arm "
                    f"({type(error).__name__}: {error}); it trains as its build compiled it.",
                    stacklevel=3,
                )
        if trial.reloaded_from is not None and context is not None:
            path = os.path.join(context.tuner.get_trial_dir(trial.reloaded_from), DEFAULT_ARM_WEIGHTS)
            if os.path.exists(path):
                default_model.load_weights(path)
            else:
                warnings.warn(
                    f"Trial {context.trial_id} continues trial {trial.reloaded_from}, but that trial "
                    f"saved no default-arm weights ({path}); the default arm starts afresh.",
                    stacklevel=3,
                )
        return default_model

    def _train_arm(self, trial, model, callbacks):
        monitor = DivergenceCallback()
        fit_kwargs = dict(trial.kwargs, callbacks=list(callbacks) + [monitor])
        keras.utils.set_random_seed(trial.seed)
        start = time.perf_counter()
        results = self.hypermodel.fit(trial.hp, model, *trial.args, **fit_kwargs)
        seconds = time.perf_counter() - start
        objective = trial.context.objective if trial.context is not None else None
        history = as_history(results, objective)
        outcome = summarize_history(history, objective_epoch(history, objective), monitor.divergence)
        outcome.update(train_seconds=seconds, history=history)
        return results, outcome

    # Records.

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
        record, index, started = None, 0, 0
        if self._current is not None and trial_id is not None and self._current[0] == trial_id:
            _, record, started = self._current
            index = started % executions
        if index == 0 or record is None:
            record = records.new_record(
                "keras_tuner", trial_id, self.init, seed=seed, hyperparameters=hp.values, reloaded_from=reloaded_from
            )
            if context is not None:
                record["worker"]["tuner_id"] = context.tuner_id
                record["objective"] = context.objective_fields()
            started, index = 0, 0
        execution = {"execution": index, "arms": {}}
        record["executions"].append(execution)
        record["status"], record["reason"] = "running", None
        self._current = (trial_id, record, started + 1)
        return record, execution

    def _write(self, context, record):
        if context is None:
            return None
        return records.write_record(context.trial_dir, record)


class _Trial:
    """One fit call: its hyperparameters, model, fit arguments, seed and keras-tuner context."""

    def __init__(self, hp, model, args, kwargs, seed, context, reloaded_from):
        self.hp, self.model, self.args, self.kwargs = hp, model, args, kwargs
        self.seed, self.context, self.reloaded_from = seed, context, reloaded_from
        self.batch_size = kwargs.get("batch_size") or KERAS_DEFAULT_BATCH


class _BuildFunction(keras_tuner.HyperModel):
    """A build function as a HyperModel (picklable when the function is)."""

    def __init__(self, build_fn):
        super().__init__(name=getattr(build_fn, "__name__", None))
        self.build_fn = build_fn

    def build(self, hp):
        return self.build_fn(hp)


def _stamp(model, attribute, value):
    # A plain attribute: Keras would otherwise track the tuple and dict as layer state.
    object.__setattr__(model, attribute, value)
