"""What a model declares before any init arm: its initializers and constraints, kept and put back.

``autoinit_nas.init_methods`` keeps this state the first time an arm touches
a model (``declared_initializers``) and restores it before every arm
(``restore_declared``), so arms are independent of order. Kept: every
layer's ``*_initializer`` / ``*_constraint`` attribute, and every weight's
own ``variable.constraint`` (depthwise, separable and recurrent kernels
included, whatever their attribute is named). Attributes an arm added that
the model did not declare (AutoInit's ``kernel_constraint`` on a
DepthwiseConv2D) are deleted on restore.

Arm traces: a model can reach its first arm already carrying an arm's
initializers (``keras.models.clone_model`` of an initialized model, or
``AutoInit().initialize_model`` called directly). Then the rule is:

- an initializer the he / lecun / lsuv arms left (``traced``: ``Arm*``
  subclasses registered for serialization) carries the declared
  initializer's config through ``get_config`` and clones: that one is kept;
- AutoInit's ``AutoInitInitializer`` / ``CenteredUnitNorm`` carry nothing:
  the layer class's own default is kept instead (its ``__init__`` default
  for that argument, e.g. "glorot_uniform"; no constraint for a variable),
  with one warning per model naming each layer and what was found. A
  constraint attribute the class takes no argument for is dropped (AutoInit
  names it after the weight: DepthwiseConv2D's ``kernel_constraint``); such
  an initializer stays as found.

Zeros biases AutoInit leaves cannot be told from declared zeros: they stay.

Example:
    >>> import keras
    >>> x = keras.Input((3,))
    >>> model = keras.Model(x, keras.layers.Dense(2, name="d")(x))
    >>> _ = declared_initializers(model)
    >>> model.layers[1].kernel_initializer = keras.initializers.Zeros()
    >>> type(restore_declared(model).layers[1].kernel_initializer).__name__
    'GlorotUniform'
"""

import copy
import inspect
import warnings

import keras

from autoinit_nas.core.weights import AutoInitInitializer
from autoinit_nas.estimators.layers import CenteredUnitNorm

# Where the declared state is kept on a model the first time an arm touches it.
_DECLARED_ATTRIBUTE = "_autoinit_nas_declared"
_SUFFIXES = ("_initializer", "_constraint")
# Left by AutoInit (autoinit_nas.core), which records nothing of what they replaced.
_AUTOINIT_TRACES = (AutoInitInitializer, CenteredUnitNorm)
# An attribute only an arm set: deleted on restore.
_UNDECLARED = object()


class _Traced:
    """Mixin: an arm's initializer that also carries the declared one's serialized config."""

    def __init__(self, *args, declared=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.declared = declared

    def get_config(self):
        return dict(super().get_config(), declared=self.declared)


def _traced_class(base):
    name = "Arm" + base.__name__
    doc = f"``{base.__name__}`` left by an init arm; ``declared``: what the layer declared (serialized)."
    cls = type(name, (_Traced, base), {"__doc__": doc, "__module__": __name__})
    return keras.saving.register_keras_serializable(package="autoinit_nas", name=name)(cls)


# The initializers the he / lecun / lsuv arms leave, registered at import so clones deserialize
# (a saved model that holds them loads once this module is imported).
ArmRandomNormal = _traced_class(keras.initializers.RandomNormal)
ArmOrthogonal = _traced_class(keras.initializers.Orthogonal)
ArmZeros = _traced_class(keras.initializers.Zeros)
TRACED = {keras.initializers.RandomNormal: ArmRandomNormal, keras.initializers.Orthogonal: ArmOrthogonal,
          keras.initializers.Zeros: ArmZeros}


def traced(layer, attribute, initializer):
    """``initializer`` as its ``Arm*`` class, carrying what ``layer.<attribute>`` declares now.

    Example:
        >>> import keras
        >>> layer = keras.layers.Dense(2)
        >>> arm = traced(layer, "kernel_initializer", keras.initializers.RandomNormal(0.0, 0.1))
        >>> type(arm).__name__, arm.get_config()["declared"]["class_name"]
        ('ArmRandomNormal', 'GlorotUniform')
    """
    arm_class = TRACED.get(type(initializer))
    if arm_class is None:
        raise TypeError(
            f"No traced class for {type(initializer).__name__}. Expected one of: "
            f"{', '.join(base.__name__ for base in TRACED)}. Received: {initializer!r}"
        )
    current = getattr(layer, attribute, None)
    declared = current.declared if isinstance(current, _Traced) else keras.initializers.serialize(current)
    return arm_class.from_config(dict(initializer.get_config(), declared=copy.deepcopy(declared)))


def layers_of(model):
    """Every layer inside ``model``, nested ones (an LSTM's cell) included."""
    # Keras 3 has no public recursive layer list; this is the one Keras uses itself.
    return list(model._flatten_layers(include_self=False, recursive=True))


def layer_variable(layer, name):
    """``layer``'s variable ``name`` (through the private ``_name`` Dense uses), or None."""
    for attribute in ("_" + name, name):
        value = getattr(layer, attribute, None)
        if isinstance(value, keras.Variable):
            return value
    return None


def _copy(initializer):
    try:
        return type(initializer).from_config(initializer.get_config())
    except Exception:  # noqa: BLE001 - an initializer that does not round-trip its config
        return copy.deepcopy(initializer)


def _declarable(attribute, value):
    return (attribute.endswith(_SUFFIXES) and not attribute.startswith("__")
            and (value is None or isinstance(value, (keras.initializers.Initializer, keras.constraints.Constraint))))


def class_default(layer, attribute):
    """(True, the default ``type(layer).__init__`` gives ``attribute``), or (False, None) if it takes none.

    Example:
        >>> import keras
        >>> class_default(keras.layers.Dense(2), "kernel_initializer")
        (True, 'glorot_uniform')
    """
    try:
        parameter = inspect.signature(type(layer).__init__).parameters.get(attribute.lstrip("_"))
    except (TypeError, ValueError):  # a builtin or C-level __init__
        parameter = None
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return False, None
    return True, parameter.default


def _resolved(layer, attribute, value, found):
    """The declared value behind ``value`` (``_UNDECLARED``: none); traces without one are noted in ``found``."""
    if isinstance(value, _Traced):
        if value.declared is None:
            return None
        try:
            return keras.initializers.deserialize(copy.deepcopy(value.declared))
        except (TypeError, ValueError):  # a custom initializer this process has not registered
            return _class_default(layer, attribute, value, found)
    if isinstance(value, _AUTOINIT_TRACES):
        return _class_default(layer, attribute, value, found)
    return _copy(value) if isinstance(value, keras.initializers.Initializer) else value


def _class_default(layer, attribute, value, found):
    """What stands for a trace that does not say what it replaced: the class's default (noted in ``found``)."""
    known, default = class_default(layer, attribute)
    is_initializer = attribute.endswith("_initializer")
    if not known and not is_initializer:
        # AutoInit names a constraint after its weight (DepthwiseConv2D's ``kernel_constraint``).
        found.append(f"layer '{layer.name}': {attribute}={type(value).__name__} (not an argument: dropped)")
        return _UNDECLARED
    if not known:
        found.append(f"layer '{layer.name}': {attribute}={type(value).__name__} (kept: the class takes no default)")
        return _copy(value)
    found.append(f"layer '{layer.name}': {attribute}={type(value).__name__} -> {default!r}")
    return keras.initializers.get(default) if is_initializer else keras.constraints.get(default)


def _snapshot(model):
    """{"attributes": [(layer, attribute, value)], "constraints": [(variable, constraint)]}, kept on ``model``."""
    kept = vars(model).get(_DECLARED_ATTRIBUTE)
    if kept is not None:
        return kept
    found, attributes = [], []
    for layer in layers_of(model):
        resolved = [(layer, attribute, _resolved(layer, attribute, value, found))
                    for attribute, value in list(vars(layer).items()) if _declarable(attribute, value)]
        attributes.extend(entry for entry in resolved if entry[2] is not _UNDECLARED)
    constraints = []
    for variable in model.weights:
        constraint = variable.constraint
        if isinstance(constraint, _AUTOINIT_TRACES):
            found.append(f"weight '{variable.path}': constraint={type(constraint).__name__} -> None")
            constraint = None
        constraints.append((variable, constraint))
    if found:
        warnings.warn(
            f"Model '{model.name}' reached its first init arm carrying initializers or constraints AutoInit "
            f"(or an arm) left, with no trace of what they replaced (a clone of an initialized model, or "
            f"AutoInit run directly?); expected the ones it declares. The 'default' arm uses each layer "
            f"class's own defaults instead. Received: {'; '.join(found)}",
            stacklevel=4,
        )
    kept = {"attributes": attributes, "constraints": constraints}
    object.__setattr__(model, _DECLARED_ATTRIBUTE, kept)  # not tracked by Keras, not serialized
    return kept


def declared_initializers(model):
    """What ``model`` declares before any arm: [(layer, attribute, initializer or constraint)].

    Each layer's ``*_initializer`` and ``*_constraint`` attributes (and each
    weight's ``constraint``), taken the first time it is asked for (every arm
    asks) and kept on the model; see the module docstring for arm traces
    found then. Arms overwrite those attributes (so ``get_config``
    reproduces the arm); ``restore_declared`` puts these back.

    Example:
        >>> import keras
        >>> x = keras.Input((3,))
        >>> model = keras.Model(x, keras.layers.Dense(2, name="d")(x))
        >>> [attribute for _, attribute, _ in declared_initializers(model)]
        ['kernel_initializer', 'bias_initializer', 'kernel_constraint', 'bias_constraint']
    """
    return _snapshot(model)["attributes"]


def restore_declared(model):
    """Put back what ``model`` declared (``declared_initializers``); returns ``model``.

    Sets every kept attribute (a fresh copy of each initializer), deletes the
    ``*_initializer`` / ``*_constraint`` attributes an arm added, and sets
    every weight's ``constraint`` back.

    Example:
        >>> import keras
        >>> x = keras.Input((3,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> _ = declared_initializers(model)
        >>> model.layers[1].kernel.constraint = keras.constraints.NonNeg()
        >>> restore_declared(model).layers[1].kernel.constraint is None
        True
    """
    kept = _snapshot(model)
    names = {(id(layer), attribute) for layer, attribute, _ in kept["attributes"]}
    for layer in layers_of(model):
        for attribute, value in list(vars(layer).items()):
            if _declarable(attribute, value) and (id(layer), attribute) not in names:
                delattr(layer, attribute)
    for layer, attribute, value in kept["attributes"]:
        setattr(layer, attribute, _copy(value) if isinstance(value, keras.initializers.Initializer) else value)
    for variable, constraint in kept["constraints"]:
        variable.constraint = constraint
    return model
