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
from autoinit_nas.engines.keras_tuner import stamp as arm_stamp
from autoinit_nas.engines.keras_tuner.history import as_history, objective_epoch
from autoinit_nas.engines.keras_tuner.searched import SearchedBatches
from autoinit_nas.trials import arms, lifecycle, records
from autoinit_nas.trials import arms as trial_arms  # ``arms`` is also __init__'s argument
from autoinit_nas.trials.divergence import DivergenceCallback
from autoinit_nas.trials.metrics import summarize_history

INIT_MODES = arms.INIT_MODES
DEFAULT_PREFIX = "default_"
DEFAULT_ARM_WEIGHTS = "default_arm.weights.h5"
KERAS_DEFAULT_BATCH = arm_stamp.KERAS_DEFAULT_BATCH
# What a trial that did not initialize (reloaded, or training on) keeps of the arm its weights started from.
_INHERITED_FIELDS = arms.PREDICTION_FIELDS + ("probe_batch",)


class AutoInitHyperModel(keras_tuner.HyperModel):
    """A keras-tuner HyperModel that initializes every candidate with AutoInit.

    Wraps a build function or a ``HyperModel``; pass it to any tuner in its
    place. Inside a trial the arm is applied once, by the first fit of the
    built model (this ``fit``, or the model's own ``fit`` when a tuner's
    ``run_trial`` trains it directly), at that fit's batch size; ``build``
    called by you (``tuner.hypermodel.build(best_hp)``) returns the model with
    its arm already applied at the batch size its trial probed at, as it was
    searched. No call stack is read: see ``build`` and ``fit_hook``.

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
        init: "autoinit", "default" (Keras's initializers, the control arm),
            any other arm of ``autoinit_nas.trials.arms.ARMS`` ("he",
            "lecun", "lsuv", "autoinit-scalar"), or "compare" (the same as
            ``arms=["autoinit", "default"]``).
        seed: int mixed into every trial's seed.
        name: optional name (defaults to the wrapped HyperModel's).
        arms: several arms, each trained per trial from the same seed and
            data order (generalizes "compare"). The first is the tuner's: its
            metrics go under their own names and drive the objective and
            checkpoints; every other arm's go prefixed ``<arm>_``
            (``he_val_accuracy``). "lsuv" measures on the first
            ``batch_size`` examples of the trial's ``x``.
    """

    def __init__(self, hypermodel_or_build_fn, autoinit=None, init="autoinit", seed=0, name=None, arms=None):
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
        self.arms = _arms_of(init, arms)
        autoinit, seed = trial_arms.checked_options(autoinit, seed)
        super().__init__(name=name or hypermodel.name, tunable=True)
        self.hypermodel = hypermodel
        self.autoinit = autoinit
        self.init = init if arms is None else "+".join(self.arms)
        self.seed = seed
        self._current = None  # (trial_id, record, executions started) of the running trial
        self._searched = SearchedBatches()  # probe batch of each trial run (or read back), by its hp values

    @property
    def arm(self):
        """The arm the tuner's objective follows: the first of ``arms`` ("autoinit" in "compare" mode)."""
        return self.arms[0]

    @property
    def twins(self):
        """The other arms, trained after the tuner's arm from the same seed."""
        return self.arms[1:]

    def declare_hyperparameters(self, hp):
        return self.hypermodel.declare_hyperparameters(hp)

    def build(self, hp):
        """Seed everything with the trial seed, build the wrapped model, and stamp its arm on it.

        keras-tuner does not tell a HyperModel whether a trial is running, so
        ``build`` decides from ``hp`` alone (``stamp`` keeps the decision):

        - ``hp`` of a trial already searched (run in this process, or read
          from its record, see ``remember_trials``): the arm is applied now, at
          the batch size that trial recorded (``probe_batch``), so
          ``tuner.hypermodel.build(best_hp)`` is the candidate as searched;
        - any other ``hp`` (a new trial, keras-tuner's search-space discovery,
          an unknown trial's ``hp``): the arm stays pending until the model's
          first fit (``fit`` or the model's own ``fit``, see ``fit_hook``),
          which applies it once, at its batch size and, for "lsuv", on its
          data. A model never fitted is never initialized.

        Weights loaded (``load_weights``: Hyperband's continuations,
        ``tuner.load_model``, ``get_best_models``), set or assigned after this
        are never initialized again (``stamp.ArmStamp.can_initialize``).
        """
        seed = self.trial_seed(hp)
        keras.utils.set_random_seed(seed)
        model = self.hypermodel.build(hp)
        if not isinstance(model, keras.Model):
            return model
        state = arm_stamp.DEFAULT if self.arm == "default" else arm_stamp.PENDING
        stamp = arm_stamp.mark(model, arm_stamp.ArmStamp(self, hp, self.arm, seed, model, state))
        searched = self._searched.batch_for(hp.values)
        if state == arm_stamp.PENDING and searched is not None and self.arm not in arms.DATA_ARMS:  # "lsuv": fit's data
            stamp.applied(self.arm, seed, searched, self._initialize(model, seed, searched))
        return model

    def fit(self, hp, model, *args, **kwargs):
        """Apply the arm once at this fit's batch size (unless reloaded or already there), train every arm, record.

        keras-tuner calls it from ``Tuner.run_trial``; a tuner that trains the
        built model itself reaches ``fit_hook`` instead.
        """
        return self._fit_trial(hp, model, args, kwargs, managed=True)

    def fit_hook(self, model, stamp, args, kwargs):
        """``model.fit`` of a model this HyperModel built (``stamp.mark`` routes it here).

        Inside ``fit`` it only re-applies an arm applied at another batch size
        to this fit's, before any training (a ``HyperModel.fit`` that trains at
        a batch its arguments did not say). Without ``fit`` (a tuner's custom
        ``run_trial``, AutoKeras's ``_build_and_fit_model``, retraining
        ``build(best_hp)``) it applies a pending arm at this fit's batch size;
        when keras-tuner's trial callback is among ``callbacks`` it also
        records the trial (the tuner's arm; other arms need ``fit``). Weights
        a fit has trained, or that were loaded, set or assigned since they
        were drawn, are never initialized again.
        """
        if not stamp.managed and trial_context.TrialContext.find(kwargs.get("callbacks")) is not None:
            return self._fit_trial(stamp.hp, model, args, kwargs, managed=False)
        trial = _Trial(stamp.hp, model, args, kwargs, stamp.seed, None, None)
        if stamp.can_initialize(model) and not stamp.holds(model, self.arm, stamp.seed, trial.batch_size):
            stamp.reapplied = self._apply(trial, stamp)
        stamp.trained = True
        return arm_stamp.plain_fit(model, *args, **kwargs)

    def remember_trials(self, directory):
        """Read the probe batch of every trial recorded under ``directory`` (a tuner's ``project_dir``).

        ``build(best_hp)`` in a new process, before any trial ran there, finds
        the trial's batch only this way (the first trial of a resumed search
        reads its project by itself). Returns how many trials were read.

        Example:
            >>> AutoInitHyperModel(lambda hp: None).remember_trials("/nonexistent/project")
            0
        """
        return self._searched.load(directory, self.arm)

    def _fit_trial(self, hp, model, args, kwargs, managed):
        context = trial_context.TrialContext.find(kwargs.get("callbacks"))
        if context is not None:
            self.remember_trials(getattr(context.tuner, "project_dir", None))
        stamp = arm_stamp.stamp_of(model)
        seed = stamp.seed if stamp is not None else self.trial_seed(hp)
        reloaded_from = hp.values.get("tuner/trial_id")
        if reloaded_from is not None:
            seed = self._inherited_seed(context, reloaded_from, seed)
        record, execution = self._start_execution(context, hp, seed, reloaded_from)
        trial = _Trial(hp, model, args, kwargs, seed, context, reloaded_from, managed)
        try:
            results = self._run_arms(trial, record, execution["arms"])
        except Exception as error:
            lifecycle.fail(record, error)
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
        twin_callbacks = {}
        for twin in self.twins:  # copied before the tuner's arm uses (and binds) them
            twin_callbacks[twin] = trial_context.arm_callbacks(callbacks, twin)
        if record["architecture_id"] is None:
            record.update(describe_model(trial.model))
        results = self._train_tuner_arm(trial, record, arm_fields, callbacks)
        if self.twins and not trial.managed:
            warnings.warn(
                f"The {self.arm} arm trained through model.fit, not HyperModel.fit; the other arms "
                f"{list(self.twins)} train only when the tuner calls `self.hypermodel.fit(hp, model, ...)`.",
                stacklevel=4,
            )
            return results
        for twin in self.twins:
            model, arm_fields[twin] = self._build_twin(trial, twin)
            if trial.context is not None and "tuner/epochs" in trial.hp.values:
                path = os.path.join(trial.context.trial_dir, _twin_weights(twin))
                twin_callbacks[twin].append(trial_context.SaveBestWeights(trial.context.objective, path))
            _, outcome = self._train_arm(trial, model, twin_callbacks[twin])
            arm_fields[twin].update(outcome)
            self._write(trial.context, record)
        return results

    def _train_tuner_arm(self, trial, record, arm_fields, callbacks):
        """Apply (or keep) the tuner's arm, record it, train it; the stamp lets the model's fit pass through."""
        arm_fields[self.arm] = self._arm_fields(trial)
        self._write(trial.context, record)
        stamp = arm_stamp.stamp_of(trial.model)
        stamp.managed, stamp.reapplied = True, None
        try:
            results, outcome = self._train_arm(trial, trial.model, callbacks)
        finally:
            stamp.managed, stamp.trained = False, True
        if stamp.reapplied is not None:  # the model's fit trained at another batch: the arm moved to it
            arm_fields[self.arm].update(stamp.reapplied)
        arm_fields[self.arm].update(outcome)
        self._write(trial.context, record)
        return results

    def _finish(self, trial, record, arm_fields, results):
        diverged = arm_fields[self.arm]["divergence"]
        lifecycle.finish(record, arms=[self.arm])
        path = self._write(trial.context, record)
        if diverged:
            where = f" Recorded in {path}." if path else ""
            raise keras_tuner.errors.FailedTrialError(
                f"Training diverged ({self.arm} arm): {diverged}.{where} Diverged trials fail; "
                "raise the tuner's `max_consecutive_failed_trials` (or pass None) for search "
                "spaces where divergence is common."
            )
        if not self.twins or not trial.managed:
            return results
        reported = {name: value for name, value in arm_fields[self.arm]["metrics"].items() if value is not None}
        for twin in self.twins:
            for name, value in arm_fields[twin]["metrics"].items():
                if value is not None:
                    reported[f"{twin}_{name}"] = value
        return reported

    def _arm_fields(self, trial):
        """The tuner arm's fields: inherited from a reloaded trial, already in the weights, or applied now.

        The weights count as holding the arm only when the model's stamp
        matches all of arm, seed, probe batch and model identity, and they
        are initialized only while still exactly as drawn.
        """
        stamp = arm_stamp.stamp_of(trial.model)
        if stamp is None:  # a model this HyperModel did not build: stamp it, so its fit passes through
            state = arm_stamp.DEFAULT if self.arm == "default" else arm_stamp.PENDING
            stamp = arm_stamp.mark(trial.model, arm_stamp.ArmStamp(self, trial.hp, self.arm, trial.seed,
                                                                   trial.model, state))
        if self.arm == "default":
            return arms.uninitialized_arm()
        if trial.reloaded_from is not None:
            stamp.state = arm_stamp.RELOADED
            fields = self._reloaded_fields(trial)
            self._searched.remember(trial.hp.values, trial.seed, fields["probe_batch"])
            return fields
        if not stamp.can_initialize(trial.model):  # trained, loaded or set: training goes on from these weights
            fields = arms.uninitialized_arm()
            fields.update({key: (stamp.fields or {}).get(key) for key in _INHERITED_FIELDS})
            return fields
        if stamp.holds(trial.model, self.arm, trial.seed, trial.batch_size):
            return dict(stamp.fields)  # build() applied it at this batch already: not twice
        return dict(self._apply(trial, stamp))

    def _apply(self, trial, stamp):
        """Apply the tuner's arm to ``trial.model`` at the trial's batch size; note it on the stamp and in memory."""
        fields = self._initialize(trial.model, trial.seed, trial.batch_size, self.arm, trial.data_batch())
        stamp.applied(self.arm, trial.seed, trial.batch_size, fields)
        self._searched.remember(trial.hp.values, trial.seed, trial.batch_size)
        return fields

    def _initialize(self, model, seed, batch_size, arm=None, data=None):
        fields, initializer = arms.apply_arm(arm or self.arm, model, self.autoinit, seed, probe_batch=batch_size,
                                             data=data)
        if initializer is not None:
            self.autoinit.unsupported_layers = list(initializer.unsupported_layers)
        fields["probe_batch"] = batch_size if fields["initialized"] else None
        return fields

    def _reloaded_fields(self, trial, arm=None):
        """Hyperband loaded an earlier trial's checkpoint: copy that trial's predictions."""
        fields = arms.uninitialized_arm()
        previous = None
        if trial.context is not None:
            previous = records.read_record(trial.context.tuner.get_trial_dir(trial.reloaded_from))
        if previous and previous.get("executions"):
            earlier = previous["executions"][-1]["arms"].get(arm or self.arm) or {}
            for key in _INHERITED_FIELDS:
                fields[key] = earlier.get(key)
        if fields["probe_batch"] is None and (arm or self.arm) == self.arm:
            fields["probe_batch"] = self._searched.batch_for_seed(trial.seed)
        return fields

    def _build_twin(self, trial, twin):
        """A fresh build of the candidate with arm ``twin`` applied (or its saved weights reloaded)."""
        keras.utils.set_random_seed(trial.seed)
        model = self.hypermodel.build(trial.hp.copy())
        context = trial.context
        tuner = context.tuner if context is not None else None
        if tuner is not None and any(getattr(tuner, name, None) for name in ("optimizer", "loss", "metrics")):
            try:  # the tuner recompiled its model with its own optimizer/loss/metrics
                model.compile_from_config(trial.model.get_compile_config())
            except Exception as error:  # noqa: BLE001 - keep the build's own compile
                warnings.warn(
                    f"Could not copy the tuner's compile arguments to the {twin} arm "
                    f"({type(error).__name__}: {error}); it trains as its build compiled it.",
                    stacklevel=3,
                )
        if trial.reloaded_from is not None and context is not None:
            path = os.path.join(context.tuner.get_trial_dir(trial.reloaded_from), _twin_weights(twin))
            if os.path.exists(path):
                model.load_weights(path)
                return model, self._reloaded_fields(trial, twin)
            warnings.warn(
                f"Trial {context.trial_id} continues trial {trial.reloaded_from}, but that trial "
                f"saved no {twin}-arm weights ({path}); the {twin} arm starts afresh.",
                stacklevel=3,
            )
        return model, self._initialize(model, trial.seed, trial.batch_size, twin, trial.data_batch())

    def _train_arm(self, trial, model, callbacks):
        monitor = DivergenceCallback()
        fit_kwargs = dict(trial.kwargs, callbacks=list(callbacks) + [monitor])
        keras.utils.set_random_seed(trial.seed)
        start = time.perf_counter()
        if trial.managed:
            results = self.hypermodel.fit(trial.hp, model, *trial.args, **fit_kwargs)
        else:  # the tuner called model.fit itself: train as it asked
            results = arm_stamp.plain_fit(model, *trial.args, **fit_kwargs)
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
            record = lifecycle.start(
                "keras_tuner", trial_id, self.init, seed=seed, hyperparameters=hp.values, reloaded_from=reloaded_from
            )
            if context is not None:
                record["worker"]["tuner_id"] = context.tuner_id
                record["objective"] = context.objective_fields()
            started, index = 0, 0
        execution = lifecycle.start_execution(record, index)
        self._current = (trial_id, record, started + 1)
        return record, execution

    def _write(self, context, record):
        if context is None:
            return None
        return records.write_record(context.trial_dir, record)


class _Trial:
    """One fit call: its hyperparameters, model, fit arguments, seed and keras-tuner context.

    ``managed``: called through ``HyperModel.fit`` (False: through the model's
    own ``fit``, which trains only the tuner's arm).
    """

    def __init__(self, hp, model, args, kwargs, seed, context, reloaded_from, managed=True):
        self.hp, self.model, self.args, self.kwargs = hp, model, args, kwargs
        self.seed, self.context, self.reloaded_from = seed, context, reloaded_from
        self.managed = managed
        self.batch_size = arm_stamp.fit_batch_size(args, kwargs)

    def data_batch(self):
        """The first ``batch_size`` training inputs (for "lsuv"), or None when ``x`` is not an array."""
        x = self.args[0] if self.args else self.kwargs.get("x")
        if x is None or not hasattr(x, "__getitem__") or isinstance(x, str):
            return None
        try:
            return arms.data_batch(x, self.batch_size)
        except (TypeError, KeyError, IndexError):  # a dataset or generator: no batch to slice
            return None


class _BuildFunction(keras_tuner.HyperModel):
    """A build function as a HyperModel (picklable when the function is)."""

    def __init__(self, build_fn):
        super().__init__(name=getattr(build_fn, "__name__", None))
        self.build_fn = build_fn

    def build(self, hp):
        return self.build_fn(hp)


def _arms_of(init, chosen):
    """The arms a wrapper trains per trial, the tuner's first."""
    if chosen is None:
        return ("autoinit", "default") if init == "compare" else (init,)
    if init != "autoinit":
        raise ValueError(f"Pass either `init` or `arms`, not both. Received: init={init!r}, arms={chosen!r}")
    chosen = [chosen] if isinstance(chosen, str) else list(chosen)
    unknown = [arm for arm in chosen if arm not in arms.ARMS]
    if not chosen or unknown or len(set(chosen)) != len(chosen):
        raise ValueError(f"`arms` must be distinct names from {list(arms.ARMS)}. Received: arms={chosen!r}")
    return tuple(chosen)


def _twin_weights(arm):
    """Where a twin arm's best weights go in its trial directory (for Hyperband)."""
    return DEFAULT_ARM_WEIGHTS if arm == "default" else f"{arm}_arm.weights.h5"

