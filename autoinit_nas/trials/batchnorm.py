"""BatchNorm moving statistics recomputed from training data before an evaluation (the study's ablation).

Keras's BatchNormalization keeps moving statistics with momentum 0.99, so after
one short epoch (20-30 steps) inference still reads mostly the initial (0, 1)
statistics: an init that already puts every BN input near unit variance is
read less distorted. Recalibrating replaces the moving statistics with the
plain average of the batch statistics over a few training batches (momentum
``i / (i + 1)`` at batch ``i``), which removes that effect; comparing a study
with and without it tells whether an init's edge comes through BN statistics.

Random streams (dropout) are put back afterwards, so training after a
recalibration draws the same masks as it would have without it; the callback
also puts the moving statistics back when the evaluation ends, so training and
any later evaluation without it see exactly the model they would have seen.

Example:
    >>> import keras, numpy as np
    >>> x = keras.Input((3,))
    >>> model = keras.Model(x, keras.layers.BatchNormalization()(x))
    >>> data = np.random.default_rng(0).normal(5.0, 2.0, (256, 3)).astype("float32")
    >>> recalibrate_batchnorm(model, data, batch_size=64)
    4
    >>> bool(abs(float(model.layers[1].moving_mean.numpy()[0]) - 5.0) < 0.5)
    True
"""

import keras
import numpy as np

from autoinit_nas.estimators.values import to_numpy


def batchnorm_layers(model):
    """Every BatchNormalization layer of ``model``, nested models included."""
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


def recalibrate_batchnorm(model, x, batch_size=64, batches=8):
    """Set every BN layer's moving statistics to the average over ``batches`` training batches of ``x``.

    Returns the number of batches used (0 when the model has no BatchNormalization).
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    count = max(1, min(int(batches), int(np.ceil(len(x) / batch_size))))
    weights = {id(variable) for variable in model.weights}
    streams = [variable for variable in model.variables if id(variable) not in weights]
    saved_streams = [np.array(to_numpy(variable), copy=True) for variable in streams]
    momenta = [layer.momentum for layer in layers]
    try:
        for index in range(count):
            for layer in layers:
                layer.momentum = index / (index + 1.0)
            model(x[index * batch_size:(index + 1) * batch_size], training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        for variable, value in zip(streams, saved_streams):
            variable.assign(value)
    return count


class BatchNormRecalibration(keras.callbacks.Callback):
    """Recalibrate BN moving statistics on ``x`` for every evaluation (fit's validation and ``evaluate``).

    The statistics are recalibrated when the evaluation begins and put back
    when it ends: only that evaluation's scores change.

    Example:
        >>> import numpy as np
        >>> callback = BatchNormRecalibration(np.zeros((64, 3), "float32"), batch_size=32)
        >>> callback.batches
        8
    """

    def __init__(self, x, batch_size=64, batches=8):
        super().__init__()
        self.x, self.batch_size, self.batches = x, int(batch_size), int(batches)
        self._saved = None

    def on_test_begin(self, logs=None):
        variables = [v for layer in batchnorm_layers(self.model) for v in (layer.moving_mean, layer.moving_variance)]
        self._saved = [(v, np.array(to_numpy(v), copy=True)) for v in variables]
        recalibrate_batchnorm(self.model, self.x, self.batch_size, self.batches)

    def on_test_end(self, logs=None):
        for variable, value in self._saved or []:
            variable.assign(value)
        self._saved = None
