"""Probe tensors and their moments: what the probe carries between layers, and how it reads it.

A ``ProbeValue`` holds one tensor of the probe batch and, computed once when
asked, its mean and variance, read by the backend's own reductions with one
read back to the host per tensor (no float64 copy of a large tensor is ever
made). ``release()`` drops the tensor and keeps the moments, so the walk holds
only tensors still read.
"""

import math

import keras
import numpy as np

from autoinit_nas.estimators.values import to_numpy

# Values per slice (numpy arrays: float64 temporaries of 8 MB) or per row
# (backend tensors: float32 reductions) when moments are read in pieces.
_MOMENT_CHUNK = 2**20
# One-pass moments (E[x^2] - mean^2) only where mean^2 <= this x variance:
# cancellation then costs at most ~1e-5 of the variance.
_CANCELLATION = 1e2


def value_shape(value):
    """The concrete shape of an eager tensor or array, as a tuple of ints.

    Reads ``value.shape`` where every dimension is known (eager TensorFlow,
    JAX, PyTorch and numpy values always are): ``keras.ops.shape`` goes
    through the op dispatcher, about 0.1 ms a call, which the probe paid
    several times per layer.

    Example:
        >>> value_shape(np.zeros((2, 3)))
        (2, 3)
    """
    shape = getattr(value, "shape", None)
    if shape is not None:
        try:
            return tuple(int(dim) for dim in shape)
        except (TypeError, ValueError):  # an unknown dimension: ask the backend
            pass
    return tuple(int(dim) for dim in keras.ops.shape(value))


def array_moments(array):
    """(mean, variance) of all of ``array``'s values, in float64, read in bounded slices.

    Two passes (the mean, then squared deviations from it), so no float64
    copy of a large tensor is ever made.

    Example:
        >>> array_moments(np.array([1.0, 2.0, 3.0], np.float32))
        (2.0, 0.6666666666666666)
    """
    flat = np.asarray(array).reshape(-1)
    if flat.size == 0:
        return float("nan"), float("nan")
    chunks = range(0, flat.size, _MOMENT_CHUNK)
    total = sum(float(np.sum(flat[i:i + _MOMENT_CHUNK], dtype=np.float64)) for i in chunks)
    mean = total / flat.size
    squares = 0.0
    for i in chunks:
        deviation = flat[i:i + _MOMENT_CHUNK].astype(np.float64) - mean
        squares += float(np.dot(deviation, deviation))
    return mean, squares / flat.size


def tensor_moments(value):
    """(mean, variance) of a backend tensor's values, by the backend, in rows of at most ``_MOMENT_CHUNK``.

    The tensor is viewed as rows (its leading axes, as few as keep a row
    within ``_MOMENT_CHUNK`` values; no copy), the backend's own reduction
    reads every row's float32 mean and variance in one call, and the rows
    are merged in float64 (equal sizes: the mean of the variances plus the
    variance of the means). A copy to numpy of every tensor (what the probe
    once did) took half of ResNet50's probe time; slicing it into chunks read
    one by one took twice as long as this.
    """
    if isinstance(value, np.ndarray):
        return array_moments(value)
    shape = value_shape(value)
    size = math.prod(shape)
    if size == 0:
        return float("nan"), float("nan")
    if keras.backend.backend() == "tensorflow":
        moments = _tensorflow_moments(value, size)
        if moments is not None:
            return moments
    rows = _rows(shape)
    if rows is None:
        return _chunked_moments(value, size)
    table = keras.ops.reshape(value, (rows, size // rows))
    if table.dtype != "float32":
        table = keras.ops.cast(table, "float32")
    means, variances = keras.ops.moments(table, axes=[1])
    means = np.asarray(to_numpy(means), np.float64)
    variances = np.asarray(to_numpy(variances), np.float64)
    mean = float(np.mean(means))
    return mean, float(np.mean(variances) + np.mean(np.square(means - mean)))


def _tensorflow_moments(value, size):
    """(mean, variance) from one read of ``sum(x)`` and ``sum(x^2)``, or None where that is unsafe.

    TensorFlow's ``reduce_sum`` and ``l2_loss`` are single fused passes
    (about four times faster than ``tf.nn.moments``, which reads the tensor
    three times and writes it once) and tree reductions, accurate to ~1e-7
    relative even over 10^8 float32 values. ``E[x^2] - mean^2`` loses about
    float32's epsilon times ``mean^2 / var`` to cancellation, so a tensor
    whose mean dominates its spread (``_CANCELLATION``) is read in two
    passes instead (None), as is anything but a dense eager tensor.
    """
    import tensorflow as tf

    if not isinstance(value, tf.Tensor) or not (value.dtype.is_floating or value.dtype.is_integer):
        return None
    flat = value if value.dtype == tf.float32 else tf.cast(value, tf.float32)
    sums = tf.stack([tf.reduce_sum(flat), tf.nn.l2_loss(flat)]).numpy().astype(np.float64)
    mean = sums[0] / size
    var = 2.0 * sums[1] / size - mean * mean
    if not (math.isfinite(mean) and math.isfinite(var)) or mean * mean > _CANCELLATION * var:
        return None
    return float(mean), float(var)


def _rows(shape):
    """The product of the fewest leading axes that leaves rows of <= ``_MOMENT_CHUNK`` values, or None."""
    rows, size = 1, math.prod(shape)
    for dim in shape[:-1]:
        if size // rows <= _MOMENT_CHUNK:
            break
        rows *= dim
    return rows if size // rows <= _MOMENT_CHUNK else None


def _chunked_moments(value, size):
    """``tensor_moments`` of a tensor whose last axis alone exceeds ``_MOMENT_CHUNK``: slice by slice.

    Slices are merged in float64 with the pairwise update of Chan et al.
    """
    flat = keras.ops.reshape(value, (-1,))
    if flat.dtype != "float32":
        flat = keras.ops.cast(flat, "float32")
    count, mean, squares = 0, 0.0, 0.0
    for start in range(0, size, _MOMENT_CHUNK):
        piece = flat[start:start + _MOMENT_CHUNK]
        piece_size = int(piece.shape[0])
        piece_mean, piece_var = keras.ops.moments(piece, axes=[0])
        piece_mean = float(to_numpy(piece_mean))
        piece_var = float(to_numpy(piece_var))
        delta, total = piece_mean - mean, count + piece_size
        squares += piece_var * piece_size + delta * delta * count * piece_size / total
        mean += delta * piece_size / total
        count = total
    return mean, squares / count


class ProbeValue:
    """A probe tensor and, computed once when asked, its mean and variance.

    ``release()`` drops the tensor once no later layer reads it (its moments
    are kept for the estimates), so the walk holds only live tensors.
    """

    __slots__ = ("value", "_moments")

    def __init__(self, value, moments=None):
        self.value = value
        self._moments = None if moments is None else (float(moments[0]), float(moments[1]))

    @property
    def moments(self):
        if self._moments is None:
            self._moments = tensor_moments(self.value)
        return self._moments

    def release(self):
        if self.value is not None:
            self.moments  # noqa: B018 - read before the values go
            self.value = None
