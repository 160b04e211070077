"""Zero-cost baselines: what a candidate's rank would be with no training at all (budget 0).

- ``params``: the parameter count (a strong, embarrassing baseline in NAS).
- ``synflow`` (Tanaka et al. 2020, "Pruning neural networks without any data
  by iteratively conserving synaptic flow"; used as a zero-cost NAS proxy by
  Abdelfattah et al. 2021): every trainable weight replaced by its absolute
  value, an all-ones input of batch 1, R = the sum of the logits (inference
  mode), and the score ``sum(theta * dR/dtheta)`` over every trainable weight.
  It reads no data and no labels. The model's weights are restored afterwards.
  Computed in the model's dtype (float32): very deep, wide candidates can
  overflow to ``inf``, which ranks them first, as the published proxy does.

Gradients come from TensorFlow; other backends raise a clear error.

Example:
    >>> import keras
    >>> inputs = keras.Input((2,))
    >>> hidden = keras.layers.Dense(3, use_bias=False, kernel_initializer="ones")(inputs)
    >>> model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False, kernel_initializer="ones",
    ...                                                name="logits")(hidden))
    >>> zero_cost(model)  # R = 2 * 3 = 6 and two layers: synflow = 2 * R
    {'params': 9, 'synflow': 12.0}
"""

import keras
import numpy as np

PROXIES = ("params", "synflow")


def parameter_count(model):
    """Number of parameters of ``model`` (trainable and not).

    Example:
        >>> import keras
        >>> parameter_count(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
        8
    """
    return int(model.count_params())


def _logits(model, output):
    """The sub-model from ``model``'s inputs to the layer ``output`` (the last output if there is none)."""
    names = [layer.name for layer in model.layers]
    if output in names:
        return keras.Model(model.inputs, model.get_layer(output).output)
    return model


def synflow(model, output="logits"):
    """The synflow score of ``model`` (see the module docstring); higher ranks first.

    Args:
        model: a built Keras model with one input of known shape.
        output: name of the layer whose outputs are summed (the logits; a
            softmax's sum is constant). Falls back to the model's output.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, kernel_initializer="ones")])
        >>> synflow(model)  # one layer: R = 2 * 4, synflow = R (the zero biases add nothing)
        8.0
    """
    if keras.backend.backend() != "tensorflow":
        raise NotImplementedError(
            f"synflow needs the TensorFlow backend for its gradients. Received: backend={keras.backend.backend()!r}")
    import tensorflow as tf

    head = _logits(model, output)
    shape = tuple(model.inputs[0].shape[1:])
    if any(dimension is None for dimension in shape):
        raise ValueError(f"synflow needs a model input of known shape. Received: input shape {shape}")
    variables = model.trainable_variables
    saved = [np.array(variable.numpy()) for variable in variables]
    try:
        for variable in variables:
            variable.assign(tf.abs(variable))
        ones = tf.ones((1,) + shape, dtype=model.inputs[0].dtype)
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(head(ones, training=False))
        gradients = tape.gradient(total, variables)
        return float(sum(tf.reduce_sum(variable * gradient).numpy()
                         for variable, gradient in zip(variables, gradients) if gradient is not None))
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)


def zero_cost(model, output="logits"):
    """{proxy: value} of every proxy in ``PROXIES`` for ``model``.

    Example:
        >>> import keras
        >>> sorted(zero_cost(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])))
        ['params', 'synflow']
    """
    return {"params": parameter_count(model), "synflow": synflow(model, output)}
