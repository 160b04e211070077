"""The one place where AutoInit checks and clamps what its estimators produce.

Every estimate the graph walk stores passes through ``checked_moments``, and
every weight variance an estimator plans passes through ``clamp_weight_variance``
(called by ``WeightedLayerEstimator.plan_weight``). Degenerate statistics are
clamped, never divided by, and each cause is reported once per
``initialize_model`` call by a ``Diagnostics`` collector (not once per layer):

* ``overflow``: a predicted mean or variance beyond float32's range (or
  infinite): the signal overflows in the real network too. Clamped to
  +-``MOMENT_LIMIT`` so the walk can go on.
* ``vanishing_input``: a weighted layer's input has (near-)zero second moment
  E[x^2] (a dead ReLU path, an all-zero input, ``input_data_var=0`` with zero
  mean): there is no scale to match, so its weights get fan-in scaling
  (variance ``signal_variance / fan_in``: the scale a unit-power input would
  get), and a recurrent layer's recurrent kernel the gain it gets at a
  matched input (``estimators/recurrent.py``). Any finite moments, from 0 to
  ``MOMENT_LIMIT``, give finite estimates and weight plans
  (``tests/estimators/test_degenerate_inputs.py``, every registered class).
* ``weight_variance``: a weight variance outside ``WEIGHT_VARIANCE_LIMITS``
  (float32 could not hold the weights, or they would be denormal): clamped.
* ``outside_domain``: the Gaussian approximation of an input puts mass where
  the layer's function is undefined (log or sqrt of a non-negative signal
  such as abs(x)): moments over the domain.
* ``empty_input``: a weighted layer with zero fan-in (an input with a
  zero-size axis): its output is constant, its kernel has no entries.
* ``unsupported``: a layer with no estimator (one warning per class).

What is a bug rather than a degenerate statistic is an error naming the
estimator and the layer: a result of the wrong type or shape, a NaN, a
negative variance.

Example:
    >>> diagnostics = Diagnostics()
    >>> checked_moments((float("inf"), 1.0), "MyEstimator", "dense", 1, diagnostics)
    [(3.4028234663852886e+38, 1.0)]
    >>> sorted(diagnostics.causes)
    ['overflow']
"""

import math
import numbers
import warnings

import numpy as np

# Largest |mean| and variance an estimate may hold: float32's maximum. A
# float32 signal beyond it is inf in the real network.
MOMENT_LIMIT = float(np.finfo(np.float32).max)
# A weighted layer whose input second moment is below this share of its
# target would need a gain above 10^6 over fan-in scaling: its input is dead,
# not small.
VANISHING_RATIO = 1e-12
# Weight variances whose standard deviation (1e-18 .. 1e18) float32 holds as
# a normal number with room for the products and sums of a forward pass.
WEIGHT_VARIANCE_LIMITS = (1e-36, 1e36)
# How many layer names a warning lists before "and N more".
_NAMES_SHOWN = 5


class AutoInitWarning(UserWarning):
    """A degenerate statistic AutoInit clamped; ``cause`` says which kind.

    One is issued per cause per ``initialize_model`` call, naming the layers
    it affected.
    """

    def __init__(self, message, cause=None, layers=()):
        super().__init__(message)
        self.cause = cause
        self.layers = tuple(layers)


_MESSAGES = {
    "overflow": (
        "the predicted signal overflows float32 (mean or variance beyond {limit:.3g}, or "
        "infinite); the estimates were clamped to +-{limit:.3g}. The model itself will "
        "produce inf or NaN there (e.g. stacked exponentials); AutoInit cannot fix that."
    ),
    "vanishing_input": (
        "the input of a weighted layer has a second moment E[x^2] too small to match: "
        "below {ratio:g} x signal_variance, so matching it would take a weight gain above "
        "10^6 over fan-in scaling (a dead ReLU path, an all-zero input, input_data_var=0 "
        "with zero mean, or a signal_variance far above the data's scale); those weights "
        "were scaled by fan-in only (variance signal_variance / fan_in; recurrent kernels "
        "keep the gain of a matched input). If the data "
        "really is this small, pass its moments as input_data_mean/input_data_var or "
        "rescale it."
    ),
    "weight_variance": (
        "a weight variance fell outside [{low:g}, {high:g}] (float32 could not hold the "
        "weights, or they would be denormal) and was clamped; the layer's output scale "
        "is predicted with the clamped variance."
    ),
    "outside_domain": (
        "the Gaussian approximation of a layer's input puts probability on values where "
        "the layer's function is undefined (log or sqrt of negative values, e.g. after "
        "abs or relu, whose output is not Gaussian); the moments were taken over the "
        "function's domain. If the input really can be negative there, the model itself "
        "produces NaN."
    ),
    "empty_input": (
        "a weighted layer has zero fan-in (its input has a zero-size axis): its kernel "
        "has no entries and its output is constant."
    ),
}


class Diagnostics:
    """Collects degenerate-statistic events and warns once per cause.

    ``record(cause, layer, detail)`` notes an event; ``emit()`` issues one
    ``AutoInitWarning`` per cause, listing the affected layers. Layers
    without an estimator use ``record_unsupported`` (one warning per class,
    issued at once with the message the original library used).
    """

    def __init__(self):
        self.causes = {}  # cause -> list of (layer name, detail)
        self._unsupported = set()

    def record(self, cause, layer, detail=""):
        if cause not in _MESSAGES:
            raise ValueError(f"Unknown diagnostic cause {cause!r}; expected one of {sorted(_MESSAGES)}.")
        entries = self.causes.setdefault(cause, [])
        if (layer, detail) not in entries:
            entries.append((layer, detail))

    def record_unsupported(self, layer_name, class_name, stacklevel=5, measured=False):
        if class_name in self._unsupported:
            return
        self._unsupported.add(class_name)
        effect = (
            "probe propagation measures what it does, but its own weights (if any) keep their "
            "initializer" if measured else "its input mean and variance pass through unchanged"
        )
        warnings.warn(
            AutoInitWarning(
                f"No estimator for layer '{layer_name}' of class {class_name}; {effect}. "
                "Register one with AutoInit("
                f"custom_distribution_estimators={{{class_name}: ...}}).",
                cause="unsupported",
                layers=(layer_name,),
            ),
            stacklevel=stacklevel,
        )

    def emit(self, stacklevel=4):
        for cause, entries in self.causes.items():
            names = list(dict.fromkeys(layer for layer, _ in entries))
            shown = ", ".join(f"'{name}'" for name in names[:_NAMES_SHOWN])
            if len(names) > _NAMES_SHOWN:
                shown += f" and {len(names) - _NAMES_SHOWN} more"
            first_detail = next((detail for _, detail in entries if detail), "")
            detail = f" First case: {first_detail}." if first_detail else ""
            text = _MESSAGES[cause].format(
                limit=MOMENT_LIMIT, ratio=VANISHING_RATIO,
                low=WEIGHT_VARIANCE_LIMITS[0], high=WEIGHT_VARIANCE_LIMITS[1],
            )
            warnings.warn(
                AutoInitWarning(
                    f"AutoInit ({cause}) at {len(names)} layer(s) {shown}: {text}{detail}",
                    cause=cause, layers=names,
                ),
                stacklevel=stacklevel,
            )


def clamp_weight_variance(variance, layer, attribute, diagnostics):
    """``variance`` clamped to ``WEIGHT_VARIANCE_LIMITS``, recording cause ``weight_variance``.

    A NaN variance is an estimator bug: a ValueError naming the layer.
    """
    low, high = WEIGHT_VARIANCE_LIMITS
    variance = float(variance)
    if math.isnan(variance):
        raise ValueError(
            f"The planned variance of weight `{attribute}` of layer '{layer}' is NaN; "
            "this is a bug in its estimator."
        )
    if low <= variance <= high:
        return variance
    clamped = min(max(variance, low), high)
    diagnostics.record("weight_variance", layer, f"`{attribute}` variance {variance:.3g} -> {clamped:.3g}")
    return clamped


def _is_number(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return True
    return isinstance(value, np.ndarray) and value.shape == () and np.issubdtype(value.dtype, np.number)


def checked_moments(result, estimator_name, key, output_count, diagnostics):
    """An estimator's return value as one finite (mean, var) per output.

    Accepts (mean, var), [mean, var], or a list of ``output_count`` such
    pairs. Structural problems, NaNs and negative variances raise a
    ValueError naming the estimator and the layer; infinities and values
    beyond float32's range are clamped to +-``MOMENT_LIMIT`` (cause
    ``overflow``).
    """

    def bad(reason):
        return ValueError(
            f"{estimator_name}.estimate for layer '{key}' {reason}. "
            f"Expected (mean, var) with finite numbers and var >= 0, or a list of "
            f"{output_count} such pairs (one per output). Received: {result!r}"
        )

    if isinstance(result, list) and len(result) == 2 and all(_is_number(value) for value in result):
        result = tuple(result)
    if isinstance(result, list):
        pairs = result
        if len(pairs) != output_count:
            raise bad(f"returned {len(pairs)} pairs for a layer with {output_count} output(s)")
    elif isinstance(result, tuple) and len(result) == 2:
        pairs = [result] * output_count
    elif isinstance(result, np.ndarray):
        raise bad(f"returned an array of shape {result.shape}")
    else:
        raise bad(f"returned a {type(result).__name__}")
    checked = []
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise bad(f"returned {pair!r} where a (mean, var) pair was expected")
        values = []
        for name, value in zip(("mean", "var"), pair):
            if isinstance(value, np.ndarray) and value.size == 1:
                value = value.reshape(())
            if isinstance(value, np.ndarray):
                raise bad(f"returned a {name} of shape {value.shape} where a scalar was expected")
            if not _is_number(value):
                raise bad(f"returned a non-numeric {name} ({type(value).__name__})")
            values.append(float(value))
        mean, var = values
        if math.isnan(mean) or math.isnan(var):
            raise bad(
                "returned NaN (if the layer computes a function that is undefined for part "
                "of its input, such as log or sqrt of a signal that can be negative, the "
                "model itself produces NaN there)"
            )
        if var < 0:
            raise bad("returned a negative variance")
        if abs(mean) > MOMENT_LIMIT or var > MOMENT_LIMIT:
            clamped = (min(max(mean, -MOMENT_LIMIT), MOMENT_LIMIT), min(var, MOMENT_LIMIT))
            diagnostics.record("overflow", key, f"(mean, var) = ({mean:.3g}, {var:.3g})")
            mean, var = clamped
        checked.append((mean, var))
    return checked
