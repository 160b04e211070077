"""Per-trial records: what AutoInit did to a candidate, and how it trained.

Every engine adapter (keras-tuner, Ray Tune) writes one JSON file per trial
into the trial's own directory, so the results can be read back from disk
without the process that ran the search:

- keras-tuner: ``<directory>/<project_name>/trial_<trial_id>/autoinit_record.json``
- any engine: ``<trial directory>/autoinit_record.json`` (``RECORD_FILENAME``)

Example:
    >>> import keras
    >>> from autoinit_nas.integrations import records
    >>> x = keras.Input((4,))
    >>> model = keras.Model(x, keras.layers.Dense(2)(keras.layers.Dense(8)(x)))
    >>> records.depth(model), records.parameter_count(model)
    (2, 58)
    >>> len(records.architecture_id(model))
    64

Record format (version 1). Floats that are not finite are written as
``null``; every other value is plain JSON:

```
{
  "format": "autoinit_nas.trial_record",  "version": 1,
  "engine": "keras_tuner",            # who wrote it
  "trial_id": "07",
  "status": "running" | "completed" | "diverged" | "error",
  "reason": null | "why it diverged or failed",
  "init": "autoinit" | "default" | "compare",   # the mode of the trial
  "seed": 1234,                       # seeds Python, NumPy, the backend and AutoInit
  "hyperparameters": {"depth": 4, ...},         # hp.values, tuner/* keys included
  "architecture_id": "<sha256 hex>",  # see architecture_id()
  "parameter_count": 12345,
  "depth": 9,                         # see depth()
  "objective": {"name": "val_accuracy", "direction": "max"} | null,
  "reloaded_from": null | "03",       # trial whose weights were loaded (Hyperband)
  "worker": {"tuner_id": "tuner0", "host": "...", "pid": 4321},
  "updated_at": "2026-01-01T00:00:00+00:00",
  "executions": [                     # one per execution of the trial
    {"execution": 0,
     "arms": {                        # "autoinit" and/or "default"
       "autoinit": {
         "initialized": true,         # AutoInit ran on these weights in this trial
         "init_seconds": 0.04,        # 0.0 for the default arm and reloaded weights
         "autoinit_seed": 1234 | null,
         "predicted_output_mean": 0.1 | null,
         "predicted_output_variance": 0.0095 | null,   # of the model's first output
         "layers_without_estimator": 0 | null,
         "unsupported_layers": [] | null,
         "estimates": {"dense": [0.0, 1.0], ...} | null,
         "train_seconds": 1.7,
         "diverged": false,           # a non-finite loss or val_loss was seen
         "divergence": null | "non-finite loss (nan) at epoch 0, batch 3",
         "epochs": 1,                 # epochs run
         "metrics": {"val_accuracy": 0.81, ...},        # at the arm's best epoch
         "final_metrics": {"val_accuracy": 0.81, ...},  # at its last epoch
         "history": {"val_accuracy": [0.81], ...}
       }}}
  ]
}
```

``rows(record)`` flattens a record into one dict per (execution, arm), the
shape result tables use. The engine adapters build arms with the same
helpers (``uninitialized_arm``, ``initialize_arm``, ``epoch_metrics``,
``best_epoch``, ``non_finite_loss``, ``logs_divergence``), so both engines
fill the fields the same way.
"""

import copy
import datetime
import hashlib
import json
import math
import os
import socket
import tempfile
import time

FORMAT = "autoinit_nas.trial_record"
VERSION = 1
RECORD_FILENAME = "autoinit_record.json"
STATUSES = ("running", "completed", "diverged", "error")


# Model descriptions.


def describe_model(model):
    """Architecture id, parameter count and depth of a built Keras model.

    Example:
        >>> import keras
        >>> x = keras.Input((3,))
        >>> sorted(describe_model(keras.Model(x, keras.layers.Dense(1)(x))))
        ['architecture_id', 'depth', 'parameter_count']
    """
    return {
        "architecture_id": architecture_id(model),
        "parameter_count": parameter_count(model),
        "depth": depth(model),
    }


def parameter_count(model):
    """Number of scalars in all of ``model``'s weights (trainable or not)."""
    return int(model.count_params())


def architecture_id(model_or_config):
    """Stable hash of an architecture, blind to names, initializers and seeds.

    The sha256 (hex) of the canonical JSON (sorted keys, no spaces) of
    ``canonical_architecture(model.get_config())``. Two builds of the same
    architecture get the same id whatever their layer names, initializers
    (so AutoInit and default initialization share it), random seeds or
    dtype policies; any change of topology, width, activation, kernel size,
    dropout rate, input shape, ... changes it.

    Args:
        model_or_config: a Keras model, or a model config dict.
    """
    config = model_or_config
    if hasattr(model_or_config, "get_config"):
        config = model_or_config.get_config()
    if not isinstance(config, dict):
        raise TypeError(
            "`model_or_config` must be a Keras model or a model config dict. "
            f"Received: {type(model_or_config).__name__}"
        )
    canonical = json.dumps(
        canonical_architecture(config), sort_keys=True, separators=(",", ":"), default=_json_default
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def canonical_architecture(config):
    """A model config with everything that is not architecture removed.

    Drops every ``name`` key, every ``*_initializer`` and ``seed`` key, and
    dtype policies (``dtype`` keys holding a dict, ``dtype_policy``). Layer
    references (the ``[layer_name, node_index, tensor_index]`` triples of
    ``keras_history``, ``input_layers`` and ``output_layers``) are rewritten
    to the referenced layer's position (``"#3"``) in its model's ``layers``
    list, so topology is kept while names go. Nested models get their own
    positions.
    """
    return _strip(config, {})


def _strip(value, scope):
    if isinstance(value, dict):
        layers = value.get("layers")
        if isinstance(layers, list) and all(isinstance(layer, dict) for layer in layers):
            scope = {}
            for index, layer in enumerate(layers):
                name = layer.get("name")
                if name is None and isinstance(layer.get("config"), dict):
                    name = layer["config"].get("name")
                if isinstance(name, str):
                    scope.setdefault(name, f"#{index}")
        stripped = {}
        for key, item in value.items():
            if key in ("name", "seed", "dtype_policy") or key.endswith("_initializer"):
                continue
            if key == "dtype" and isinstance(item, dict):
                continue
            stripped[key] = _strip(item, scope)
        return stripped
    if isinstance(value, (list, tuple)):
        if (
            len(value) == 3
            and isinstance(value[0], str)
            and value[0] in scope
            and all(isinstance(item, int) for item in value[1:])
        ):
            return [scope[value[0]], value[1], value[2]]
        return [_strip(item, scope) for item in value]
    return value


def depth(model):
    """Kernel-bearing layers on the longest path from an input to an output.

    A kernel-bearing layer is one that owns a weight of rank 2 or more: a
    Dense or convolution kernel, an embedding table, attention projections,
    recurrent kernels. Biases, normalization scales and other rank-1 weights
    do not count, and neither do activations, pooling, merges or dropout. A
    ``MultiHeadAttention`` or recurrent layer counts once. A nested model
    counts as its own depth, a layer called twice on a path counts twice.
    Models without a symbolic graph (subclassed) fall back to the number of
    kernel-bearing layers they contain.

    Example:
        >>> import keras
        >>> x = keras.Input((4,))
        >>> a = keras.layers.Dense(4)(x)
        >>> b = keras.layers.Dense(4)(keras.layers.Dense(4)(x))
        >>> depth(keras.Model(x, keras.layers.Add()([a, b])))
        2
    """
    return _depth(model, {})


def _depth(model, model_memo):
    key = id(model)
    if key in model_memo:
        return model_memo[key]
    graph = _graph_io(model)
    if graph is None:
        result = sum(1 for layer in _all_layers(model) if _has_kernel(layer))
        model_memo[key] = result
        return result
    inputs, outputs = graph
    input_ids = {id(tensor) for tensor in inputs}
    node_depth = {}
    tensor_depth = {}

    def history_node(tensor):
        history = getattr(tensor, "_keras_history", None)
        if history is None or getattr(history, "operation", None) is None:
            return None
        node = history.operation._inbound_nodes[history.node_index]
        return None if node.is_input else node

    stack = [(tensor, False) for tensor in outputs]
    while stack:
        tensor, expanded = stack.pop()
        if id(tensor) in tensor_depth:
            continue
        node = None if id(tensor) in input_ids else history_node(tensor)
        if node is None:
            tensor_depth[id(tensor)] = 0
            continue
        if id(node) in node_depth:
            tensor_depth[id(tensor)] = node_depth[id(node)]
            continue
        parents = [t for t in node.input_tensors if id(t) not in tensor_depth]
        if parents and not expanded:
            stack.append((tensor, True))
            stack.extend((parent, False) for parent in parents)
            continue
        below = max((tensor_depth[id(t)] for t in node.input_tensors), default=0)
        operation = node.operation
        if _graph_io(operation) is not None:
            own = _depth(operation, model_memo)
        else:
            own = 1 if _has_kernel(operation) else 0
        node_depth[id(node)] = below + own
        tensor_depth[id(tensor)] = below + own
    result = max((tensor_depth[id(tensor)] for tensor in outputs), default=0)
    model_memo[key] = result
    return result


def _graph_io(operation):
    """(inputs, outputs) of a model with a symbolic graph, else None."""
    import keras

    if not isinstance(operation, keras.Model):
        return None
    if isinstance(operation, keras.Sequential):
        functional = getattr(operation, "_functional", None)
        if not operation.built or functional is None:
            return None
        operation = functional
    try:
        inputs, outputs = operation.inputs, operation.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs:
        return None
    return list(inputs or []), list(outputs)


def _all_layers(model):
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found.extend(_all_layers(layer))
    return found


def _has_kernel(layer):
    return any(len(weight.shape) >= 2 for weight in getattr(layer, "weights", []))


# Reading and writing.


def new_record(engine, trial_id, init, seed=None, hyperparameters=None, **fields):
    """A fresh record dict with every top-level key of the format.

    Example:
        >>> record = new_record("keras_tuner", "00", "autoinit", seed=1)
        >>> record["status"], record["executions"]
        ('running', [])

    Args:
        engine: who writes it, e.g. "keras_tuner" or "ray_tune".
        trial_id: the engine's trial id (a string).
        init: "autoinit", "default" or "compare".
        seed: the trial's seed.
        hyperparameters: dict of hyperparameter values.
        **fields: any other top-level key of the format (architecture_id, ...).
    """
    record = {
        "format": FORMAT,
        "version": VERSION,
        "engine": engine,
        "trial_id": None if trial_id is None else str(trial_id),
        "status": "running",
        "reason": None,
        "init": init,
        "seed": seed,
        "hyperparameters": dict(hyperparameters or {}),
        "architecture_id": None,
        "parameter_count": None,
        "depth": None,
        "objective": None,
        "reloaded_from": None,
        "worker": {"host": socket.gethostname(), "pid": os.getpid()},
        "updated_at": None,
        "executions": [],
    }
    unknown = set(fields) - set(record)
    if unknown:
        raise ValueError(
            f"Unknown record fields {sorted(unknown)}. Expected some of: {sorted(record)}"
        )
    record.update(fields)
    return record


def write_record(directory, record):
    """Write ``record`` to ``directory/RECORD_FILENAME`` atomically; returns the path.

    The file is written next to it and renamed into place, so a reader never
    sees half a record. ``updated_at`` is set to now (UTC).
    """
    if record.get("status") not in STATUSES:
        raise ValueError(
            f"Record `status` must be one of {STATUSES}. Received: status={record.get('status')!r}"
        )
    os.makedirs(directory, exist_ok=True)
    record["updated_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    text = json.dumps(json_safe(record), indent=1, sort_keys=True, allow_nan=False)
    path = os.path.join(directory, RECORD_FILENAME)
    handle, temporary = tempfile.mkstemp(prefix=".autoinit_record.", dir=directory)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def read_record(path):
    """The record at ``path`` (a record file or a trial directory), or None if absent."""
    if os.path.isdir(path):
        path = os.path.join(path, RECORD_FILENAME)
    if not os.path.exists(path):
        return None
    with open(path) as stream:
        record = json.load(stream)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(
            f"'{path}' is not an autoinit_nas trial record. Expected a JSON object with "
            f"\"format\": \"{FORMAT}\". Received: {str(record)[:80]}"
        )
    return record


def read_records(root):
    """Every record under ``root`` (searched recursively), sorted by trial id.

    Example:
        >>> read_records("/nonexistent/project")
        []
    """
    found = []
    for directory, _, files in os.walk(root):
        if RECORD_FILENAME in files:
            record = read_record(os.path.join(directory, RECORD_FILENAME))
            if record is not None:
                found.append(record)
    return sorted(found, key=lambda record: (str(record.get("trial_id")), record.get("engine") or ""))


def rows(record):
    """One flat dict per (execution, arm) of ``record``.

    Keys: the record's scalar top-level fields (``trial_id``, ``status``,
    ``init`` renamed ``mode``, ``seed``, ``architecture_id``, ...), ``arm``
    and ``execution``, the arm's scalar fields (``init_seconds``,
    ``diverged``, ...), ``hp/<name>`` per hyperparameter, ``best/<metric>``
    and ``final/<metric>`` per metric. A record with no execution yet gives
    one row with ``arm`` None.

    Example:
        >>> [row["arm"] for row in rows(new_record("keras_tuner", "00", "default"))]
        [None]
    """
    base = {
        key: value
        for key, value in record.items()
        if key not in ("executions", "hyperparameters", "objective", "worker", "init", "format")
    }
    base["mode"] = record.get("init")
    objective = record.get("objective") or {}
    base["objective"] = objective.get("name")
    base["direction"] = objective.get("direction")
    for key, value in (record.get("worker") or {}).items():
        base[f"worker/{key}"] = value
    for name, value in (record.get("hyperparameters") or {}).items():
        base[f"hp/{name}"] = value
    result = []
    for execution in record.get("executions") or []:
        for arm, fields in (execution.get("arms") or {}).items():
            row = dict(base, arm=arm, execution=execution.get("execution"))
            for key, value in fields.items():
                if key == "metrics":
                    row.update({f"best/{name}": v for name, v in (value or {}).items()})
                elif key == "final_metrics":
                    row.update({f"final/{name}": v for name, v in (value or {}).items()})
                elif key in ("history", "estimates", "unsupported_layers"):
                    continue
                else:
                    row[key] = value
            result.append(row)
    if not result:
        result.append(dict(base, arm=None, execution=None))
    return result


# Arm fields, shared by the engine adapters.

# The fields of an arm that AutoInit's initialization fills in (None when it did not run).
PREDICTION_FIELDS = (
    "autoinit_seed",
    "predicted_output_mean",
    "predicted_output_variance",
    "layers_without_estimator",
    "unsupported_layers",
    "estimates",
)


def uninitialized_arm(training=False):
    """The fields of an arm AutoInit did not initialize (the default arm, reloaded weights).

    Example:
        >>> uninitialized_arm()["initialized"], uninitialized_arm()["predicted_output_variance"]
        (False, None)
        >>> uninitialized_arm(training=True)["epochs"]
        0

    Args:
        training: also include the training fields (``train_seconds``,
            ``diverged``, ``epochs``, ``metrics``, ...), as they are before any
            epoch.
    """
    fields = {"initialized": False, "init_seconds": 0.0}
    fields.update({key: None for key in PREDICTION_FIELDS})
    if training:
        fields.update(train_seconds=0.0, diverged=False, divergence=None, epochs=0, metrics={},
                      final_metrics={}, history={})
    return fields


def checked_options(autoinit, seed):
    """The adapters' shared argument checks: (``autoinit`` or a fresh ``AutoInit()``, ``seed``).

    Example:
        >>> type(checked_options(None, 0)[0]).__name__
        'AutoInit'
    """
    from autoinit_nas import AutoInit

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


def initialize_arm(autoinit, model, seed):
    """Initialize ``model`` with a copy of ``autoinit`` seeded for the trial; returns (arm fields, the copy).

    The copy draws the weights with ``seed`` unless ``autoinit``'s
    ``weight_init_config`` has a seed of its own; its Monte Carlo estimates
    then use ``sampling_seed`` (0 unless configured), not the trial seed, so
    every trial gets the same estimate for the same layer and estimate caches
    can share it. The fields are ``uninitialized_arm()``'s with
    ``initialized``, ``init_seconds`` and ``PREDICTION_FIELDS`` filled in.
    """
    initializer = copy.copy(autoinit)
    config = dict(autoinit.weight_init_config)
    if config.get("seed") is None:
        config["seed"] = seed
        if config.get("sampling_seed") is None:
            config["sampling_seed"] = 0
    initializer.weight_init_config = config
    start = time.perf_counter()
    model, estimates = initializer.initialize_model(model, return_estimates=True)
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
    """
    name = None
    try:
        name = model.outputs[0]._keras_history.operation.name
    except (AttributeError, IndexError, TypeError, ValueError):
        pass
    if name in estimates:
        mean, var = estimates[name]
    elif estimates:
        mean, var = list(estimates.values())[-1]
    else:
        return None, None
    return float(mean), float(var)


def finite(value):
    """False only for a number that is NaN or infinite; True for finite numbers and non-numbers (None, text).

    Example:
        >>> finite(1.0), finite(float("nan")), finite(None)
        (True, False, True)
    """
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def best_epoch(values, better_than):
    """Index of the best finite value in ``values`` (one per epoch; None where missing).

    ``better_than(a, b)`` says whether ``a`` beats ``b``; the earliest of
    equal values wins. Returns the last epoch when no value is finite, and -1
    for no epochs.

    Example:
        >>> best_epoch([0.5, None, 0.7, 0.7], lambda a, b: a > b)
        2
    """
    best, best_value = None, None
    for epoch, value in enumerate(values):
        if value is None or not finite(value):
            continue
        if best is None or better_than(value, best_value):
            best, best_value = epoch, value
    return len(values) - 1 if best is None else best


def epoch_metrics(history, epoch):
    """{metric: value at ``epoch``} of a ``history`` ({metric: [value per epoch]}); non-finite values are None.

    A series shorter than ``epoch`` gives its last value; ``epoch`` -1 gives {}.

    Example:
        >>> epoch_metrics({"loss": [0.9, 0.5], "val_loss": [1.0, float("nan")]}, 1)
        {'loss': 0.5, 'val_loss': None}
    """
    if epoch < 0:
        return {}
    metrics = {}
    for name, values in history.items():
        if values:
            value = values[min(epoch, len(values) - 1)]
            metrics[name] = value if value is not None and finite(value) else None
    return metrics


def non_finite_loss(history):
    """Why a ``history`` ({metric: [value per epoch]}) diverged: its first non-finite ``loss`` or ``val_loss``; else None.

    Example:
        >>> non_finite_loss({"loss": [0.9, float("inf")]})
        'non-finite loss (inf) at epoch 1'
    """
    for key in ("loss", "val_loss"):
        for epoch, value in enumerate(history.get(key, [])):
            if value is not None and not finite(value):
                return f"non-finite {key} ({value}) at epoch {epoch}"
    return None


def logs_divergence(logs, where):
    """Why one step's Keras ``logs`` diverged: a non-finite ``loss`` or ``val_loss`` "at ``where``"; else None.

    Example:
        >>> logs_divergence({"loss": float("nan")}, "epoch 0, batch 3")
        'non-finite loss (nan) at epoch 0, batch 3'
    """
    for key in ("loss", "val_loss"):
        if key in (logs or {}) and not finite(logs[key]):
            return f"non-finite {key} ({float(logs[key])}) at {where}"
    return None


# JSON helpers.


def json_safe(value):
    """``value`` with numpy scalars made Python, tuples made lists, non-finite floats None."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
        if isinstance(value, (bool, int, str)):
            return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)
