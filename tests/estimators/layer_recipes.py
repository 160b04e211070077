"""A minimal graph node for every class in the estimator registry.

``node_for(layer_class)`` builds the smallest model in which ``layer_class``
(a Keras layer or a ``keras.ops`` operation) is called once, and returns that
call's node, or raises ``NoRecipe`` saying why none could be built. Tests that
must reach every registered estimator (``test_degenerate_inputs``) iterate the
registry and build their layers here.

Classes get an explicit recipe where they need arguments; the rest are tried
generically: the ``keras.ops`` function of the same name (``LogSigmoid`` ->
``keras.ops.log_sigmoid``) on one, then two inputs, then the class itself,
constructed without arguments, on inputs of rank 2 to 5.
"""

import re

import keras
import numpy as np
from keras.src.ops import image as kimage
from keras.src.ops import nn as knn
from keras.src.ops import numpy as knp

from autoinit_nas.core import graph
from autoinit_nas.estimators.constant import TracedConstant
from autoinit_nas.estimators.layers import WeightedSum

L = keras.layers
O = keras.ops


class NoRecipe(Exception):
    """No model calling this class could be built; the message says what was tried."""


def _inputs(*shapes, dtype="float32"):
    return [keras.Input(shape, dtype=dtype) for shape in shapes]


def _one(shape, build):
    def recipe():
        (x,) = _inputs(shape)
        return [x], build(x)

    return recipe


def _two(shape, build, second=None):
    def recipe():
        x, y = _inputs(shape, second or shape)
        return [x, y], build(x, y)

    return recipe


def _embedding():
    (x,) = _inputs((3,), dtype="int32")
    return [x], L.Embedding(5, 2)(x)


def _take(build):
    def recipe():
        (x,) = _inputs((6, 4))
        indices = keras.ops.convert_to_tensor(np.array([0, 2]), dtype="int32")
        return [x], build(x, indices)

    return recipe


def _attention(layer, three=False):
    def recipe():
        q, v = _inputs((6, 4), (5, 4))
        return [q, v], (layer()(q, v) if three else layer()([q, v]))

    return recipe


RECIPES = {
    L.Activation: _one((4,), lambda x: L.Activation("tanh")(x)),
    L.Dense: _one((4,), lambda x: L.Dense(3, activation="relu")(x)),
    L.EinsumDense: _one((4,), lambda x: L.EinsumDense("ab,bc->ac", output_shape=3)(x)),
    L.Embedding: _embedding,
    L.Conv1D: _one((8, 3), lambda x: L.Conv1D(2, 3)(x)),
    L.Conv2D: _one((6, 6, 3), lambda x: L.Conv2D(2, 3)(x)),
    L.Conv3D: _one((4, 4, 4, 2), lambda x: L.Conv3D(2, 3)(x)),
    L.Conv1DTranspose: _one((8, 3), lambda x: L.Conv1DTranspose(2, 3, strides=2)(x)),
    L.Conv2DTranspose: _one((6, 6, 3), lambda x: L.Conv2DTranspose(2, 3, strides=2)(x)),
    L.Conv3DTranspose: _one((4, 4, 4, 2), lambda x: L.Conv3DTranspose(2, 3)(x)),
    L.DepthwiseConv1D: _one((8, 3), lambda x: L.DepthwiseConv1D(3)(x)),
    L.DepthwiseConv2D: _one((6, 6, 3), lambda x: L.DepthwiseConv2D(3)(x)),
    L.SeparableConv1D: _one((8, 3), lambda x: L.SeparableConv1D(2, 3)(x)),
    L.SeparableConv2D: _one((6, 6, 3), lambda x: L.SeparableConv2D(2, 3)(x)),
    L.Dropout: _one((4,), lambda x: L.Dropout(0.3)(x)),
    L.SpatialDropout1D: _one((6, 4), lambda x: L.SpatialDropout1D(0.3)(x)),
    L.SpatialDropout2D: _one((4, 4, 3), lambda x: L.SpatialDropout2D(0.3)(x)),
    L.SpatialDropout3D: _one((3, 3, 3, 2), lambda x: L.SpatialDropout3D(0.3)(x)),
    L.GaussianDropout: _one((4,), lambda x: L.GaussianDropout(0.3)(x)),
    L.GaussianNoise: _one((4,), lambda x: L.GaussianNoise(0.5)(x)),
    L.AlphaDropout: _one((4,), lambda x: L.AlphaDropout(0.2)(x)),
    L.GroupNormalization: _one((6, 4), lambda x: L.GroupNormalization(groups=2)(x)),
    L.Normalization: _one((4,), lambda x: L.Normalization(mean=0.5, variance=2.0)(x)),
    L.Rescaling: _one((4,), lambda x: L.Rescaling(2.0, offset=-1.0)(x)),
    L.AveragePooling1D: _one((6, 4), lambda x: L.AveragePooling1D(2)(x)),
    L.AveragePooling2D: _one((4, 4, 3), lambda x: L.AveragePooling2D(2)(x)),
    L.AveragePooling3D: _one((4, 4, 4, 2), lambda x: L.AveragePooling3D(2)(x)),
    L.Dot: _two((4,), lambda x, y: L.Dot(axes=1)([x, y])),
    L.Attention: _attention(L.Attention),
    L.AdditiveAttention: _attention(L.AdditiveAttention),
    L.MultiHeadAttention: _attention(lambda: L.MultiHeadAttention(2, 2), three=True),
    L.Reshape: _one((2, 2), lambda x: L.Reshape((4,))(x)),
    L.Permute: _one((6, 4), lambda x: L.Permute((2, 1))(x)),
    L.RepeatVector: _one((4,), lambda x: L.RepeatVector(3)(x)),
    L.Cropping1D: _one((6, 4), lambda x: L.Cropping1D(1)(x)),
    L.Cropping2D: _one((6, 6, 2), lambda x: L.Cropping2D(1)(x)),
    L.Cropping3D: _one((4, 4, 4, 2), lambda x: L.Cropping3D(1)(x)),
    L.SimpleRNN: _one((5, 3), lambda x: L.SimpleRNN(2, activation="relu")(x)),
    L.GRU: _one((5, 3), lambda x: L.GRU(2)(x)),
    L.LSTM: _one((5, 3), lambda x: L.LSTM(2)(x)),
    L.Bidirectional: _one((5, 3), lambda x: L.Bidirectional(L.SimpleRNN(2, activation="relu"))(x)),
    L.TimeDistributed: _one((5, 3), lambda x: L.TimeDistributed(L.Dense(2))(x)),
    WeightedSum: _two((4,), lambda x, y: WeightedSum([0.6, 0.8])([x, y])),
    TracedConstant: _one((4,), lambda x: TracedConstant(np.arange(6.0).reshape(2, 3))(x)),
    # keras.ops operations that take arguments.
    knp.Reshape: _one((6, 4), lambda x: O.reshape(x, (-1, 24))),
    knp.ExpandDims: _one((6, 4), lambda x: O.expand_dims(x, 1)),
    knp.Squeeze: _one((1, 4), lambda x: O.squeeze(x, 1)),
    knp.Swapaxes: _one((6, 4), lambda x: O.swapaxes(x, 1, 2)),
    knp.Moveaxis: _one((6, 4), lambda x: O.moveaxis(x, 1, 2)),
    knp.GetItem: _one((6, 4), lambda x: x[:, 1:3]),
    knp.Roll: _one((6, 4), lambda x: O.roll(x, 1, axis=1)),
    knp.Tile: _one((6, 4), lambda x: O.tile(x, (1, 1, 2))),
    knp.Repeat: _one((6, 4), lambda x: O.repeat(x, 2, axis=1)),
    knp.BroadcastTo: _one((1, 4), lambda x: O.broadcast_to(x, (2, 3, 4))),
    knp.Take: _take(lambda x, i: O.take(x, i, axis=1)),
    knp.TakeAlongAxis: _one((6, 4), lambda x: O.take_along_axis(x, O.zeros((1, 1, 4), "int32"), axis=1)),
    knp.Rot90: _one((6, 4), lambda x: O.rot90(x, axes=(1, 2))),
    knp.Power: _one((4,), lambda x: O.power(x, 2.0)),
    knp.Clip: _one((4,), lambda x: O.clip(x, -1.0, 1.0)),
    knn.Threshold: _one((4,), lambda x: O.threshold(x, 0.5, 0.0)),
    knp.Concatenate: _two((4,), lambda x, y: O.concatenate([x, y], axis=-1)),
    knp.Stack: _two((4,), lambda x, y: O.stack([x, y], axis=1)),
    knp.Hstack: _two((4,), lambda x, y: O.hstack([x, y])),
    knp.Vstack: _two((4,), lambda x, y: O.vstack([x, y])),
    knp.Dstack: _two((4,), lambda x, y: O.dstack([x, y])),
    knp.Matmul: _two((3, 4), lambda x, y: O.matmul(x, y), second=(4, 2)),
    knp.Einsum: _two((3, 4), lambda x, y: O.einsum("bij,bjk->bik", x, y), second=(4, 2)),
    knp.Dot: _two((3, 4), lambda x, y: O.dot(x, O.ones((4, 2)))),
    knp.Tensordot: _two((3, 4), lambda x, y: O.tensordot(x, y, axes=([1, 2], [1, 2]))),
    knp.Inner: _two((3, 4), lambda x, y: O.inner(x, O.ones((2, 4)))),
    knp.Outer: _two((4,), lambda x, y: O.outer(x, y)),
    kimage.ExtractPatches: _one((6, 6, 2), lambda x: O.image.extract_patches(x, 2)),
}

_RANKS = ((4,), (6, 4), (4, 4, 3), (3, 3, 3, 2))


def _snake(name):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _candidates(layer_class):
    """(description, recipe) pairs to try, most specific first."""
    if layer_class in RECIPES:
        yield "explicit recipe", RECIPES[layer_class]
    function = getattr(keras.ops, _snake(layer_class.__name__), None)
    if function is not None:
        yield f"keras.ops.{_snake(layer_class.__name__)}(x)", _one((6, 4), function)
        yield f"keras.ops.{_snake(layer_class.__name__)}(x, y)", _two((6, 4), function)
    for shape in _RANKS:
        yield f"{layer_class.__name__}()(x) at {shape}", _one(shape, lambda x: layer_class()(x))
        yield f"{layer_class.__name__}()([x, y]) at {shape}", _two(shape, lambda x, y: layer_class()([x, y]))


def node_for(layer_class):
    """The node of the one call of ``layer_class`` in a minimal model; NoRecipe if none builds."""
    if layer_class is L.InputLayer:  # the walk never visits input nodes; its estimator still exists
        (x,) = _inputs((4,))
        return x._keras_history.operation._inbound_nodes[0]
    tried = []
    for description, recipe in _candidates(layer_class):
        try:
            inputs, output = recipe()
            nodes = graph.ordered_nodes(keras.Model(inputs, output))
        except Exception as error:  # a candidate that does not fit this class
            tried.append(f"{description}: {type(error).__name__}: {str(error)[:80]}")
            continue
        matching = [node for node in nodes if isinstance(node.operation, layer_class)]
        if matching:
            return matching[-1]
        tried.append(f"{description}: built, but no {layer_class.__name__} node in it")
    raise NoRecipe(f"no minimal model calls {layer_class.__module__}.{layer_class.__name__}; tried: "
                   + "; ".join(tried))
