"""What a built candidate's weights hold (arm, seed, probe batch), and the hook on its ``fit`` that applies a pending arm.

keras-tuner tells a HyperModel nothing about the trial that builds it, and a
tuner may train a candidate however it likes: ``Tuner.run_trial`` calls
``HyperModel.fit``; AutoKeras's ``_build_and_fit_model`` or a user's own
``run_trial`` call ``model.fit`` themselves. What every path shares is the
model ``build`` returned and a ``fit`` on that model. So ``build`` leaves the
arm *pending* in an ``ArmStamp`` on the model and routes the model's own
``fit`` through ``AutoInitHyperModel``: whichever fit comes first applies the
arm, once, at that fit's batch size. Nothing reads the call stack.
"""

import types

PENDING = "pending"  # the arm waits for the first fit (which knows the batch size and the data)
APPLIED = "applied"  # the weights hold the arm, drawn with ``seed`` and probed at ``probe_batch``
RELOADED = "reloaded"  # the tuner loads an earlier trial's weights (Hyperband): never initialize
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
        >>> stamp.holds(model, "autoinit", 7, 32)
        False
    """

    def __init__(self, owner, hp, arm, seed, model, state, probe_batch=None, fields=None):
        if state not in STATES:
            raise ValueError(f"`state` must be one of {STATES}. Received: state={state!r}")
        self.owner, self.hp, self.arm, self.seed = owner, hp, arm, seed
        self.model_id = id(model)
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
        """Note that the weights now hold ``arm`` drawn with ``seed`` at ``probe_batch``."""
        self.state, self.arm, self.seed, self.probe_batch, self.fields = APPLIED, arm, seed, probe_batch, fields


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
    """Put ``stamp`` on ``model`` and route ``model.fit`` through ``stamp.owner.fit_hook``.

    The hook is bound to the model (a copy of the model gets its own binding,
    and ``stamp_of`` disowns the copied stamp), and calls the class's ``fit``.

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
    return stamp


def plain_fit(model, *args, **kwargs):
    """``model``'s class ``fit``, past the hook."""
    return type(model).fit(model, *args, **kwargs)


def _fit_through_stamp(model, *args, **kwargs):
    stamp = stamp_of(model)
    if stamp is None or stamp.owner is None:
        return plain_fit(model, *args, **kwargs)
    return stamp.owner.fit_hook(model, stamp, args, kwargs)


def fit_batch_size(args, kwargs):
    """The batch size a ``Model.fit(*args, **kwargs)`` call trains with.

    ``batch_size`` given by keyword or position; else the static batch
    dimension of a ``tf.data`` dataset ``x``; else Keras's default, 32.

    Example:
        >>> fit_batch_size((), {"batch_size": 16}), fit_batch_size(([1], [0], 8), {}), fit_batch_size((), {})
        (16, 8, 32)
    """
    size = kwargs.get("batch_size")
    if size is None and len(args) > 2:
        size = args[2]
    if size is None:
        x = args[0] if args else kwargs.get("x")
        size = _dataset_batch(x)
    return int(size) if size else KERAS_DEFAULT_BATCH


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
