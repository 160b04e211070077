"""Measure what a model actually does to a batch, layer by layer.

The counterpart of ``return_estimates``: runs real data through the same graph
walk AutoInit uses and reports the mean and variance of every layer's output
under the same entry names ("outer/inner", "name@i"), so predictions and
measurements line up one to one, nested and shared layers included.

Example:
    >>> import keras, numpy as np
    >>> x = keras.Input((8,))
    >>> model = keras.Model(x, keras.layers.Dense(4, name="d")(x))
    >>> moments = measure_moments(model, np.ones((2, 8), "float32"))
    >>> sorted(moments)
    ['d', 'input_layer']
"""

import keras
import numpy as np

from autoinit_nas.core import graph
from autoinit_nas.estimators.values import to_numpy


def _moments(value):
    array = to_numpy(value, dtype=np.float64)
    return float(array.mean()), float(array.var())


def _as_input(array):
    """Integer arrays (token ids for an Embedding) stay integers; anything else becomes float32."""
    array = np.asarray(array)
    return array if np.issubdtype(array.dtype, np.integer) else array.astype("float32")


def measure_moments(model, inputs, training=True):
    """{entry name: (mean, var)} of every layer's output on ``inputs``.

    Args:
        model: a Functional or built Sequential model.
        inputs: an array, or a list with one array per model input
            (integer arrays, such as token ids, are passed as they are;
            others as float32).
        training: call layers in training mode (dropout active, batch
            statistics in normalization), the mode AutoInit predicts.
    """
    model_inputs, _ = graph.graph_of(model)
    batch = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    if len(batch) != len(model_inputs):
        raise ValueError(
            f"Model '{model.name}' has {len(model_inputs)} inputs; received {len(batch)} arrays."
        )
    values = [keras.ops.convert_to_tensor(_as_input(array)) for array in batch]

    def visit(node, key, values_in):
        # The walk hands over one value per signal tensor (masks left out).
        mapping = {id(tensor): value for tensor, value in zip(graph.signal_tensors(node), values_in)}
        args, kwargs = node.arguments.fill_in(mapping)
        operation = node.operation
        if isinstance(operation, keras.layers.Layer):
            kwargs = dict(kwargs, training=training)
        outputs = operation(*args, **kwargs)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    _, entries = graph.walk(model, values, visit)
    return {key: _moments(value) for key, value in entries.items()}
