"""Init arms and the trial seed: what a trial does to its model before training.

An arm is how a candidate's weights start: one of ``autoinit_nas.init_methods``'
methods ("autoinit", "default" (Keras's own initializers, the control arm),
"he", "lecun", "lsuv", "autoinit-scalar"). ``init_methods.initialize`` is the one
place that applies an arm; every engine calls it through ``apply_arm``, which
only adds what the trial record keeps (seconds, AutoInit's predictions), and
seeds trials with ``trial_seed``, so an arm added to ``init_methods.METHODS``
is an arm of every engine.
"""

import copy
import hashlib
import json

from autoinit_nas.core.architecture import output_layer_name
from autoinit_nas.core.autoinit import AutoInit
from autoinit_nas.init_methods import AUTOINIT_METHODS, DATA_METHODS, DEFAULT_BASELINE, METHODS, initialize
from autoinit_nas.trials.records import is_bookkeeping, json_safe

# The registry's order: "autoinit" and "default" first, the two arms of "compare" and of earlier releases.
ARMS = tuple(METHODS)
# What a trial may train: one arm, or "autoinit" and "default" from the same seed ("compare").
INIT_MODES = ARMS + ("compare",)
# Arms that measure the model on a batch of real training inputs.
DATA_ARMS = DATA_METHODS
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
    made Python) without the arm (``init``) and the engines' bookkeeping
    (``records.is_bookkeeping``), so both arms of a candidate share it, a continued Hyperband
    trial could recompute it, and every process on every node gets the same.

    Example:
        >>> trial_seed({"units": 32, "init": "autoinit"}) == trial_seed({"units": 32, "init": "default"})
        True
    """
    kept = {
        str(key): value
        for key, value in dict(values or {}).items()
        if key != "init" and not is_bookkeeping(key)
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


def apply_arm(arm, model, autoinit, seed, probe_batch=None, data=None, redraw=False):
    """Start ``model``'s weights as ``arm`` says; returns (the arm's record fields, the AutoInit used or None).

    Runs ``init_methods.initialize`` (the one place arms are applied) and
    records what it did. The autoinit arms take a copy of ``autoinit`` (see
    ``initialize_arm`` for their seeds); "lsuv" measures on ``data``, a batch
    of real training inputs. ``redraw`` first restores the model's declared
    initializers and re-draws every declared weight from ``seed``, for a model
    that trained under another arm before; without it the declared weights
    are the model's build (so "default" changes nothing). ``init_seconds``
    times the arm's own work.

    Example:
        >>> import keras
        >>> x = keras.Input((4,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> apply_arm("default", model, AutoInit(), seed=0)[0]["initialized"]
        False
        >>> apply_arm("he", model, AutoInit(), seed=0)[0]["initialized"]
        True
    """
    if arm not in ARMS:
        raise ValueError(f"`arm` must be one of {ARMS}. Received: arm={arm!r}")
    if arm in DATA_ARMS and data is None:
        raise ValueError(
            f"Arm {arm!r} measures the model on real inputs: the engine must pass `data`, a batch of "
            f"training inputs (e.g. x_train[:batch_size]). Received: data=None"
        )
    if arm in AUTOINIT_METHODS:
        return initialize_arm(autoinit, model, seed, probe_batch=probe_batch, method=arm, redraw=redraw)
    _, details = initialize(model, arm, data=data, seed=seed, redraw=redraw, return_details=True)
    fields = uninitialized_arm()
    if arm != DEFAULT_BASELINE:  # "initialized": the arm replaced weights the model declared
        fields.update(initialized=True, init_seconds=details["seconds"])
    return fields, None


def data_batch(x, size):
    """The first ``size`` examples of ``x`` (an array, or a list/tuple/dict of arrays), for "lsuv".

    Example:
        >>> import numpy as np
        >>> data_batch(np.zeros((100, 3)), 32).shape
        (32, 3)
    """
    if isinstance(x, dict):
        return {key: value[:size] for key, value in x.items()}
    if isinstance(x, (list, tuple)):
        return [value[:size] for value in x]
    return x[:size]


def initialize_arm(autoinit, model, seed, probe_batch=None, method="autoinit", redraw=False):
    """Initialize ``model`` with a copy of ``autoinit`` seeded for the trial; returns (arm fields, the copy).

    The copy draws the weights with ``seed`` unless ``autoinit``'s
    ``weight_init_config`` has a seed of its own; its Monte Carlo estimates
    then use ``sampling_seed`` (0 unless configured), so every trial gets the
    same estimate for the same layer and estimate caches can share it.
    ``probe_batch`` is the trial's training batch size (None: AutoInit's own);
    ``method`` an autoinit arm ("autoinit-scalar" forces scalar propagation).
    Applied by ``init_methods.initialize``.

    Example:
        >>> import keras
        >>> x = keras.Input((4,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> fields, _ = initialize_arm(AutoInit(), model, seed=3, probe_batch=8)
        >>> fields["initialized"], fields["autoinit_seed"]
        (True, 3)
    """
    template = copy.copy(autoinit)
    config = dict(autoinit.weight_init_config)
    if config.get("seed") is None:
        config["seed"] = seed
        if config.get("sampling_seed") is None:
            config["sampling_seed"] = 0
    template.weight_init_config = config
    _, details = initialize(model, method, seed=config["seed"], autoinit=template, probe_batch=probe_batch,
                            redraw=redraw, return_details=True)
    initializer, estimates = details["autoinit"], details["estimates"]
    mean, var = output_estimate(model, estimates)
    fields = uninitialized_arm()
    fields.update(
        initialized=True,
        init_seconds=details["seconds"],
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
