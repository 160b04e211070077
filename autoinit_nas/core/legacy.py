"""Read Keras 2 (tf.keras 2.x) model configs on Keras 3.

Much NAS output is stored as tf.keras 2 JSON. Keras 3 has a loader for that
legacy format but rejects most real files; this module repairs them:

* **Nested models' node indices.** A tf.keras 2 Functional model owns a node
  of its own (index 0, created with the model), so its first call in an outer
  graph is node 1. Keras 3 models have no such node: inbound references to a
  nested model are shifted down by one.
* **Layer arguments** Keras 3 removed or renamed are converted, layer by layer
  and inside wrappers (``Bidirectional``, ``TimeDistributed``, ``RNN`` cells),
  by the table in ``autoinit_nas.core.keras2_arguments``; those whose value
  Keras 3 cannot express are refused with an error naming the layer. An
  argument the table does not know and Keras 3 rejects is dropped and reported.
* **Shapes**: ``batch_input_shape`` becomes the Input's ``batch_shape``; on
  other layers it becomes an Input in front of a Sequential model, and is
  dropped in a functional one, whose Inputs carry the shapes.

Example:
    >>> config = {"class_name": "Functional", "config": {"name": "m", "layers": [],
    ...           "input_layers": [], "output_layers": []}}
    >>> is_legacy_config(config["config"])
    False
"""

import functools
import inspect

import keras

from autoinit_nas.core import keras2_arguments

MODEL_CLASSES = ("Functional", "Model", "Sequential")
# Keyword arguments Keras 3's base Layer accepts through **kwargs.
_BASE_LAYER_KWARGS = {"input_dim", "input_shape"}
# Config keys that hold whole layer configs (wrappers and recurrent layers).
_NESTED_LAYER_KEYS = ("layer", "backward_layer", "cell")


def unwrap(model_config):
    """(class_name, model config) from a ``to_json`` dict or a ``get_config`` dict."""
    if "class_name" in model_config and "config" in model_config and "layers" not in model_config:
        return model_config["class_name"], model_config["config"]
    layers = model_config.get("layers") or []
    if "input_layers" not in model_config and layers and not any(
        isinstance(layer, dict) and "inbound_nodes" in layer for layer in layers
    ):
        return "Sequential", model_config
    return "Functional", model_config


def is_legacy_model(model_config):
    """True for a tf.keras 2 model, given a ``to_json`` dict or a ``get_config`` dict."""
    if str(model_config.get("keras_version", "")).startswith("2."):
        return True
    return is_legacy_config(unwrap(model_config)[1])


def is_legacy_config(config):
    """True for a tf.keras 2 model config (functional or Sequential).

    tf.keras 2 wrote inbound nodes as nested lists (Keras 3: dicts), left out
    the "module" key before 2.13, and wrote ``batch_input_shape``.
    """
    layers = config.get("layers") if isinstance(config, dict) else None
    if not layers:
        return False
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        nodes = layer.get("inbound_nodes")
        if "module" not in layer or any(isinstance(node, list) for node in nodes or []):
            return True
        if "batch_input_shape" in (layer.get("config") or {}):
            return True
    return False


@functools.lru_cache(maxsize=None)
def accepted_arguments(class_name):
    """Constructor arguments a built-in Keras 3 layer accepts, or None if unknown.

    Follows ``**kwargs`` up the class's MRO: a constructor that takes no
    ``**kwargs`` (``SpatialDropout1D``) ends the chain, so arguments of its
    parents' constructors are not counted as accepted.
    """
    layer_class = getattr(keras.layers, class_name, None)
    if not isinstance(layer_class, type):
        return None
    accepted = set()
    for klass in layer_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        accepted.update(p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
        if klass is keras.layers.Layer:
            accepted.update(_BASE_LAYER_KWARGS)
            break
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    accepted.discard("self")
    return frozenset(accepted)


def _shift_reference(reference, model_names):
    if (
        isinstance(reference, list)
        and len(reference) >= 3
        and isinstance(reference[0], str)
        and isinstance(reference[1], int)
    ):
        if reference[0] in model_names and reference[1] >= 1:
            return [reference[0], reference[1] - 1] + list(reference[2:])
        return list(reference)
    if isinstance(reference, list):
        return [_shift_reference(item, model_names) for item in reference]
    return reference


def _is_reference(value, layer_names):
    return (isinstance(value, list) and len(value) == 3 and value[0] in layer_names
            and isinstance(value[1], int) and isinstance(value[2], int))


def _as_keras_tensor(reference):
    # Keras 3 swaps this placeholder for the real tensor at `keras_history`.
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [], "dtype": "float32", "keras_history": list(reference)}}


def _convert_node(node, layer_names, model_names):
    """A tf.keras 2 node, in Keras 3's form when its call took tensors as keyword arguments.

    tf.keras 2 wrote ``MultiHeadAttention(query, value=v)`` as
    ``[["q", 0, 0, {"value": ["v", 0, 0]}]]``; Keras 3 reads such keyword
    arguments as plain values, so the node is rewritten as ``{"args", "kwargs"}``.
    """
    node = _shift_reference(node, model_names)
    if not isinstance(node, list) or not all(isinstance(ref, list) and len(ref) >= 3 for ref in node):
        return node
    kwargs = {}
    for ref in node:
        if len(ref) > 3 and isinstance(ref[3], dict):
            kwargs.update(ref[3])
    if not any(_is_reference(value, layer_names) for value in kwargs.values()):
        return node
    tensors = [_as_keras_tensor(ref[:3]) for ref in node]
    kwargs = {key: _as_keras_tensor(_shift_reference(value, model_names))
              if _is_reference(value, layer_names) else value for key, value in kwargs.items()}
    return {"args": [tensors[0] if len(tensors) == 1 else tensors], "kwargs": kwargs}


def _is_builtin(entry):
    """A layer entry that names a Keras layer (not a user class that shares its name)."""
    module = entry.get("module")
    registered = entry.get("registered_name")
    return (module is None or str(module).startswith("keras")) and registered in (None, entry.get("class_name"))


def convert_layer_config(entry, dropped):
    """Keras 3 copy of one serialized tf.keras 2 layer ``{"class_name", "config", ...}``.

    Converts the layers nested in wrappers and recurrent layers too. Counts
    dropped arguments in ``dropped`` ("Class.argument" -> layers).
    """
    entry = dict(entry)
    # tf.keras 2's build shapes follow its own build() signatures; Keras 3
    # builds every layer when the model connects it.
    entry.pop("build_config", None)
    class_name = entry.get("class_name")
    config = dict(entry.get("config") or {})
    if class_name in MODEL_CLASSES and "layers" in config:
        entry["config"], _ = convert_model_config(class_name, config, dropped)
        return entry
    if class_name != "InputLayer":
        config.pop("batch_input_shape", None)
    known = accepted_arguments(class_name) is not None or class_name in keras2_arguments.REPLACED_CLASSES
    if not (_is_builtin(entry) and known):
        # A user's layer: its arguments are its own business.
        entry["config"] = config
        return entry
    class_name, config = keras2_arguments.convert_layer(class_name, config, dropped)
    accepted = accepted_arguments(class_name)
    for argument in sorted(set(config) - accepted):
        del config[argument]
        key = f"{class_name}.{argument}"
        dropped[key] = dropped.get(key, 0) + 1
    for key in _NESTED_LAYER_KEYS:
        if isinstance(config.get(key), dict) and "class_name" in config[key]:
            config[key] = convert_layer_config(config[key], dropped)
    if isinstance(config.get("cells"), list):
        config["cells"] = [convert_layer_config(cell, dropped) for cell in config["cells"]]
    entry["class_name"], entry["config"] = class_name, config
    return entry


def _sequential_input(entry):
    """An InputLayer entry for a Sequential model's first layer that carries the input shape."""
    config = entry.get("config") or {}
    shape = config.get("batch_input_shape")
    if entry.get("class_name") in ("InputLayer",) + MODEL_CLASSES or shape is None:
        return None
    input_config = {"batch_shape": list(shape), "dtype": config.get("dtype", "float32"),
                    "name": f"{config.get('name', 'sequential')}_input"}
    layer = {"class_name": "InputLayer", "config": input_config}
    if "module" in entry:
        layer.update(module="keras.layers", registered_name=None)
    return layer


def convert_model_config(class_name, config, dropped=None):
    """Keras 3-loadable copy of a tf.keras 2 Functional or Sequential config.

    Returns (config, dropped) where ``dropped`` maps "Class.argument" to the
    number of layers that lost it.
    """
    dropped = {} if dropped is None else dropped
    if class_name != "Sequential":
        return convert_functional_config(config, dropped)
    layers = [convert_layer_config(layer, dropped) for layer in config["layers"]]
    first = _sequential_input(config["layers"][0]) if config["layers"] else None
    converted = dict(config)
    converted["layers"] = ([first] if first is not None else []) + layers
    return converted, dropped


def convert_functional_config(config, dropped=None):
    """Keras 3-loadable copy of a tf.keras 2 functional config.

    Returns (config, dropped) where ``dropped`` maps "Class.argument" to the
    number of layers that lost it.
    """
    dropped = {} if dropped is None else dropped
    names = {layer.get("name", layer.get("config", {}).get("name")): layer.get("class_name")
             for layer in config["layers"]}
    model_names = {name for name, class_name in names.items() if class_name in MODEL_CLASSES}
    layers = []
    for layer in config["layers"]:
        converted = convert_layer_config(layer, dropped)
        converted["inbound_nodes"] = [_convert_node(node, set(names), model_names)
                                      for node in layer.get("inbound_nodes", [])]
        layers.append(converted)
    converted = dict(config)
    converted["layers"] = layers
    return converted, dropped


def describe_dropped(dropped):
    """One line per dropped argument: how many layers lost it, and why that is harmless."""
    lines = []
    for key, count in sorted(dropped.items()):
        why = keras2_arguments.reason(key) or "Keras 3's constructor does not accept it"
        lines.append(f"{key} ({count} layer{'s' if count != 1 else ''}): {why}")
    return lines
