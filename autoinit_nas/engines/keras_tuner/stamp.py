"""What a built candidate's weights hold (arm, seed, probe batch), and the hooks on its ``fit`` and weight loading.

keras-tuner tells a HyperModel nothing about the trial that builds it, and a
tuner may train a candidate however it likes: ``Tuner.run_trial`` calls
``HyperModel.fit``; AutoKeras's ``_build_and_fit_model`` or a user's own
``run_trial`` call ``model.fit`` themselves. What every path shares is the
model ``build`` returned and a ``fit`` on that model. So ``build`` leaves the
arm *pending* in an ``ArmStamp`` on the model and routes the model's own
``fit`` through ``AutoInitHyperModel``: whichever fit comes first applies the
arm, once, at that fit's batch size. Nothing reads the call stack.

Weights that changed after ``build`` drew them (or the arm did) are never
initialized again: the model's ``load_weights`` and ``set_weights`` (how
keras-tuner's ``load_model``, ``get_best_models`` and Hyperband reload a
checkpoint) mark the stamp reloaded, and a fingerprint of the weights, taken
when the stamp is made and when the arm is applied, catches any other change
(``variable.assign``) before a fit initializes.
"""

import hashlib
import types
import weakref

import keras
import numpy as np

PENDING = "pending"  # the arm waits for the first fit (which knows the batch size and the data)
APPLIED = "applied"  # the weights hold the arm, drawn with ``seed`` and probed at ``probe_batch``
RELOADED = "reloaded"  # weights loaded, set or changed after they were drawn: never initialize
DEFAULT = "default"  # the default arm: Keras's own initializers, nothing to apply
STATES = (PENDING, APPLIED, RELOADED, DEFAULT)
KERAS_DEFAULT_BATCH = 32  # ``Model.fit``'s batch size when none is given
_ATTRIBUTE = "_autoinit_nas_stamp"


class ArmStamp:
    """The arm state of one built model, and who applies it (an ``AutoInitHyperModel``).

    Example:
        >>> import keras
        >>> x = keras.Input((4,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> stamp = ArmStamp(None, None, "autoinit", 7, model, PENDING)
        >>> stamp.holds(model, "autoinit", 7, 32), stamp.can_initialize(model)
        (False, True)
        >>> _ = model.layers[-1].bias.assign([1.0, 2.0])  # any change after the draw: never initialize
        >>> stamp.can_initialize(model), stamp.state
        (False, 'reloaded')
    """

    def __init__(self, owner, hp, arm, seed, model, state, probe_batch=None, fields=None):
        if state not in STATES:
            raise ValueError(f"`state` must be one of {STATES}. Received: state={state!r}")
        self.owner, self.hp, self.arm, self.seed = owner, hp, arm, seed
        self.model_id, self._model = id(model), weakref.ref(model)
        self.fingerprint = weights_fingerprint(model) if state == PENDING else None  # as build drew them
        self.state, self.probe_batch, self.fields = state, probe_batch, fields
        self.trained = False  # a fit started on these weights: never initialize them again
        self.managed = False  # AutoInitHyperModel.fit is running: the hook only checks the batch
        self.reapplied = None  # fields of an arm the hook moved to another batch inside ``fit``

    def holds(self, model, arm, seed, probe_batch):
        """True when ``model`` is the model stamped and its weights are ``arm`` drawn with ``seed`` at ``probe_batch``."""
        return (
            self.state == APPLIED
            and self.model_id == id(model)
            and (self.arm, self.seed, self.probe_batch) == (arm, seed, probe_batch)
        )

    def applied(self, arm, seed, probe_batch, fields):
        """Note that the weights now hold ``arm`` drawn with ``seed`` at ``probe_batch`` (and fingerprint them)."""
        self.state, self.arm, self.seed, self.probe_batch, self.fields = APPLIED, arm, seed, probe_batch, fields
        model = self._model()
        self.fingerprint = weights_fingerprint(model) if model is not None else None

    def can_initialize(self, model):
        """True while ``model``'s weights are exactly as ``build`` or the arm drew them, and no fit trained them.

        False once reloaded or trained; weights that differ from the
        fingerprint (set or assigned since) turn the state to ``RELOADED``.
        """
        if self.trained or self.state not in (PENDING, APPLIED):
            return False
        now = weights_fingerprint(model) or {}
        if any(now.get(key) != digest for key, digest in (self.fingerprint or {}).items()):
            self.state = RELOADED
            return False
        return True


def weights_fingerprint(model):
    """A digest of each of ``model``'s weights, by variable; None while it has none (not built yet).

    One pass over the weights (each copied to the host once); variables
    created later (a model built by its first fit) are not in it.

    Example:
        >>> import keras
        >>> x = keras.Input((4,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> before = weights_fingerprint(model)
        >>> model.set_weights([w + 1 for w in model.get_weights()])
        >>> len(before), before == weights_fingerprint(model)
        (2, False)
    """
    digests = {}
    for variable in getattr(model, "weights", None) or []:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
        digests[id(variable)] = hashlib.blake2b(value.view(np.uint8), digest_size=16).digest()
    return digests or None


def stamp_of(model):
    """The stamp ``build`` put on ``model``; None for other models (and for copies, whose identity differs).

    Example:
        >>> stamp_of(object()) is None
        True
    """
    stamp = getattr(model, _ATTRIBUTE, None)
    if isinstance(stamp, ArmStamp) and stamp.model_id == id(model):
        return stamp
    return None


def mark(model, stamp):
    """Put ``stamp`` on ``model``; route ``model.fit`` through ``stamp.owner.fit_hook``, and mark loaded weights.

    The hooks are bound to the model (a copy of the model gets its own binding,
    and ``stamp_of`` disowns the copied stamp) and call the class's methods;
    ``load_weights`` and ``set_weights`` turn the stamp ``RELOADED``.

    Example:
        >>> import keras
        >>> x = keras.Input((4,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> mark(model, ArmStamp(None, None, "default", 0, model, DEFAULT)).state
        'default'
    """
    # Plain attributes: Keras would otherwise track them as layer state.
    object.__setattr__(model, _ATTRIBUTE, stamp)
    object.__setattr__(model, "fit", types.MethodType(_fit_through_stamp, model))
    object.__setattr__(model, "load_weights", types.MethodType(_load_weights_through_stamp, model))
    object.__setattr__(model, "set_weights", types.MethodType(_set_weights_through_stamp, model))
    return stamp


def plain_fit(model, *args, **kwargs):
    """``model``'s class ``fit``, past the hook."""
    return type(model).fit(model, *args, **kwargs)


def _fit_through_stamp(model, *args, **kwargs):
    stamp = stamp_of(model)
    if stamp is None or stamp.owner is None:
        return plain_fit(model, *args, **kwargs)
    return stamp.owner.fit_hook(model, stamp, args, kwargs)


def _load_weights_through_stamp(model, *args, **kwargs):
    """``model.load_weights`` of a stamped model: the class's, then the stamp turns ``RELOADED``."""
    return _weights_replaced(model, type(model).load_weights(model, *args, **kwargs))


def _set_weights_through_stamp(model, *args, **kwargs):
    """``model.set_weights`` of a stamped model: the class's, then the stamp turns ``RELOADED``."""
    return _weights_replaced(model, type(model).set_weights(model, *args, **kwargs))


def _weights_replaced(model, result):
    """After ``model``'s weights were loaded or set: they are never initialized again."""
    stamp = stamp_of(model)
    if stamp is not None:
        stamp.state = RELOADED
    return result


def fit_batch_size(args, kwargs):
    """The batch size a ``Model.fit(*args, **kwargs)`` call trains with.

    A batched ``x`` batches itself (``Model.fit`` ignores ``batch_size``
    then): its ``batch_size`` attribute (a ``keras.utils.PyDataset`` that
    keeps one, as Keras's example does; a torch ``DataLoader``) or a
    ``tf.data`` dataset's static batch dimension; else ``batch_size`` given by
    keyword or position; else Keras's default, 32 (also for a ``PyDataset``
    that keeps no ``batch_size``: its batches are not read to find out).

    Example:
        >>> fit_batch_size((), {"batch_size": 16}), fit_batch_size(([1], [0], 8), {}), fit_batch_size((), {})
        (16, 8, 32)
    """
    x = args[0] if args else kwargs.get("x")
    size = _own_batch(x)
    if size is None:
        size = kwargs.get("batch_size")
    if size is None and len(args) > 2:
        size = args[2]
    return int(size) if size else KERAS_DEFAULT_BATCH


def _own_batch(x):
    """The batch size a batched ``x`` keeps (``batch_size`` attribute, or a dataset's static batch); None if not."""
    size = getattr(x, "batch_size", None)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0:
        return int(size)
    return _dataset_batch(x)


def _dataset_batch(x):
    """The static batch dimension of a batched ``tf.data`` dataset (None when unknown)."""
    spec = getattr(x, "element_spec", None)
    while isinstance(spec, (tuple, list)) and spec:
        spec = spec[0]
    if isinstance(spec, dict) and spec:
        spec = next(iter(spec.values()))
    shape = getattr(spec, "shape", None)
    if shape is None or not len(shape):
        return None
    return shape[0]
