"""Init arms and the trial seed: what a trial does to its model before training.

An arm is how a candidate's weights start: "autoinit" (AutoInit with the
trial's seed) or "default" (Keras's own initializers, the control arm). Every
engine applies arms through ``apply_arm`` and seeds trials with ``trial_seed``,
so adding an arm is a change here only.
"""

import copy
import hashlib
import json
import time

from autoinit_nas.core.architecture import output_layer_name
from autoinit_nas.core.autoinit import AutoInit
from autoinit_nas.trials.records import json_safe

ARMS = ("autoinit", "default")
# What a trial may train: one arm, or both from the same seed ("compare").
INIT_MODES = ARMS + ("compare",)
# The fields of an arm that AutoInit's initialization fills in (None when it did not run).
PREDICTION_FIELDS = (
    "autoinit_seed",
    "predicted_output_mean",
    "predicted_output_variance",
    "layers_without_estimator",
    "unsupported_layers",
    "estimates",
)


def trial_seed(values, seed=0):
    """The seed of a trial with hyperparameter ``values`` (an int in [0, 2**31 - 1)).

    A sha256 of ``seed`` and ``values`` (JSON with sorted keys, NumPy scalars
    made Python) without the arm (``init``) and keras-tuner's ``tuner/*``
    bookkeeping, so both arms of a candidate share it, a continued Hyperband
    trial could recompute it, and every process on every node gets the same.

    Example:
        >>> trial_seed({"units": 32, "init": "autoinit"}) == trial_seed({"units": 32, "init": "default"})
        True
    """
    kept = {
        str(key): value
        for key, value in dict(values or {}).items()
        if key != "init" and not str(key).startswith("tuner/")
    }
    text = json.dumps([seed, json_safe(kept)], sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % (2**31 - 1)


def arm_of(config):
    """The arm a trial config names (``config["init"]``, "autoinit" when absent).

    Example:
        >>> arm_of({"units": 8}), arm_of({"init": "default"})
        ('autoinit', 'default')
    """
    if config is None:
        config = {}
    if not hasattr(config, "get"):
        raise TypeError(f"`config` must be the trial's config dict. Received: {config!r}")
    arm = config.get("init", "autoinit")
    if arm not in ARMS:
        raise ValueError(
            f"`config['init']` must be one of {ARMS} (or absent, meaning 'autoinit'). Received: init={arm!r}"
        )
    return arm


def checked_options(autoinit, seed):
    """The engines' shared argument checks: (``autoinit`` or a fresh ``AutoInit()``, ``seed``).

    Example:
        >>> type(checked_options(None, 0)[0]).__name__
        'AutoInit'
    """
    if autoinit is None:
        autoinit = AutoInit()
    elif not isinstance(autoinit, AutoInit):
        raise TypeError(
            "`autoinit` must be an autoinit_nas.AutoInit instance or None. "
            f"Received: {autoinit!r} of type {type(autoinit).__name__}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int. Received: seed={seed!r}")
    return autoinit, seed


def uninitialized_arm(training=False):
    """The fields of an arm AutoInit did not initialize (the default arm, reloaded weights).

    Example:
        >>> uninitialized_arm()["initialized"], uninitialized_arm(training=True)["epochs"]
        (False, 0)

    Args:
        training: also include the training fields as they are before any epoch.
    """
    fields = {"initialized": False, "init_seconds": 0.0}
    fields.update({key: None for key in PREDICTION_FIELDS})
    if training:
        fields.update(train_seconds=0.0, diverged=False, divergence=None, epochs=0, metrics={},
                      final_metrics={}, history={})
    return fields


def apply_arm(arm, model, autoinit, seed, probe_batch=None):
    """Start ``model``'s weights as ``arm`` says; returns (the arm's record fields, the initializer used).

    "autoinit" initializes in place (see ``initialize_arm``); "default" leaves
    Keras's initializers and returns (``uninitialized_arm()``, None).

    Example:
        >>> import keras
        >>> x = keras.Input((4,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> apply_arm("default", model, AutoInit(), seed=0)[0]["initialized"]
        False
    """
    if arm == "default":
        return uninitialized_arm(), None
    if arm == "autoinit":
        return initialize_arm(autoinit, model, seed, probe_batch=probe_batch)
    raise ValueError(f"`arm` must be one of {ARMS}. Received: arm={arm!r}")


def initialize_arm(autoinit, model, seed, probe_batch=None):
    """Initialize ``model`` with a copy of ``autoinit`` seeded for the trial; returns (arm fields, the copy).

    The copy draws the weights with ``seed`` unless ``autoinit``'s
    ``weight_init_config`` has a seed of its own; its Monte Carlo estimates
    then use ``sampling_seed`` (0 unless configured), so every trial gets the
    same estimate for the same layer and estimate caches can share it.
    ``probe_batch`` is the trial's training batch size (None: AutoInit's own).

    Example:
        >>> import keras
        >>> x = keras.Input((4,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> fields, _ = initialize_arm(AutoInit(), model, seed=3, probe_batch=8)
        >>> fields["initialized"], fields["autoinit_seed"]
        (True, 3)
    """
    initializer = copy.copy(autoinit)
    config = dict(autoinit.weight_init_config)
    if config.get("seed") is None:
        config["seed"] = seed
        if config.get("sampling_seed") is None:
            config["sampling_seed"] = 0
    initializer.weight_init_config = config
    start = time.perf_counter()
    model, estimates = initializer.initialize_model(model, return_estimates=True, probe_batch=probe_batch)
    seconds = time.perf_counter() - start
    mean, var = output_estimate(model, estimates)
    fields = uninitialized_arm()
    fields.update(
        initialized=True,
        init_seconds=seconds,
        autoinit_seed=config["seed"],
        predicted_output_mean=mean,
        predicted_output_variance=var,
        layers_without_estimator=len(initializer.unsupported_layers),
        unsupported_layers=list(initializer.unsupported_layers),
        estimates={name: [float(m), float(v)] for name, (m, v) in estimates.items()},
    )
    return fields, initializer


def output_estimate(model, estimates):
    """AutoInit's (mean, var) for the layer producing ``model``'s first output; (None, None) without estimates.

    Falls back to the last estimate when that layer has none under its name.

    Example:
        >>> output_estimate(None, {})
        (None, None)
    """
    name = output_layer_name(model)
    if name in estimates:
        mean, var = estimates[name]
    elif estimates:
        mean, var = list(estimates.values())[-1]
    else:
        return None, None
    return float(mean), float(var)
