"""Keras 3's recurrent cells in numpy: what SimpleRNN, GRU and LSTM compute on a probe batch.

The probe steps a recurrent layer through its sequence here (``run_cell``)
instead of calling it eagerly, a time step costing microseconds instead of
milliseconds; ``recurrent.py``'s estimators use it, and its activations.
"""

import keras
import numpy as np

from autoinit_nas.estimators.activations import evaluate
from autoinit_nas.estimators.values import to_numpy

_A = keras.activations
_NUMPY_ACTIVATIONS = {
    _A.tanh: np.tanh,
    _A.sigmoid: lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),
    _A.relu: lambda x: np.maximum(x, 0.0),
    _A.linear: lambda x: x,
    _A.hard_sigmoid: lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
}

def _numpy_function(function):
    if function in _NUMPY_ACTIVATIONS:
        return _NUMPY_ACTIVATIONS[function]
    return lambda x: evaluate(function, x)


def _weights(variable):
    if variable is None:
        return None
    return to_numpy(variable, np.float64)


def _dropout_mask(rng, rate, shape):
    # Keras's recurrent dropout: one mask per sequence, kept values scaled by 1 / (1 - rate).
    return (rng.random(shape) >= rate) / (1.0 - rate)


def _input_drives(x, kernels, biases, masks):
    """Each gate's input term ``(x * mask) @ kernel + bias``, (batch, steps, units) in float64.

    The products are float32, as the layer computes them (and the larger
    half of the probe's cost on a long sequence): gates that share one
    input mask (all but ``implementation=1``'s per-gate masks) take one
    product with their kernels side by side.
    """
    batch, steps, features = x.shape

    def product(inputs, kernel):
        # One (batch * steps, features) matrix product: a stacked 3-D product
        # is one BLAS call per example, each ~10x slower right after a
        # TensorFlow op (its thread pool is still spinning on the cores).
        flat = inputs.reshape(batch * steps, features) @ kernel
        return flat.reshape(batch, steps, kernel.shape[-1])

    kernels32 = [np.asarray(kernel, np.float32) for kernel in kernels]
    if all(mask is masks[0] for mask in masks):
        inputs = x if np.isscalar(masks[0]) and masks[0] == 1.0 else x * masks[0].astype(np.float32)
        products = np.split(product(inputs, np.concatenate(kernels32, axis=-1)), len(kernels), axis=-1)
    else:
        products = [product(x * np.asarray(mask, np.float32), kernel) for mask, kernel in zip(masks, kernels32)]
    return [product.astype(np.float64) + bias for product, bias in zip(products, biases)]


def run_cell(kind, cell, inputs, rng=None):
    """The hidden states of ``cell`` over ``inputs`` (batch, steps, features), in numpy float64.

    (The input products are float32, as in the layer; ``_input_drives``.)

    The cell's own equations (Keras 3's SimpleRNNCell, GRUCell with either
    ``reset_after``, LSTMCell) on its realized weights, from a zero state:
    what the layer computes, at numpy's per-step cost instead of eager
    Keras's (about 100x less on a 200-step sequence). With ``rng``, dropout
    is applied as Keras applies it in training, with masks fixed over the
    sequence: ``implementation=2`` one input mask (and SimpleRNN one mask on
    the previous output), ``implementation=1`` one input and one recurrent
    mask per gate. Returns (batch, steps, units).

    Example:
        >>> import keras, numpy as np
        >>> layer = keras.layers.GRU(3, return_sequences=True)
        >>> x = np.ones((2, 5, 4), "float32")
        >>> y = layer(x)
        >>> bool(np.allclose(run_cell("gru", layer.cell, x), y, atol=1e-5))
        True
    """
    x = np.asarray(inputs, np.float32)
    batch, steps, features = x.shape
    units = int(cell.units)
    gates = {"simple": 1, "gru": 3, "lstm": 4}[kind]
    act = _numpy_function(cell.activation)
    gate = _numpy_function(getattr(cell, "recurrent_activation", None) or cell.activation)
    kernel = np.split(_weights(cell.kernel), gates, axis=-1)
    recurrent = np.split(_weights(cell.recurrent_kernel), gates, axis=-1)
    bias = _weights(cell.bias) if cell.use_bias else np.zeros(gates * units)
    recurrent_bias = np.zeros(gates * units)
    if kind == "gru" and bias.ndim == 2:  # reset_after: (input bias, recurrent bias)
        bias, recurrent_bias = bias[0], bias[1]
    bias, recurrent_bias = np.split(bias, gates), np.split(recurrent_bias, gates)

    per_gate = getattr(cell, "implementation", 2) == 1 and kind != "simple"
    input_rate = float(getattr(cell, "dropout", 0.0) or 0.0)
    state_rate = float(getattr(cell, "recurrent_dropout", 0.0) or 0.0)
    if not (kind == "simple" or per_gate):
        state_rate = 0.0  # GRU and LSTM apply recurrent dropout only with implementation=1
    input_masks = [1.0] * gates
    state_masks = [1.0] * gates
    if rng is not None and 0.0 < input_rate < 1.0:
        masks = [_dropout_mask(rng, input_rate, (batch, 1, features)) for _ in range(gates if per_gate else 1)]
        input_masks = masks * (1 if per_gate else gates)
    if rng is not None and 0.0 < state_rate < 1.0:
        masks = [_dropout_mask(rng, state_rate, (batch, units)) for _ in range(gates if per_gate else 1)]
        state_masks = masks * (1 if per_gate else gates)
    drives = _input_drives(x, kernel, bias, input_masks)

    h = np.zeros((batch, units))
    c = np.zeros_like(h)
    states = np.empty((batch, steps, units))
    for t in range(steps):
        if kind == "simple":
            h = act(drives[0][:, t] + (h * state_masks[0]) @ recurrent[0])
        elif kind == "gru":
            z = gate(drives[0][:, t] + (h * state_masks[0]) @ recurrent[0] + recurrent_bias[0])
            r = gate(drives[1][:, t] + (h * state_masks[1]) @ recurrent[1] + recurrent_bias[1])
            if getattr(cell, "reset_after", True):
                memory = r * ((h * state_masks[2]) @ recurrent[2] + recurrent_bias[2])
            else:
                memory = (r * (h * state_masks[2])) @ recurrent[2]
            h = z * h + (1.0 - z) * act(drives[2][:, t] + memory)
        else:
            i, f, g, o = (
                drives[k][:, t] + (h * state_masks[k]) @ recurrent[k] for k in range(4)
            )
            c = gate(f) * c + gate(i) * act(g)
            h = gate(o) * act(c)
        states[:, t] = h
    return states
