"""The probe's batch: how many examples it carries, and what each model input receives.

``batch_size`` sizes the batch from ``probe_batch`` (the batch users train
with) and the model's largest intermediate, attention scores included;
``synthetic_inputs`` draws one array per input (the probe's through
``probe_inputs``; the visualizer and benchmarks use it too): Gaussian noise
with the declared moments, or uniform token ids for an input that reaches an
Embedding (``embedding_vocabularies``, through casts, nested models and opened
custom layers).
"""

import math

import keras
import numpy as np

from autoinit_nas.core import graph

# Values per probe tensor the batch size aims for: the largest tensor of the
# model holds about this many. 2^16 reads a variance to ~1% (i.i.d.) and keeps
# a probe pass through a small conv net within tens of milliseconds.
PROBE_ELEMENTS = 2**16
# The batch users train with, unless they say otherwise (AutoInit's probe_batch).
DEFAULT_PROBE_BATCH = 32
MAX_BATCH = 1024
# Length used for dimensions the model leaves open (variable sequence length).
UNKNOWN_LENGTH = 16
# Probe inputs and dropout masks come from this stream of the sampling seed.
PROBE_STREAM = 0x70726F6265


class ProbeUnavailable(RuntimeError):
    """The probe cannot run through this model (AutoInit falls back to scalar mode)."""


def is_keras_builtin(operation):
    """True for Keras's own layers and ops (their class is defined under ``keras.``)."""
    return type(operation).__module__.startswith("keras.")


def _concrete(shape):
    return tuple(UNKNOWN_LENGTH if dim is None else int(dim) for dim in shape)


def _hidden_elements(node):
    """Elements per example of what a layer materializes inside its call: attention scores.

    An attention layer's (heads, queries, keys) score and weight tensors are
    usually its largest by far (the time-series transformer: 4 x 500 x 500
    per example against outputs of 500 x 1), and its output shape hides them.
    """
    operation = node.operation
    if not isinstance(
        operation,
        (keras.layers.MultiHeadAttention, keras.layers.GroupQueryAttention,
         keras.layers.Attention, keras.layers.AdditiveAttention),
    ):
        return 0
    tensors = graph.signal_tensors(node)
    if not tensors:
        return 0
    query = _concrete(tensors[0].shape[1:-1])
    keys = _concrete(tensors[1].shape[1:-1]) if len(tensors) > 1 else query
    heads = getattr(operation, "num_heads", None) or getattr(operation, "num_query_heads", None) or 1
    return int(heads) * math.prod(query) * math.prod(keys)


def _largest_example(model):
    """The most elements per example of any tensor the model computes (nested models included)."""
    largest = 1
    for tensor in graph.graph_of(model)[0]:
        largest = max(largest, math.prod(_concrete(tensor.shape[1:])))
    for node in graph.ordered_nodes(model):
        if graph.is_graph_model(node.operation):
            largest = max(largest, _largest_example(node.operation))
        largest = max(largest, _hidden_elements(node))
        for tensor in node.outputs:
            largest = max(largest, math.prod(_concrete(tensor.shape[1:])))
    return largest


def batch_size(model, probe_batch=DEFAULT_PROBE_BATCH):
    """Probe batch size: ``probe_batch``, or more where the model's largest tensor is small.

    Every layer's statistics come from at least ``probe_batch`` examples (the
    batch BatchNormalization and global pooling see in training). Beyond
    that, a model whose largest intermediate (attention scores included)
    holds fewer than ``PROBE_ELEMENTS`` values per batch gets more examples,
    up to ``MAX_BATCH``: a more precise reading at a cost (256 KB per
    tensor) far below one forward pass.

    Example:
        >>> import keras
        >>> x = keras.Input((224, 224, 3))
        >>> batch_size(keras.Model(x, keras.layers.Conv2D(8, 3)(x)))
        32
    """
    return int(max(probe_batch, min(MAX_BATCH, PROBE_ELEMENTS // _largest_example(model))))


# Layers that move token ids around without changing them.
_ID_PRESERVING = (keras.layers.Identity, keras.layers.Reshape, keras.layers.Flatten, keras.layers.Permute)


def _keeps_ids(operation):
    is_cast = type(operation).__name__ == "Cast" and is_keras_builtin(operation)
    return is_cast or isinstance(operation, _ID_PRESERVING)


def embedding_vocabularies(model, tensor, expand=None):
    """``input_dim`` of every Embedding that reads ``tensor`` as token ids.

    Found directly, through casts and reshapes, inside nested models, and
    inside custom layers: one that the walk opens (``graph.inner_graph``
    with the walk's ``expand``) is followed inside, so only the Embeddings
    that read ``tensor`` count (not a position embedding fed by
    ``ops.arange``); one that stays whole is assumed to feed ``tensor`` to
    every Embedding it owns. Any dtype: an Embedding casts float ids itself,
    and the keras-io text examples declare their token input as float.

    Example:
        >>> import keras
        >>> x = keras.Input((5,))  # float, as keras-io declares it
        >>> model = keras.Model(x, keras.layers.Embedding(100, 4)(keras.ops.cast(x, "int32")))
        >>> embedding_vocabularies(model, model.inputs[0])
        [100]
    """
    sizes = []
    for node in graph.ordered_nodes(model):
        slots = [i for i, t in enumerate(graph.signal_tensors(node)) if t is tensor]
        operation = node.operation
        if not slots:
            continue
        if isinstance(operation, keras.layers.Embedding):
            sizes.append(int(operation.input_dim))
        elif _keeps_ids(operation):
            for output in node.outputs:
                sizes += embedding_vocabularies(model, output, expand)
        elif isinstance(operation, keras.Model) or not is_keras_builtin(operation):
            sizes += _vocabularies_inside(node, slots, expand)
    return sizes


def _vocabularies_inside(node, slots, expand):
    """Vocabularies read inside a nested model or custom layer from its inputs at ``slots``."""
    try:
        inner = graph.inner_graph(node, expand)
    except graph.TraceError:  # an untraceable subclassed model: assume every Embedding reads it
        inner = None
    if inner is not None:
        inputs = graph.graph_of(inner)[0]
        return [size for slot in slots if slot < len(inputs)
                for size in embedding_vocabularies(inner, inputs[slot], expand)]
    if not isinstance(node.operation, keras.layers.Layer):
        return []
    return [
        int(layer.input_dim)
        for layer in node.operation._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.Embedding)
    ]


def synthetic_inputs(model, batch, rng, input_moments=None, exact_moments=False, expand=None):
    """One numpy array per model input: N(mean, var) noise, or uniform token ids for Embeddings.

    The one builder of synthetic inputs: the probe, the visualizer and the
    benchmarks all draw their batches here. An input that reaches an
    Embedding (``embedding_vocabularies``, custom layers opened by
    ``expand`` as the walk opens them) gets ids uniform over the smallest
    vocabulary that reads it, whatever its dtype and declared moments; a
    float input gets Gaussian noise, standardized to exactly its declared
    moments with ``exact_moments``. Open dimensions get ``UNKNOWN_LENGTH``.

    Example:
        >>> import keras, numpy as np
        >>> x = keras.Input((3,))
        >>> model = keras.Model(x, keras.layers.Dense(2)(x))
        >>> [a.shape for a in synthetic_inputs(model, 8, np.random.default_rng(0))]
        [(8, 3)]

    Args:
        model: a Functional model (or anything ``graph.graph_of`` reads).
        batch: examples per array.
        rng: a ``numpy.random.Generator``; draws follow the inputs' order.
        input_moments: one (mean, variance) per input; N(0, 1) by default.
        exact_moments: standardize each noise array to exactly its moments.
        expand: the walk's rule for opening custom layers (``graph.inner_graph``).

    Raises:
        ProbeUnavailable: an integer input that feeds no Embedding, or a
            dtype that is neither float nor int.
    """
    inputs = graph.graph_of(model)[0]
    if input_moments is None:
        input_moments = [(0.0, 1.0)] * len(inputs)
    arrays = []
    for tensor, (mean, var) in zip(inputs, input_moments):
        shape = (batch,) + _concrete(tensor.shape[1:])
        dtype = str(tensor.dtype)
        vocabularies = embedding_vocabularies(model, tensor, expand) if ("int" in dtype or "float" in dtype) else []
        if vocabularies:
            arrays.append(rng.integers(0, min(vocabularies), size=shape).astype(dtype))
        elif "int" in dtype:
            raise ProbeUnavailable(
                f"integer input '{tensor.name}' does not feed an Embedding layer (directly, "
                "through casts or reshapes, or inside a custom layer), so the probe cannot "
                "know which token ids are valid"
            )
        elif "float" in dtype:
            arrays.append(_noise(rng, shape, mean, var, exact_moments).astype(dtype))
        else:
            raise ProbeUnavailable(f"input '{tensor.name}' has dtype {dtype}; expected float or int")
    return arrays


def _noise(rng, shape, mean, var, exact_moments):
    noise = rng.standard_normal(shape)
    if exact_moments:  # no sampling error enters at the inputs
        return (noise - noise.mean()) / max(noise.std(), 1e-12) * math.sqrt(var) + mean
    return noise * math.sqrt(var) + mean


def probe_inputs(model, input_moments, batch, seed, expand=None):
    """The probe's inputs: ``synthetic_inputs`` with exact moments, from the seed's probe stream, as tensors."""
    rng = np.random.default_rng([int(seed), PROBE_STREAM])
    arrays = synthetic_inputs(model, batch, rng, input_moments, exact_moments=True, expand=expand)
    return [keras.ops.convert_to_tensor(array) for array in arrays]
