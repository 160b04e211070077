"""Read Keras 2 (tf.keras 2.x) model configs on Keras 3.

Much NAS output is stored as tf.keras 2 JSON. Keras 3 has a loader for that
legacy format but rejects most real files, for three reasons this module
repairs:

* **Nested models' node indices.** A tf.keras 2 Functional model owns a node
  of its own (index 0, created with the model), so its first call in an outer
  graph is node 1. Keras 3 models have no such node: inbound references to a
  nested model are shifted down by one.
* **Removed arguments** (``time_major`` of recurrent layers, and any other
  argument the Keras 3 class no longer accepts) are dropped, each reported
  once as a warning.
* **Class and shape spellings**: ``Functional`` and ``batch_input_shape`` are
  handled by Keras 3's legacy loader once the file reaches it through
  ``keras.Model.from_config``.

Example:
    >>> config = {"class_name": "Functional", "config": {"name": "m", "layers": [],
    ...           "input_layers": [], "output_layers": []}}
    >>> is_legacy_config(config["config"])
    False
"""

import functools
import inspect

import keras

MODEL_CLASSES = ("Functional", "Model", "Sequential")
# Keyword arguments every Keras 3 layer accepts besides its own.
_BASE_LAYER_KWARGS = {
    "name", "trainable", "dtype", "autocast", "activity_regularizer",
    "input_dim", "input_shape", "batch_input_shape", "batch_shape", "batch_size",
}


def unwrap(model_config):
    """(class_name, functional config) from a ``to_json`` dict or a ``get_config`` dict."""
    if "class_name" in model_config and "config" in model_config and "layers" not in model_config:
        return model_config["class_name"], model_config["config"]
    return "Functional", model_config


def is_legacy_config(config):
    """True for a tf.keras 2 functional config (layers without Keras 3's "module" key)."""
    layers = config.get("layers") if isinstance(config, dict) else None
    if not layers:
        return False
    return any(
        isinstance(layer, dict) and "module" not in layer and isinstance(layer.get("inbound_nodes"), list)
        for layer in layers
    )


@functools.lru_cache(maxsize=None)
def accepted_arguments(class_name):
    """Constructor arguments a built-in Keras 3 layer accepts, or None if unknown.

    The union of the ``__init__`` parameters along the class's MRO plus the
    keyword arguments the base ``Layer`` accepts.
    """
    layer_class = getattr(keras.layers, class_name, None)
    if not isinstance(layer_class, type):
        return None
    accepted = set(_BASE_LAYER_KWARGS)
    for klass in layer_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, parameter in inspect.signature(init).parameters.items():
            if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                accepted.add(name)
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


def convert_functional_config(config, dropped=None):
    """Keras 3-loadable copy of a tf.keras 2 functional config.

    Returns (config, dropped) where ``dropped`` maps "Class.argument" to the
    number of layers that lost it.
    """
    dropped = {} if dropped is None else dropped
    layers = []
    model_names = {
        layer["config"]["name"] if "name" not in layer else layer["name"]
        for layer in config["layers"]
        if layer.get("class_name") in MODEL_CLASSES
    }
    for layer in config["layers"]:
        layer = dict(layer)
        class_name = layer.get("class_name")
        layer_config = dict(layer.get("config", {}))
        if class_name in MODEL_CLASSES and "layers" in layer_config:
            layer_config, _ = convert_functional_config(layer_config, dropped)
        else:
            accepted = accepted_arguments(class_name)
            if accepted is not None:
                for argument in sorted(set(layer_config) - accepted):
                    del layer_config[argument]
                    key = f"{class_name}.{argument}"
                    dropped[key] = dropped.get(key, 0) + 1
        if class_name == "InputLayer":
            layer_config.pop("ragged", None)
        layer["config"] = layer_config
        layer["inbound_nodes"] = _shift_reference(layer.get("inbound_nodes", []), model_names)
        layers.append(layer)
    converted = dict(config)
    converted["layers"] = layers
    return converted, dropped
