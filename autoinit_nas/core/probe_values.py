"""Probe tensors and their moments: what the probe carries between layers, and how it reads it.

A ``ProbeValue`` holds one tensor of the probe batch and, computed once when
asked, its mean and variance, read by the backend's own reductions in bounded
slices (no float64 copy of a large tensor is ever made). ``release()`` drops
the tensor and keeps the moments, so the walk holds only tensors still read.
"""

import keras
import numpy as np

from autoinit_nas.estimators.values import to_numpy

# Values per slice when moments are read in pieces: float64 temporaries of
# 8 MB, whatever the tensor's size.
_MOMENT_CHUNK = 2**20


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
    """(mean, variance) of a backend tensor's values, by the backend, in slices of ``_MOMENT_CHUNK``.

    The backend's own reductions (multi-threaded) read each slice's float32
    mean and variance; slices are merged in float64 with the pairwise update
    of Chan et al. A copy to numpy of every tensor (what the probe once did)
    took half of ResNet50's probe time and a full copy of each tensor.
    """
    if isinstance(value, np.ndarray):
        return array_moments(value)
    flat = keras.ops.reshape(value, (-1,))
    if flat.dtype != "float32":
        flat = keras.ops.cast(flat, "float32")
    size = int(flat.shape[0])
    if size == 0:
        return float("nan"), float("nan")
    count, mean, squares = 0, 0.0, 0.0
    for start in range(0, size, _MOMENT_CHUNK):
        piece = flat[start:start + _MOMENT_CHUNK] if size > _MOMENT_CHUNK else flat
        piece_size = int(piece.shape[0])
        # One call for both: the mean is read once, not again inside var().
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
