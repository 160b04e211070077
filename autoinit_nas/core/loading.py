"""Build a Keras model from a config dict or JSON string, Keras 3 or tf.keras 2.

``load_model`` is what ``AutoInit.initialize_model`` does with a config before
initializing it: parse the JSON, convert a tf.keras 2 config
(``autoinit_nas.core.legacy``), and build it under Keras's safe mode, so a
config never runs code unless the caller passes ``safe_mode=False``.

Example:
    >>> import keras
    >>> x = keras.Input((3,))
    >>> config = keras.Model(x, keras.layers.Dense(2)(x)).to_json()
    >>> load_model(config).count_params()
    8
"""

import json
import warnings

import keras
from keras.src.saving.serialization_lib import SafeModeScope

from autoinit_nas.core import legacy
from autoinit_nas.estimators.layers import CenteredUnitNorm, WeightedSum

# Initializer arguments AutoInit may overwrite; from a config they are
# deferred so each weight is drawn only once.
_DEFERRABLE = ("kernel_initializer", "recurrent_initializer", "depthwise_initializer")


@keras.saving.register_keras_serializable(package="autoinit_nas")
class DeferredInitializer(keras.initializers.Initializer):
    """Zeros now, the original initializer later if AutoInit does not replace it.

    Used only while building a model from a config: weights AutoInit draws
    are never sampled twice, and weights it leaves alone get their original
    initializer afterwards.
    """

    def __init__(self, original=None):
        self.original = original

    def __call__(self, shape, dtype=None):
        return keras.ops.zeros(shape, dtype=dtype)

    def get_config(self):
        return {"original": self.original}


def deferred_config(config):
    """Copy of a model config with the deferrable initializers wrapped."""
    if isinstance(config, dict):
        result = {}
        for key, value in config.items():
            if key in _DEFERRABLE and value is not None:
                result[key] = {
                    "module": None,
                    "class_name": "DeferredInitializer",
                    "config": {"original": value},
                    "registered_name": "autoinit_nas>DeferredInitializer",
                }
            else:
                result[key] = deferred_config(value)
        return result
    if isinstance(config, list):
        return [deferred_config(item) for item in config]
    return config


def restore_deferred(model, custom_objects):
    """Draw the original initializer wherever a deferred one is still in place."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        owners = [layer]
        for name in ("cell", "forward_layer", "backward_layer"):
            sub = getattr(layer, name, None)
            if sub is not None:
                owners.append(sub)
                if getattr(sub, "cell", None) is not None:
                    owners.append(sub.cell)
        for owner in owners:
            for attribute in _DEFERRABLE:
                deferred = getattr(owner, attribute, None)
                if not isinstance(deferred, DeferredInitializer):
                    continue
                original = keras.initializers.deserialize(
                    deferred.original, custom_objects=custom_objects
                )
                setattr(owner, attribute, original)
                weight_name = {"recurrent_initializer": "recurrent_kernel"}.get(
                    attribute, "kernel"
                )
                variable = getattr(owner, "_" + weight_name, None)
                if not isinstance(variable, keras.Variable):
                    variable = getattr(owner, weight_name, None)
                if isinstance(variable, keras.Variable):
                    variable.assign(original(variable.shape, dtype=variable.dtype))



def parse(model):
    """A config dict from a dict or JSON string, tf.keras 2 configs converted.

    Returns ``{"class_name": ..., "config": ...}`` or a bare functional config.
    """
    if isinstance(model, str):
        try:
            model = json.loads(model)
        except json.JSONDecodeError as error:
            raise ValueError(
                "`model` is a string but not valid JSON "
                f"({error.msg} at line {error.lineno}, column {error.colno}). "
                "Expected a keras.Model, a config dict or a JSON string from model.to_json()."
            ) from None
    if not isinstance(model, dict):
        raise TypeError(
            "`model` must be a keras.Model, a model config dict or a JSON string. "
            f"Received: {type(model).__name__}"
        )
    if not (("class_name" in model and "config" in model) or "layers" in model):
        raise ValueError(
            "`model` is a dict but not a Keras model config: expected the keys 'class_name' "
            "and 'config' (as in json.loads(model.to_json())) or 'layers' (as in "
            f"model.get_config()). Received keys: {sorted(map(str, model))}"
        )
    class_name, config = legacy.unwrap(model)
    if legacy.is_legacy_model(model):
        config, dropped = legacy.convert_model_config(class_name, config)
        if dropped:
            warnings.warn(
                "Arguments Keras 3 no longer accepts were dropped from the tf.keras 2 "
                "config (argument (layers): why the model computes the same):\n  "
                + "\n  ".join(legacy.describe_dropped(dropped)),
                stacklevel=4,
            )
        return {"class_name": class_name, "config": config}
    return model


def load_model(model, custom_objects=None, safe_mode=True, defer_initializers=False):
    """Build a model from a config dict or JSON string (Keras 3 or tf.keras 2).

    Args:
        model: a dict (``model.get_config()`` or the parsed ``model.to_json()``)
            or a JSON string.
        custom_objects: custom Keras objects the config refers to.
        safe_mode: refuse configs that would run code (Lambda layers).
        defer_initializers: build kernels as zeros behind a
            ``DeferredInitializer`` (AutoInit draws them next; call
            ``restore_deferred`` for any it leaves alone).

    Returns:
        The built ``keras.Model``.
    """
    objects = {"WeightedSum": WeightedSum, "CenteredUnitNorm": CenteredUnitNorm,
               "DeferredInitializer": DeferredInitializer}
    objects.update(custom_objects or {})
    config = parse(model)
    if defer_initializers:
        config = deferred_config(config)
    if not isinstance(safe_mode, bool):
        raise TypeError(f"`safe_mode` must be True or False. Received: safe_mode={safe_mode!r}")
    try:
        with keras.saving.custom_object_scope(objects), SafeModeScope(safe_mode):
            if "class_name" not in config or "layers" in config:
                model = keras.Model.from_config(config, custom_objects=objects)
            elif config["class_name"] in ("Functional", "Model") and "module" not in config:
                model = keras.Model.from_config(config["config"], custom_objects=objects)
            elif config["class_name"] == "Sequential" and "module" not in config:
                model = keras.Sequential.from_config(config["config"], custom_objects=objects)
            else:
                model = keras.saving.deserialize_keras_object(
                    config, custom_objects=objects, safe_mode=safe_mode
                )
    except Exception as error:
        if hasattr(error, "add_note"):
            error.add_note(
                "(raised by Keras while building the model config given to AutoInit; custom "
                "layers need custom_objects={'Name': Class}, and Lambda layers safe_mode=False "
                "for configs you trust)"
            )
        raise
    if not isinstance(model, keras.Model):
        raise TypeError(
            "The config describes a "
            f"{type(model).__name__}, not a keras.Model. Expected a model config "
            "(model.to_json() or model.get_config())."
        )
    return model
