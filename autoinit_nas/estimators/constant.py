"""Constants inside opened custom layers: a tensor ``call()`` makes without its inputs.

When AutoInit opens a custom layer (``core/graph.py``), a sublayer that
``call()`` feeds a value computed without the layer's inputs (the positions
``ops.arange(length)`` of a position embedding, a learned query held in a
variable) would run once, eagerly, at tracing time and never appear in the
graph, so its weights could not be initialized. The trace calls it on a
``TracedConstant`` node instead, which outputs that value; its estimator gives
the value's exact moments.

Example:
    >>> import keras, numpy as np
    >>> anchor = keras.Input((4,))
    >>> positions = TracedConstant(np.arange(4))(anchor)
    >>> tuple(positions.shape)
    (4,)
"""

import keras
import numpy as np

from autoinit_nas.estimators.base import LayerOutputDistributionEstimator
from autoinit_nas.estimators.registry import register
from autoinit_nas.estimators.values import to_numpy


class TracedConstant(keras.layers.Layer):
    """Outputs ``value`` whatever it is called on (a graph node for a constant).

    The argument it is called on only anchors the node to the traced graph.
    A ``keras.Variable`` value is read at every call, so the node follows
    later assignments to it. Not serializable: it lives only in AutoInit's
    traced views of a model, never in the model itself.
    """

    def __init__(self, value, **kwargs):
        super().__init__(trainable=False, **kwargs)
        # Not tracked as a weight of this layer: the value belongs to its owner.
        object.__setattr__(self, "value", value)

    def call(self, anchor):
        return keras.ops.convert_to_tensor(self.current())

    def current(self):
        """The value now: a variable's present value, anything else as stored."""
        return self.value.value if isinstance(self.value, keras.Variable) else self.value

    def compute_output_spec(self, anchor):
        return keras.KerasTensor(tuple(self.value.shape), dtype=keras.backend.standardize_dtype(self.value.dtype))


@register(TracedConstant)
class ConstantEstimator(LayerOutputDistributionEstimator):
    """The constant's own mean and variance, computed exactly from its values."""

    method = "exact"

    def estimate(self, means_in, vars_in):
        values = to_numpy(self.layer.current(), dtype=np.float64)
        return float(values.mean()), float(values.var())
