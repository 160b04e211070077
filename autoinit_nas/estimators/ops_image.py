"""Image ``keras.ops`` nodes: ``ops.image.extract_patches`` (the keras-io ViT's ``Patches`` layer).

Patches rearrange the image's values: each output element is one input
element, or a zero where a ``padding="same"`` window hangs over the border.
"""

from keras.src.ops import image as kimage

from autoinit_nas.maths import gaussian, windows
from autoinit_nas.estimators.ops import OpEstimator
from autoinit_nas.estimators.registry import register


def _per_axis(value, count):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * count


@register(kimage.ExtractPatches)
class ExtractPatchesEstimator(OpEstimator):
    """Patches of i.i.d. pixels: the input's moments, mixed with the padding's zeros.

    A fraction p of the output elements are input pixels (p = 1 for
    ``padding="valid"``; for "same", the mean share of each window's taps
    inside the image, ``windows.mean_valid_fraction``) and the rest zeros:
    E = p m, E[y^2] = p (v + m^2). Overlapping windows repeat pixels, which
    leaves these averages unchanged.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        op = self.node.operation
        shape = self.input_shapes[0]
        rank = len(op.size)
        spatial = shape[1:1 + rank] if op.data_format == "channels_last" else shape[2:2 + rank]
        fraction = windows.mean_valid_fraction(
            spatial, op.size, _per_axis(op.strides, rank), _per_axis(op.dilation_rate, rank),
            op.padding.lower(),
        )
        first = fraction * means_in[0]
        second = fraction * gaussian.second_moment(means_in[0], vars_in[0])
        return first, gaussian.variance_from_moments(first, second)
