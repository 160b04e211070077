"""Ray Tune integration: AutoInit inside every trial, on one machine or many.

Wrap a function trainable with ``with_autoinit``; inside it, pass the built
model through ``prepare_model`` and train with a ``RayReportCallback``:

```python
import keras_tuner
from ray import tune
from sklearn.datasets import load_digits

import search_spaces
from autoinit_nas.integrations.ray_tune import (
    RayReportCallback, build_from_config, paired_search, param_space_from_space,
    prepare_model, with_autoinit,
)

digits = load_digits()
x, y = (digits.data / 16.0).astype("float32"), digits.target
build = search_spaces.get("mlp")((64,), 10)

def train(config, build, data):
    (x, y) = data
    model = prepare_model(build_from_config(build, config), config)  # the arm config["init"] names
    model.fit(x[:1000], y[:1000], validation_data=(x[1000:], y[1000:]), epochs=2, verbose=0,
              callbacks=[RayReportCallback()])                        # tune.report per epoch

hp = keras_tuner.HyperParameters()
hp.Int("depth", 1, 8)                                                 # narrow the space (optional)
tuner = tune.Tuner(
    with_autoinit(train, build=build, data=(x, y), metric="val_accuracy", shared_cache=True),
    param_space=param_space_from_space(build, hp, init=("autoinit", "default")),
    tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", num_samples=4,
                                search_alg=paired_search(), reuse_actors=True),
    run_config=tune.RunConfig(storage_path="/tmp/ray_results", name="digits"),
)
results = tuner.fit()
```

``with_autoinit(trainable, autoinit=None, **parameters)`` returns a Tune
function trainable. The ``AutoInit`` (its configuration and estimator
registry, custom estimators included) and every extra keyword argument travel
to the workers through Ray's object store (``tune.with_parameters``); a custom
estimator or layer class defined in the driver script (``__main__``) is
pickled by value by Ray's cloudpickle, so it works on nodes that never saw the
script. Classes in an importable module are pickled by reference: install that
module on every node (or ``ray.cloudpickle.register_pickle_by_value(module)``).

Arms: ``config["init"]`` is "autoinit" (default when absent) or "default"
(Keras's own initializers: the control arm). ``param_space_from_space(...,
init=("autoinit", "default"))`` adds a ``tune.grid_search`` over both and
``paired_search()`` (a ``BasicVariantGenerator(constant_grid_search=True)``)
samples every other hyperparameter once per pair, so each architecture is
trained once per arm.

Seeds: each trial's seed is a sha256 of ``with_autoinit``'s ``seed`` and the
trial's config without ``init``: the two arms of a pair share it (same Keras
default draws before AutoInit, same data order and dropout masks), and it is
the same on every node. Python, NumPy and the backend are seeded with it before
the trainable runs and again when ``prepare_model`` returns; AutoInit draws
the weights with it unless its ``weight_init_config`` has a ``seed``; its
Monte Carlo estimates then use ``sampling_seed`` (0 unless configured), not
the trial seed, so every trial gets the same estimate for the same layer and
the cache can share it. The Keras session is cleared at the start of each
trial, so layer names (the keys of the recorded estimates) do not depend on
which worker process ran the trial.

Records: the same per-trial record as the keras-tuner wrapper
(``autoinit_nas.integrations.records``), with ``engine: "ray"``, written to
``<storage_path>/<experiment>/<trial dir>/autoinit_record.json`` (next to
Tune's own ``result.json``) when the trial starts, after ``prepare_model``,
after each ``fit``, and when the trial ends or fails: arm, AutoInit seconds,
predicted output mean and variance, layers without estimator, architecture id,
parameter count, depth, seed, train seconds, divergence, per-epoch, best and
final metrics, and the AutoInit arm's estimate-cache counts for this trial
(``cache_hits``, ``cache_misses``; with a shared cache also
``cache_shared_hits``, answered by the actor, and ``cache_shared_misses``,
sampled estimates this trial computed). ``worker`` holds the host, pid, Ray
node id, trial name and TensorFlow thread settings.
``records.read_records(results.experiment_path)`` reads them back without
Ray. With a cloud ``storage_path`` the record is uploaded through the
experiment's storage filesystem.

Divergence: ``RayReportCallback`` stops training at the first non-finite
``loss`` or ``val_loss``; the trial then ends normally (``TERMINATED``, so no
retry reruns a deterministic divergence) with record ``status: "diverged"``,
the reason, and ``diverged: True`` in its last report. Errors: a trainable that
raises is recorded (``status: "error"``, reason) and the exception propagates to
Tune, which marks the trial ``ERROR`` and carries on with the others (retries
per ``tune.FailureConfig(max_failures=...)``). ``Tuner.restore(path, trainable=
with_autoinit(...), resume_errored=True)`` reruns errored and unfinished trials
only. Tune saves which trials finished only every 10 s or so; a trial it
restores as unfinished whose record says it completed or diverged (the driver
died just after it ended) is not trained again: its epochs are reported again
from the record.

Threads: before anything initializes TensorFlow in the worker, its intra- and
inter-op thread pools are sized to the trial's CPU allocation
(``set_tensorflow_threads``). TensorFlow fixes them once per process, so a
reused actor (``TuneConfig(reuse_actors=True)``) keeps the first trial's
setting; the record's ``worker.threads`` says what applied.

Shared estimates: ``shared_cache=True`` (or a ``SharedEstimateCache``) puts
AutoInit's sampled estimates in a Ray named actor that every trial on every
node asks first (see ``autoinit_nas.integrations.estimate_cache``).
"""

import copy
import hashlib
import json
import math
import time
import warnings

import keras

from autoinit_nas import AutoInit
from autoinit_nas.core.cache import GLOBAL_CACHE, EstimateCache
from autoinit_nas.integrations import records
from autoinit_nas.integrations.estimate_cache import SharedEstimateCache

ENGINE = "ray"
ARMS = ("autoinit", "default")
MODES = ("max", "min")

# The trial running in this worker process (function trainables run one at a time per actor).
_CURRENT = None


# Wrapping a trainable.


def with_autoinit(
    trainable,
    autoinit=None,
    *,
    seed=0,
    shared_cache=None,
    metric=None,
    mode="max",
    threads=True,
    **parameters,
):
    """A Ray Tune function trainable that records (and applies) AutoInit per trial.

    Example:
        >>> from autoinit_nas.integrations.ray_tune import with_autoinit, prepare_model
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
    autoinit, seed = records.checked_options(autoinit, seed)
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
    options = _Options(seed=seed, metric=metric, mode=mode, threads=bool(threads))

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


def trial_seed(config, seed=0):
    """The seed of a trial with ``config`` (an int in [0, 2**31 - 1)).

    A sha256 of ``seed`` and the config without its ``init`` entry (JSON with
    sorted keys, NumPy values made Python), so both arms of a pair share it and
    every process computes the same one.

    Example:
        >>> trial_seed({"units": 32, "init": "autoinit"}) == trial_seed({"units": 32, "init": "default"})
        True
    """
    values = {str(key): value for key, value in dict(config or {}).items() if key != "init"}
    text = json.dumps([seed, records.json_safe(values)], sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % (2**31 - 1)


def paired_search(**kwargs):
    """Tune's ``BasicVariantGenerator`` sampling once per grid combination.

    With ``param_space_from_space(..., init=("autoinit", "default"))`` every
    sampled architecture runs once per arm: the random hyperparameters are
    drawn once and kept constant across the ``init`` grid.

    Example:
        >>> type(paired_search()).__name__
        'BasicVariantGenerator'
    """
    from ray.tune.search.basic_variant import BasicVariantGenerator

    kwargs.setdefault("constant_grid_search", True)
    return BasicVariantGenerator(**kwargs)


# Inside a trial.


def prepare_model(model, config=None):
    """Apply the arm ``config["init"]`` names to ``model`` and record it; returns the model.

    "autoinit" (the default) initializes the model in place with the trial's
    AutoInit; "default" leaves Keras's initializers. Either way the model is
    described (architecture id, parameter count, depth) in the trial record and
    Python, NumPy and the backend are re-seeded with the trial seed, so both
    arms train with the same randomness. Called outside a ``with_autoinit``
    trial it applies the arm with ``AutoInit()`` and records nothing.

    Example:
        >>> import keras
        >>> x = keras.Input((4,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> prepare_model(model, {"init": "default"}) is model
        True

    Args:
        model: a built ``keras.Model``.
        config: the trial's config (only ``init`` is read); None: the arm of
            the running trial ("autoinit" outside one).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a built keras.Model. Received: {model!r} of type {type(model).__name__}"
        )
    trial = _CURRENT
    if trial is None:
        if _arm_of(config) == "autoinit":
            AutoInit().initialize_model(model)
        return model
    return trial.prepare(model, trial.arm if config is None else _arm_of(config))


class RayReportCallback(keras.callbacks.Callback):
    """Report each epoch to Ray Tune, record it in the trial record, and stop at divergence.

    Every epoch, the epoch's logs (``loss``, ``val_accuracy``, ...) go to
    ``ray.tune.report`` together with ``epoch`` (1-based), ``init`` (the arm)
    and ``diverged``; the trial record gets the history, train seconds and
    best and final metrics after each ``fit``. At the first non-finite
    ``loss`` or ``val_loss`` (after any batch or epoch) training stops and the
    trial is recorded as diverged.

    Example:
        >>> callback = RayReportCallback()
        >>> callback.divergence is None
        True

    Args:
        report: True reports to Tune, False only records; None (default)
            reports inside a ``with_autoinit`` trial and not elsewhere.
    """

    def __init__(self, report=None):
        super().__init__()
        self.report = report
        self.divergence = None
        self.epoch = 0
        self._started = None

    def on_train_begin(self, logs=None):
        self._started = time.perf_counter()
        trial = _CURRENT
        if trial is not None:
            trial.arm_fields()  # make sure an execution exists

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"epoch {self.epoch}, batch {batch}")

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self._check(logs, f"epoch {epoch}")
        values = {}
        for name, value in logs.items():
            try:
                values[name] = float(value)
            except (TypeError, ValueError):
                continue
        trial = _CURRENT
        arm = None
        if trial is not None:
            trial.add_epoch(values, self.divergence)
            arm = trial.arm
        report = self.report if self.report is not None else trial is not None
        if report:
            from ray import tune

            metrics = dict(values, epoch=epoch + 1, diverged=self.divergence is not None)
            if arm is not None:
                metrics["init"] = arm
            if self.divergence is not None:
                metrics["divergence"] = self.divergence
            tune.report(metrics)

    def on_train_end(self, logs=None):
        trial = _CURRENT
        if trial is not None and self._started is not None:
            trial.end_fit(time.perf_counter() - self._started, self.divergence)
        self._started = None

    def _check(self, logs, where):
        if self.divergence is not None or not logs:
            return
        self.divergence = records.logs_divergence(logs, where)
        if self.divergence is not None:
            self.model.stop_training = True


def current_record():
    """The record of the trial running in this process (a dict), or None outside a trial."""
    return None if _CURRENT is None else _CURRENT.record


# Threads.


def set_tensorflow_threads(cpus):
    """Size TensorFlow's intra- and inter-op thread pools to ``cpus``; never raises.

    Must run before TensorFlow initializes its runtime in this process (the
    first op or device query); afterwards TensorFlow refuses any change, and
    the result says so instead of raising.

    Example:
        >>> info = set_tensorflow_threads(2)
        >>> sorted(info)
        ['applied', 'cpus', 'inter_op', 'intra_op', 'reason']

    Returns:
        {"cpus", "intra_op", "inter_op" (the threads asked for: ceil(cpus),
        at least 1), "applied" (whether TensorFlow now uses them), "reason"
        (why not, else None)}.
    """
    try:
        cpus = float(cpus)
    except (TypeError, ValueError):
        cpus = 1.0
    threads = max(1, int(math.ceil(cpus))) if math.isfinite(cpus) else 1
    info = {"cpus": cpus, "intra_op": threads, "inter_op": threads, "applied": False, "reason": None}
    if keras.backend.backend() != "tensorflow":
        info["reason"] = f"the Keras backend is {keras.backend.backend()}, not tensorflow"
        return info
    import tensorflow as tf

    threading = tf.config.threading
    current = (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads())
    if current == (threads, threads):
        info["applied"] = True
        return info
    try:
        threading.set_intra_op_parallelism_threads(threads)
        threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as error:
        info["reason"] = (
            "TensorFlow was already initialized in this process (intra_op="
            f"{current[0]}, inter_op={current[1]}; 0 means TensorFlow's choice): {error}"
        )
        return info
    info["applied"] = True
    return info


# Search spaces.


def param_space_from_space(build, hyperparameters=None, init=None):
    """A Ray Tune ``param_space`` with the hyperparameters ``build(hp)`` declares.

    Runs ``build`` once on a ``keras_tuner.HyperParameters`` (a copy of
    ``hyperparameters`` when given, so entries declared there first narrow or
    fix the space, as with a keras-tuner tuner's ``hyperparameters``) and maps
    each hyperparameter to a Tune domain:

    - ``Int``: ``tune.randint(min, max + 1)`` (step 1), ``tune.lograndint(min,
      max + 1)`` (log, no step), else ``tune.choice`` over keras-tuner's own
      values (``step`` additive, or multiplicative for log sampling);
    - ``Float``: ``tune.uniform`` / ``tune.loguniform`` (``sampling="log"``),
      reverse-log sampling through ``tune.sample_from``, ``tune.choice`` over the
      stepped values when a ``step`` is given;
    - ``Choice``: ``tune.choice(values)``; ``Boolean``: ``tune.choice([True,
      False])``; ``Fixed``: the value itself.

    Example:
        >>> import search_spaces
        >>> space = param_space_from_space(search_spaces.get("mlp")((8,), 2), init=("autoinit", "default"))
        >>> sorted(space)[:3], type(space["depth"]).__name__
        (['activation', 'depth', 'dropout'], 'Integer')

    Args:
        build: a function (or ``SearchSpace``) ``build(hp) -> keras.Model``
            using only keras-tuner's hp API.
        hyperparameters: optional ``keras_tuner.HyperParameters`` declared
            beforehand (``hp.Fixed``, narrower ranges).
        init: None (no ``init`` entry: every trial is "autoinit"), one arm
            ("autoinit" or "default"), or several (a ``tune.grid_search``
            over them; use ``paired_search()`` to pair them).
    """
    from ray import tune

    hp = _declare(build, hyperparameters)
    space = {}
    for parameter in hp.space:
        if parameter.name in space:
            continue  # conditional duplicates: the first declaration wins
        space[parameter.name] = _to_domain(parameter, tune)
    if init is not None:
        arms = [init] if isinstance(init, str) else list(init)
        for arm in arms:
            if arm not in ARMS:
                raise ValueError(f"`init` must name arms among {ARMS}. Received: init={init!r}")
        if "init" in space:
            raise ValueError("The search space declares a hyperparameter named 'init'; it clashes with the arm.")
        space["init"] = arms[0] if len(arms) == 1 else tune.grid_search(arms)
    return space


def build_from_config(build, config, hyperparameters=None):
    """Build the model ``config`` (a Ray trial's config) describes, with the same ``build(hp)``.

    The config's values are put into a ``keras_tuner.HyperParameters`` (a copy
    of ``hyperparameters`` when given) before ``build`` runs: keras-tuner keeps
    a value already present when the build registers a hyperparameter, so each
    ``hp.Int``/``hp.Choice``/... returns the config's value, and any the config
    lacks takes its default. Entries that name no hyperparameter (``init``, ...)
    are ignored by the build. NumPy scalars are made Python values first.

    Example:
        >>> import search_spaces
        >>> build = search_spaces.get("mlp")((8,), 2)
        >>> model = build_from_config(build, {"depth": 3, "units": 16, "init": "default"})
        >>> sum(type(layer).__name__ == "Dense" for layer in model.layers)
        4
    """
    import keras_tuner

    hp = keras_tuner.HyperParameters() if hyperparameters is None else hyperparameters.copy()
    hp.values.update({str(key): _plain(value) for key, value in dict(config or {}).items()})
    return build(hp)


def _declare(build, hyperparameters):
    import keras_tuner

    if not callable(build):
        raise TypeError(f"`build` must be a function build(hp). Received: {build!r}")
    if hyperparameters is not None and not isinstance(hyperparameters, keras_tuner.HyperParameters):
        raise TypeError(
            "`hyperparameters` must be a keras_tuner.HyperParameters or None. "
            f"Received: {type(hyperparameters).__name__}"
        )
    hp = keras_tuner.HyperParameters() if hyperparameters is None else hyperparameters.copy()
    build(hp)
    return hp


def _to_domain(parameter, tune):
    from keras_tuner.engine import hyperparameters as kt_hp

    name = parameter.name
    if isinstance(parameter, kt_hp.Fixed):
        return parameter.value
    if isinstance(parameter, kt_hp.Boolean):
        return tune.choice([True, False])
    if isinstance(parameter, kt_hp.Choice):
        return tune.choice(list(parameter.values))
    if isinstance(parameter, kt_hp.Int):
        low, high, step, sampling = parameter.min_value, parameter.max_value, parameter.step, parameter.sampling
        if sampling == "linear" and step in (None, 1):
            return tune.randint(low, high + 1)
        if sampling == "log" and step is None:
            return tune.lograndint(low, high + 1)
        if step is None:  # reverse_log without step
            return tune.sample_from(_ReverseLog(low, high, integer=True))
        return tune.choice([int(value) for value in parameter.values])
    if isinstance(parameter, kt_hp.Float):
        low, high, step, sampling = parameter.min_value, parameter.max_value, parameter.step, parameter.sampling
        if step is not None:
            return tune.choice([float(value) for value in parameter.values])
        if sampling == "linear":
            return tune.uniform(low, high)
        if sampling == "log":
            return tune.loguniform(low, high)
        return tune.sample_from(_ReverseLog(low, high, integer=False))
    raise TypeError(
        f"Hyperparameter '{name}' is a {type(parameter).__name__}; param_space_from_space supports "
        "Int, Float, Choice, Boolean and Fixed."
    )


class _ReverseLog:
    """keras-tuner's reverse-log sampling (dense near the maximum) for ``tune.sample_from``."""

    def __init__(self, low, high, integer):
        self.low, self.high, self.integer = low, high, integer

    def __call__(self, spec=None):
        import random

        high = self.high + 1 if self.integer else self.high
        value = high + self.low - self.low * math.pow(high / self.low, 1.0 - random.random())
        return min(int(value), self.high) if self.integer else value


def _plain(value):
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


# The trial machinery (runs in the worker).


class _Options:
    def __init__(self, seed, metric, mode, threads):
        self.seed = seed
        self.metric = metric
        self.mode = mode
        self.threads = threads


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
    global _CURRENT
    from ray import tune

    context = tune.get_context()
    writer = _RecordWriter(context)
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
    trial = _Trial(context, config, autoinit, options, thread_info, writer)
    keras.utils.set_random_seed(trial.seed)
    _CURRENT = trial
    try:
        result = trainable(config, **parameters)
    except BaseException as error:
        trial.fail(error)
        raise
    finally:
        _CURRENT = None
    trial.finish()
    return result


def _finished_record(record, context, config, options):
    """``record`` if it is this very trial's, finished (completed or diverged) in an earlier run; else None."""
    if not isinstance(record, dict) or record.get("status") not in ("completed", "diverged"):
        return None
    same = (
        record.get("engine") == ENGINE
        and record.get("trial_id") == _call(context.get_trial_id)
        and record.get("seed") == trial_seed(config, options.seed)
        and record.get("hyperparameters") == records.json_safe(dict(config or {}))
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
        metrics.update(epoch=epoch + 1, diverged=bool(last and fields.get("diverged")), init=arm)
        if last and fields.get("divergence"):
            metrics["divergence"] = fields["divergence"]
        tune.report(metrics)


def _trial_cpus(context):
    try:
        resources = context.get_trial_resources().required_resources
        return float(resources.get("CPU", 1.0)) or 1.0
    except Exception:  # noqa: BLE001 - no resources known: one CPU
        return 1.0


class _Trial:
    """One trial's AutoInit, seed and record, in the worker that runs it."""

    def __init__(self, context, config, autoinit, options, thread_info, writer=None):
        self.config = dict(config or {})
        self.autoinit = autoinit
        self.options = options
        self.arm = _arm_of(self.config)
        self.seed = trial_seed(self.config, options.seed)
        self.execution = None
        self.writer = writer if writer is not None else _RecordWriter(context)
        self.record = records.new_record(
            ENGINE,
            _call(context.get_trial_id),
            self.arm,
            seed=self.seed,
            hyperparameters=records.json_safe(self.config),
            objective=None if options.metric is None else {"name": options.metric, "direction": options.mode},
        )
        import ray

        self.record["worker"].update(
            node_id=ray.get_runtime_context().get_node_id(),
            trial_name=_call(context.get_trial_name),
            threads=thread_info,
        )
        self.write()

    # Steps.

    def prepare(self, model, arm):
        if arm != self.arm:
            warnings.warn(
                f"prepare_model got init={arm!r} but the trial's config says {self.arm!r}; "
                f"using {arm!r}.",
                stacklevel=3,
            )
            self.arm = arm
        if self.record["architecture_id"] is None:
            self.record.update(records.describe_model(model))
        self._start_execution()
        if arm == "autoinit":
            self.execution["arms"][arm] = self._initialize(model)
        else:
            self.execution["arms"][arm] = records.uninitialized_arm(training=True)
        keras.utils.set_random_seed(self.seed)
        self.write()
        return model

    def arm_fields(self):
        if self.execution is None:
            if self.arm == "autoinit":
                warnings.warn(
                    "Training started before prepare_model(model, config) was called: AutoInit was "
                    "not applied, and the record says so (initialized: false).",
                    stacklevel=4,
                )
            self._start_execution()
            self.execution["arms"][self.arm] = records.uninitialized_arm(training=True)
        return self.execution["arms"][self.arm]

    def add_epoch(self, values, divergence):
        fields = self.arm_fields()
        history = fields.setdefault("history", {})
        epochs = fields.get("epochs") or 0
        for name, value in values.items():
            history.setdefault(name, [None] * epochs).append(value)
        for name, series in history.items():
            if len(series) <= epochs:
                series.append(None)
        fields["epochs"] = epochs + 1
        self._summarize(fields, divergence)
        self.write()

    def end_fit(self, seconds, divergence):
        fields = self.arm_fields()
        fields["train_seconds"] = (fields.get("train_seconds") or 0.0) + seconds
        self._summarize(fields, divergence)
        self.write()

    def finish(self):
        diverged = None
        if self.execution is not None:
            for arm, fields in self.execution["arms"].items():
                if fields.get("divergence"):
                    diverged = f"{arm} arm: {fields['divergence']}"
                    break
        elif self.arm == "autoinit":
            warnings.warn(
                "The trial ended without calling prepare_model(model, config); its record has no "
                "init arm.",
                stacklevel=3,
            )
        self.record["status"] = "diverged" if diverged else "completed"
        self.record["reason"] = diverged
        self.write()

    def fail(self, error):
        self.record["status"] = "error"
        self.record["reason"] = f"{type(error).__name__}: {error}"
        try:
            self.write()
        except Exception as write_error:  # noqa: BLE001 - never hide the trial's own error
            warnings.warn(f"Could not write the failed trial's record: {write_error}", stacklevel=2)

    def write(self):
        self.writer.write(self.record)

    # Internals.

    def _start_execution(self):
        self.execution = {"execution": len(self.record["executions"]), "arms": {}}
        self.record["executions"].append(self.execution)

    def _initialize(self, model):
        # One Monte Carlo draw per estimate (sampling_seed 0), shared by every trial.
        before = _cache_counts(self.autoinit.cache)
        initialized, initializer = records.initialize_arm(self.autoinit, model, self.seed)
        fields = dict(records.uninitialized_arm(training=True), **initialized)
        after = _cache_counts(initializer.cache)
        for name in _CACHE_COUNTS:
            if name in after:
                fields[f"cache_{name}"] = after[name] - before.get(name, 0)
        return fields

    def _summarize(self, fields, divergence):
        history = fields.get("history") or {}
        epochs = fields.get("epochs") or 0
        best = _best_epoch(history, self.options.metric, self.options.mode, epochs)
        fields["metrics"] = records.epoch_metrics(history, best)
        fields["final_metrics"] = records.epoch_metrics(history, epochs - 1)
        reason = divergence or fields.get("divergence") or records.non_finite_loss(history)
        fields["diverged"] = reason is not None
        fields["divergence"] = reason


class _RecordWriter:
    """Writes a trial's record into its directory on the experiment's storage.

    A storage path on a local or shared (NFS) filesystem is written directly
    and atomically; for any other storage filesystem (S3, GCS, ...) the record
    is written in the trial's local working directory and uploaded from there.
    If the storage cannot be found (Ray's internal ``StorageContext`` moved),
    ``tune.get_context().get_trial_dir()`` is used: on the driver's node that
    is Tune's staging copy, synced to storage with the trial's other files.
    """

    def __init__(self, context):
        self.local_dir = None
        self.remote = None
        storage = _storage()
        if storage is not None:
            import pyarrow.fs

            if isinstance(storage.storage_filesystem, pyarrow.fs.LocalFileSystem):
                self.local_dir = storage.trial_fs_path
            else:
                self.local_dir = storage.trial_working_directory
                self.remote = (storage.storage_filesystem, storage.trial_fs_path)
        if self.local_dir is None:
            self.local_dir = _call(context.get_trial_dir)

    def read(self):
        """The record already in the trial's directory (from an earlier run of the trial), or None."""
        try:
            if self.remote is not None:
                filesystem, directory = self.remote
                with filesystem.open_input_stream(f"{directory}/{records.RECORD_FILENAME}") as source:
                    record = json.loads(source.read())
                return record if isinstance(record, dict) and record.get("format") == records.FORMAT else None
            return records.read_record(self.local_dir) if self.local_dir else None
        except (OSError, ValueError):  # absent, unreadable or not a record: start afresh
            return None

    def write(self, record):
        if not self.local_dir:
            return None
        path = records.write_record(self.local_dir, record)
        if self.remote is not None:
            filesystem, directory = self.remote
            filesystem.create_dir(directory, recursive=True)
            with open(path, "rb") as source, filesystem.open_output_stream(
                f"{directory}/{records.RECORD_FILENAME}"
            ) as target:
                target.write(source.read())
        return path


def _storage():
    """The trial's Ray storage context (``StorageContext``), or None."""
    try:
        from ray.train._internal import session

        current = session.get_session()
        return None if current is None else current.storage
    except Exception:  # noqa: BLE001 - internal API: fall back to get_trial_dir()
        return None


def _call(function):
    try:
        return function()
    except Exception:  # noqa: BLE001 - outside a Tune session
        return None


def _arm_of(config):
    if config is None:
        config = {}
    if not hasattr(config, "get"):
        raise TypeError(f"`config` must be the trial's config dict. Received: {config!r}")
    arm = config.get("init", "autoinit")
    if arm not in ARMS:
        raise ValueError(
            f"`config['init']` must be one of {ARMS} (or absent, meaning 'autoinit'). "
            f"Received: init={arm!r}"
        )
    return arm


def _cache_counts(cache):
    if isinstance(cache, SharedEstimateCache):
        return cache.counts()
    counts = {}
    for name in _CACHE_COUNTS:
        value = getattr(cache, name, None)
        if isinstance(value, int):
            counts[name] = value
    return counts


_CACHE_COUNTS = ("hits", "misses", "shared_hits", "shared_misses")


def _best_epoch(history, metric, mode, epochs):
    """The epoch with the best ``metric`` ("max" or "min" ``mode``); the last one without it."""
    series = list((history.get(metric) if metric is not None else None) or [])[:epochs]
    if not series:
        return epochs - 1
    series += [None] * (epochs - len(series))
    return records.best_epoch(series, (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b))
