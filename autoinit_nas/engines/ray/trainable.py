"""``with_autoinit`` and ``prepare_model``: AutoInit inside every Ray Tune trial, on any node.

``with_autoinit`` wraps a function trainable: the AutoInit (estimators
included) and the user's parameters travel through the object store, and each
trial runs inside a ``Trial`` that seeds it and writes its record. Usage,
seeds, records, restores and threads: docs/engines.md.
"""

import copy
import shutil
import tempfile

import keras

from autoinit_nas.core.autoinit import AutoInit
from autoinit_nas.estimators.cache import GLOBAL_CACHE, EstimateCache
from autoinit_nas.engines.ray import trial as ray_trial
from autoinit_nas.engines.ray.estimate_cache import SharedEstimateCache
from autoinit_nas.engines.ray.store import RecordWriter, call
from autoinit_nas.engines.ray.threads import set_tensorflow_threads
from autoinit_nas.trials import arms
from autoinit_nas.trials.arms import trial_seed  # noqa: F401 - public here since the first release
from autoinit_nas.trials.records import json_safe

MODES = ("max", "min")
KERAS_DEFAULT_BATCH = 32


def with_autoinit(
    trainable,
    autoinit=None,
    *,
    seed=0,
    shared_cache=None,
    metric=None,
    mode="max",
    threads=True,
    checkpoint=False,
    **parameters,
):
    """A Ray Tune function trainable that records (and applies) AutoInit per trial.

    Example:
        >>> from autoinit_nas.engines.ray.trainable import with_autoinit, prepare_model
        >>> def train(config, build):
        ...     model = prepare_model(build(config), config)
        ...     ...  # model.fit(..., callbacks=[RayReportCallback()])
        >>> trainable = with_autoinit(train, build=lambda config: None)
        >>> callable(trainable)
        True

    Args:
        trainable: a function ``trainable(config, **parameters)``, run once per
            trial. It builds its model, calls ``prepare_model(model, config)``
            and trains with ``RayReportCallback`` (or calls ``ray.tune.report``
            itself).
        autoinit: the ``AutoInit`` to use (default ``AutoInit()``), with your
            custom estimators, input moments and weight config. Each trial
            initializes with a copy seeded with the trial seed (unless its
            ``weight_init_config`` has a seed).
        seed: int mixed into every trial's seed; change it to replicate a
            sweep with fresh randomness.
        shared_cache: None (each worker process memoizes its own estimates),
            True (a ``SharedEstimateCache()``: one Ray actor for all trials and
            nodes) or any picklable object with ``get_or_compute(key, compute)``.
        metric, mode: the metric ("val_accuracy") and direction ("max" or
            "min") that pick each trial's best epoch in the record; None: the
            last epoch.
        threads: size TensorFlow's thread pools to the trial's CPUs.
        checkpoint: ``RayReportCallback`` saves a checkpoint (weights and
            optimizer state) with each report; on for schedulers that pause or
            clone trials (HyperBand, PBT) and for failure retries. Either way,
            a trial Tune restores from a checkpoint (``tune.get_checkpoint()``)
            loads it in ``prepare_model`` instead of initializing.
        **parameters: more keyword arguments for ``trainable`` (data, a build
            function, ...), shipped through the object store like the AutoInit.

    Returns:
        A trainable for ``ray.tune.Tuner`` (wrap it in ``tune.with_resources``
        to change its CPUs).
    """
    if not callable(trainable) or isinstance(trainable, type):
        raise TypeError(
            "`trainable` must be a function trainable(config, **parameters). "
            f"Received: {trainable!r} of type {type(trainable).__name__}"
        )
    autoinit, seed = arms.checked_options(autoinit, seed)
    if shared_cache is True:
        shared_cache = SharedEstimateCache()
    elif shared_cache is False:
        shared_cache = None
    if shared_cache is not None and not callable(getattr(shared_cache, "get_or_compute", None)):
        raise TypeError(
            "`shared_cache` must be None, True, or an object with a get_or_compute(key, compute) "
            f"method such as SharedEstimateCache(). Received: {shared_cache!r}"
        )
    if metric is not None and not isinstance(metric, str):
        raise TypeError(f"`metric` must be a metric name or None. Received: metric={metric!r}")
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
    reserved = {"_autoinit_nas_autoinit", "_autoinit_nas_cache"} & set(parameters)
    if reserved:
        raise ValueError(f"Parameter names {sorted(reserved)} are reserved by with_autoinit.")

    from ray import tune

    if isinstance(shared_cache, SharedEstimateCache):
        import ray

        if ray.is_initialized():
            shared_cache.start()  # now, from the driver; otherwise the first trial creates it
    options = _Options(seed=seed, metric=metric, mode=mode, threads=bool(threads), checkpoint=bool(checkpoint))

    def autoinit_trial(config, _autoinit_nas_autoinit, _autoinit_nas_cache, **user_parameters):
        return _run_trial(trainable, config, _autoinit_nas_autoinit, _autoinit_nas_cache, options, user_parameters)

    autoinit_trial.__name__ = getattr(trainable, "__name__", "autoinit_trial")
    autoinit_trial.__qualname__ = autoinit_trial.__name__
    return tune.with_parameters(
        autoinit_trial,
        _autoinit_nas_autoinit=_PortableAutoInit(autoinit),
        _autoinit_nas_cache=shared_cache,
        **parameters,
    )


def prepare_model(model, config=None, batch_size=None, data=None, arm=None):
    """Apply the trial's arm (or ``arm``) to ``model`` and record it; returns the model.

    The arm is ``config["init"]`` ("autoinit" when absent): any of
    ``autoinit_nas.trials.arms.ARMS`` ("autoinit", "default" (Keras's
    initializers), "he", "lecun", "lsuv", "autoinit-scalar"). Either way the
    model is described (architecture id, parameter count, depth) in the trial
    record and Python, NumPy and the backend are re-seeded with the trial
    seed, so every arm trains with the same randomness. Called outside a
    ``with_autoinit`` trial it applies the arm with ``AutoInit()`` and
    records nothing.

    Several arms in one trial: call it once per arm with ``arm=`` on the same
    model, training after each call; every arm then starts from the model's
    declared weights re-drawn from the trial seed, and the record holds each
    arm's epochs side by side (one execution), as keras-tuner's "compare"
    does.

    Example:
        >>> import keras
        >>> x = keras.Input((4,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> prepare_model(model, {"init": "default"}) is model
        True
        >>> prepare_model(model, arm="he") is model
        True

    Args:
        model: a built ``keras.Model``.
        config: the trial's config (only ``init`` is read); None: the arm of
            the running trial ("autoinit" outside one).
        batch_size: the batch size the trial will train with, so AutoInit's
            probe measures at it (None: Keras's default, 32).
        data: a batch of real training inputs, for "lsuv" (required by it;
            ``arms.data_batch(x_train, batch_size)`` gives the first examples).
        arm: train this arm now, one of several in this trial (overrides
            ``config``).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a built keras.Model. Received: {model!r} of type {type(model).__name__}"
        )
    batch_size = KERAS_DEFAULT_BATCH if batch_size is None else batch_size
    if arm is not None:
        arms.arm_of({"init": arm})  # checks the name
    trial = ray_trial.current()
    if trial is None:
        chosen = arm or arms.arm_of(config)
        arms.apply_arm(chosen, model, AutoInit(), arms.trial_seed(config or {}), probe_batch=batch_size,
                       data=data, redraw=arm is not None)
        return model
    if arm is not None:
        return trial.prepare(model, arm, batch_size, data=data, several=True)
    return trial.prepare(model, trial.arm if config is None else arms.arm_of(config), batch_size, data=data)


def current_record():
    """The record of the trial running in this process (a dict), or None outside a trial."""
    trial = ray_trial.current()
    return None if trial is None else trial.record


def update_record(fields, arm=None):
    """Add ``fields`` to the running trial's record (to ``arm``'s fields of its last execution) and write it.

    For what a trainable measures beside the epochs (a test score, a second
    run); JSON-safe values only. Returns False outside a trial (nothing recorded).

    Example:
        >>> update_record({"test_accuracy": 0.9}, arm="he")  # outside a trial
        False
    """
    trial = ray_trial.current()
    if trial is None:
        return False
    if arm is None:
        trial.record.update(fields)
    else:
        executions = trial.record.get("executions") or []
        if not executions or arm not in executions[-1]["arms"]:
            raise ValueError(f"The trial has no arm {arm!r} yet: call prepare_model(..., arm={arm!r}) first.")
        executions[-1]["arms"][arm].update(fields)
    trial.write()
    return True


def initial_epoch():
    """Epochs the running trial's model has already trained: its restored checkpoint's, else 0.

    Pass it to ``model.fit(..., initial_epoch=initial_epoch())`` after
    ``prepare_model`` so a restored trial trains only its remaining epochs.

    Example:
        >>> initial_epoch()  # outside a trial
        0
    """
    trial = ray_trial.current()
    if trial is None or trial.execution is None:
        return 0
    return trial.epochs_completed()


class _Options:
    def __init__(self, seed, metric, mode, threads, checkpoint=False):
        self.seed = seed
        self.metric = metric
        self.mode = mode
        self.threads = threads
        self.checkpoint = checkpoint


class _PortableAutoInit:
    """An ``AutoInit`` made fit for the object store.

    The per-process estimate cache (an ``EstimateCache`` holding a lock) does
    not travel: each worker uses its own process-wide one, or the shared cache.
    Leftovers of earlier runs (the last model, its estimates) are dropped.
    Subclasses travel as themselves.
    """

    def __init__(self, autoinit):
        shipped = copy.copy(autoinit)
        shipped.model = None
        shipped.mean_var_estimates = {}
        shipped.unsupported_layers = []
        if isinstance(shipped.cache, EstimateCache):
            shipped.cache = None
        self.autoinit = shipped

    def restore(self):
        autoinit = copy.copy(self.autoinit)
        if autoinit.cache is None:
            autoinit.cache = GLOBAL_CACHE
        return autoinit


def _run_trial(trainable, config, portable, shared_cache, options, parameters):
    from ray import tune

    context = tune.get_context()
    writer = RecordWriter(context)
    finished = _finished_record(writer.read(), context, config, options)
    if finished is not None:
        # Tune saves its experiment state every 10 s or so, so a driver killed (SIGKILL, power
        # loss) after this trial finished but before the next save restores it as unfinished and
        # starts it again. Its record, written by the trial itself, says it finished: report its
        # epochs again instead of training it a second time (which would replace its results).
        _report_finished(finished)
        return None
    thread_info = None
    if options.threads:
        thread_info = set_tensorflow_threads(_trial_cpus(context))
    autoinit = portable.restore()
    if shared_cache is not None:
        autoinit.cache = shared_cache
    keras.backend.clear_session()
    restore, folder = _restored_checkpoint()
    try:
        trial = ray_trial.Trial(context, config, autoinit, options, thread_info, writer, restore=restore)
        keras.utils.set_random_seed(trial.seed)
        ray_trial.set_current(trial)
        try:
            result = trainable(config, **parameters)
        except SystemExit as error:
            # SystemExit(0) from tune.report is how Tune ends a trial it stops (an ASHA cut) or
            # pauses (HyperBand, PBT): the worker cannot tell which, so the record stays "running";
            # progress_callback() closes the stopped ones, a paused one resumes from its checkpoint.
            if error.code not in (0, None):
                trial.fail(error)
            raise
        except BaseException as error:
            trial.fail(error)
            raise
        finally:
            ray_trial.set_current(None)
        trial.finish()
        return result
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _restored_checkpoint():
    """((local folder, Tune's path), temporary folder to delete) of the trial's checkpoint, or (None, None)."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None, None
    folder = checkpoint.to_directory(tempfile.mkdtemp(prefix="autoinit_nas_restore_"))
    return (folder, str(checkpoint.path)), folder


def _finished_record(record, context, config, options):
    """``record`` if it is this very trial's, finished (completed or diverged) in an earlier run; else None."""
    if not isinstance(record, dict) or record.get("status") not in ("completed", "diverged"):
        return None
    same = (
        record.get("engine") == ray_trial.ENGINE
        and record.get("trial_id") == call(context.get_trial_id)
        and record.get("seed") == arms.trial_seed(config, options.seed)
        and record.get("hyperparameters") == json_safe(dict(config or {}))
    )
    return record if same else None


def _report_finished(record):
    """Report to Tune, epoch by epoch, what a trial that finished in an earlier run reported then.

    The epochs come from the record's history, as ``RayReportCallback`` sent
    them (non-finite values, kept as null, go back as NaN); a record without
    history (a trainable that reported by itself) reports nothing.
    """
    from ray import tune

    arm = record.get("init")
    executions = record.get("executions") or []
    arms = (executions[-1].get("arms") or {}) if executions else {}
    fields = arms.get(arm) or {}
    history = fields.get("history") or {}
    epochs = max((len(series) for series in history.values()), default=0)
    for epoch in range(epochs):
        metrics = {
            name: float("nan") if epoch >= len(series) or series[epoch] is None else series[epoch]
            for name, series in history.items()
        }
        last = epoch == epochs - 1
        metrics.update(epoch=epoch + 1, epochs_completed=epoch + 1, diverged=bool(last and fields.get("diverged")), init=arm)
        if last and fields.get("divergence"):
            metrics["divergence"] = fields["divergence"]
        tune.report(metrics)


def _trial_cpus(context):
    try:
        resources = context.get_trial_resources().required_resources
        return float(resources.get("CPU", 1.0)) or 1.0
    except Exception:  # noqa: BLE001 - no resources known: one CPU
        return 1.0
