"""Reading weights and tensors of any backend as numpy arrays, quietly.

Keras 3.15's variables and its TensorFlow and PyTorch tensor conversion call
``np.array(x)`` on objects whose ``__array__`` takes no ``copy`` keyword, and
numpy 2 answers each such call with a DeprecationWarning. The warning is about
Keras's code, not the caller's, so it is silenced here, for exactly that
message, instead of reaching every user whose tests turn warnings into errors.
"""

import typing
import warnings

import keras
import numpy as np

_KERAS_COPY_KEYWORD = "__array__ implementation doesn't accept a copy keyword"


def to_numpy(value, dtype=None):
    """A ``keras.Variable``, backend tensor or array-like as a numpy array.

    Example:
        >>> import keras
        >>> to_numpy(keras.Variable([1.0, 2.0]), dtype=float).tolist()
        [1.0, 2.0]
    """
    if isinstance(value, keras.Variable):
        value = value.value
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_KERAS_COPY_KEYWORD, category=DeprecationWarning)
        array = keras.ops.convert_to_numpy(value)
    return np.asarray(array, dtype=dtype)


class MeasuredOutput(typing.NamedTuple):
    """A tensor an estimator's ``probe_call`` computed, with its (mean, variance) already known.

    Lets the probe skip reading the tensor back when the op that made it
    also gave its moments (BatchNormalization's per-channel batch statistics).

    Example:
        >>> MeasuredOutput(np.zeros(3), (0.0, 0.0)).moments
        (0.0, 0.0)
    """

    value: typing.Any
    moments: tuple
