"""What a model is, independent of how it was initialized: fingerprint, depth, size.

Built on ``graph``'s public walk, so the core stays the only reader of Keras
internals. Trials record these three numbers for every candidate.

Example:
    >>> import keras
    >>> x = keras.Input((4,))
    >>> model = keras.Model(x, keras.layers.Dense(2)(keras.layers.Dense(8)(x)))
    >>> depth(model), parameter_count(model), len(architecture_id(model))
    (2, 58, 64)
"""

import hashlib
import json

import keras

from autoinit_nas.core import graph


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
    ``canonical_architecture(model.get_config())``: two builds of the same
    architecture share it whatever their layer names, initializers, seeds or
    dtype policies; any change of topology, width, activation, kernel size,
    rate or input shape changes it.

    Example:
        >>> import keras
        >>> x = keras.Input((3,))
        >>> a = keras.Model(x, keras.layers.Dense(2, kernel_initializer="zeros")(x))
        >>> y = keras.Input((3,))
        >>> architecture_id(a) == architecture_id(keras.Model(y, keras.layers.Dense(2)(y)))
        True
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

    Drops every ``name``, ``seed`` and ``*_initializer`` key and dtype policies
    (``dtype`` dicts, ``dtype_policy``). Layer references (the ``[layer_name,
    node_index, tensor_index]`` triples of ``keras_history``, ``input_layers``
    and ``output_layers``) become the layer's position (``"#3"``) in its model's
    ``layers`` list, so topology stays while names go.

    Example:
        >>> canonical_architecture({"name": "m", "units": 4, "kernel_initializer": "zeros"})
        {'units': 4}
    """
    return _strip(config, {})


def _strip(value, scope):
    if isinstance(value, dict):
        layers = value.get("layers")
        if isinstance(layers, list) and all(isinstance(layer, dict) for layer in layers):
            scope = _layer_positions(layers)
        stripped = {}
        for key, item in value.items():
            if key in ("name", "seed", "dtype_policy") or key.endswith("_initializer"):
                continue
            if key == "dtype" and isinstance(item, dict):
                continue
            stripped[key] = _strip(item, scope)
        return stripped
    if isinstance(value, (list, tuple)):
        is_reference = (
            len(value) == 3
            and isinstance(value[0], str)
            and value[0] in scope
            and all(isinstance(item, int) for item in value[1:])
        )
        if is_reference:
            return [scope[value[0]], value[1], value[2]]
        return [_strip(item, scope) for item in value]
    return value


def _layer_positions(layers):
    scope = {}
    for index, layer in enumerate(layers):
        name = layer.get("name")
        if name is None and isinstance(layer.get("config"), dict):
            name = layer["config"].get("name")
        if isinstance(name, str):
            scope.setdefault(name, f"#{index}")
    return scope


def depth(model):
    """Kernel-bearing layers on the longest path from an input to an output.

    A kernel-bearing layer owns a weight of rank 2 or more (Dense and
    convolution kernels, embedding tables, attention projections, recurrent
    kernels); activations, pooling, merges, dropout and normalization do not
    count. A nested model counts as its own depth; a layer called twice on a
    path counts twice. Models without a symbolic graph (subclassed, unbuilt
    Sequential) count their kernel-bearing layers.

    Example:
        >>> import keras
        >>> x = keras.Input((4,))
        >>> a = keras.layers.Dense(4)(x)
        >>> b = keras.layers.Dense(4)(keras.layers.Dense(4)(x))
        >>> depth(keras.Model(x, keras.layers.Add()([a, b])))
        2
    """
    return _depth(model, {})


def _depth(model, memo):
    if id(model) in memo:
        return memo[id(model)]
    if not graph.is_graph_model(model):
        result = sum(1 for layer in _all_layers(model) if _has_kernel(layer))
    else:
        inputs, outputs = graph.graph_of(model)
        tensor_depth = {id(tensor): 0 for tensor in inputs}
        for node in graph.ordered_nodes(model):
            below = max((tensor_depth.get(id(t), 0) for t in graph.signal_tensors(node)), default=0)
            operation = node.operation
            if graph.is_graph_model(operation):
                own = _depth(operation, memo)
            else:
                own = 1 if _has_kernel(operation) else 0
            for tensor in node.outputs:
                tensor_depth[id(tensor)] = below + own
        result = max((tensor_depth.get(id(t), 0) for t in outputs), default=0)
    memo[id(model)] = result
    return result


def _all_layers(model):
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found.extend(_all_layers(layer))
    return found


def _has_kernel(layer):
    return any(len(weight.shape) >= 2 for weight in getattr(layer, "weights", []))


def output_layer_name(model):
    """Name of the layer producing ``model``'s first output, or None (no symbolic graph).

    Example:
        >>> import keras
        >>> x = keras.Input((3,))
        >>> output_layer_name(keras.Model(x, keras.layers.Dense(1, name="head")(x)))
        'head'
    """
    if not isinstance(model, keras.Model) or not graph.is_graph_model(model):
        return None
    _, outputs = graph.graph_of(model)
    operation = graph.producer(outputs[0]) if outputs else None
    return None if operation is None else operation.name


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)
