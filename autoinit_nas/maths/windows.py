"""How many input elements each sliding window covers, from static shapes.

With ``padding="same"`` the windows at the borders hang over the edge and
cover fewer real inputs: a 3x3 convolution on an 8x8 map sees on average 84%
of its taps. Estimators use these counts to average per-position moments
instead of assuming every window is full.

Example:
    >>> valid_window_counts(4, kernel=3, stride=1, dilation=1, padding="same").tolist()
    [2, 3, 3, 2]
"""

import math

import numpy as np


def valid_window_counts(size, kernel, stride=1, dilation=1, padding="valid"):
    """Number of in-bounds taps of each output position along one axis.

    Follows the TensorFlow/Keras convention: "same" pads
    max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0) in total,
    the smaller half before; "valid" and "causal" windows are always full
    ("causal" pads only before, so early positions are short).
    """
    size, kernel, stride, dilation = int(size), int(kernel), int(stride), int(dilation)
    span = (kernel - 1) * dilation + 1
    if padding == "same":
        outputs = math.ceil(size / stride)
        pad_before = max((outputs - 1) * stride + span - size, 0) // 2
    elif padding == "causal":
        outputs = math.ceil(size / stride)
        pad_before = span - 1
    else:
        outputs = max((size - span) // stride + 1, 0)
        pad_before = 0
    starts = np.arange(outputs) * stride - pad_before
    taps = starts[:, None] + np.arange(kernel)[None, :] * dilation
    return ((taps >= 0) & (taps < size)).sum(axis=1)


def window_count_distribution(spatial, kernel, strides, dilations, padding):
    """Distinct per-position window sizes and how often each occurs.

    Returns (counts, frequencies) over all output positions of an N-D window,
    the product of the per-axis counts. ``spatial`` entries of None (unknown
    size) are treated as full windows.
    """
    counts = np.ones(1, dtype=np.int64)
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        if size is None:
            axis = np.asarray([k])
        else:
            axis = valid_window_counts(size, k, s, d, padding)
            if axis.size == 0:
                axis = np.asarray([k])
        counts = np.multiply.outer(counts, axis).ravel()
    values, frequency = np.unique(counts, return_counts=True)
    return values, frequency / frequency.sum()


def mean_valid_fraction(spatial, kernel, strides, dilations, padding):
    """Average fraction of a window's taps that fall on real inputs."""
    values, weights = window_count_distribution(spatial, kernel, strides, dilations, padding)
    return float(np.dot(values, weights)) / math.prod(int(k) for k in kernel)
