"""Keras-serializable helpers AutoInit uses: WeightedSum and CenteredUnitNorm.

Example:
    >>> import keras
    >>> a, b = keras.Input((4,)), keras.Input((4,))
    >>> y = WeightedSum([0.6, 0.8])([a, b])
    >>> tuple(y.shape)
    (None, 4)
"""

import keras


@keras.saving.register_keras_serializable(package="autoinit_nas")
class WeightedSum(keras.layers.Layer):
    """Sum of the inputs, each multiplied by a fixed coefficient.

    With coefficients c_i whose squares sum to one, independent inputs of
    equal variance keep that variance (an ``Add`` of n inputs multiplies it
    by n). The coefficients are constants, not trained.

    Example:
        >>> layer = WeightedSum([2 ** -0.5, 2 ** -0.5])

    Args:
        coefficients: one float per input.
    """

    def __init__(self, coefficients, **kwargs):
        super().__init__(**kwargs)
        try:
            self.coefficients = [float(c) for c in coefficients]
        except (TypeError, ValueError):
            raise ValueError(
                "`coefficients` must be a list of numbers. "
                f"Received: coefficients={coefficients!r}"
            ) from None
        self.trainable = False

    def call(self, inputs):
        if len(inputs) != len(self.coefficients):
            raise ValueError(
                f"WeightedSum '{self.name}' has {len(self.coefficients)} coefficients "
                f"but was called on {len(inputs)} inputs."
            )
        total = inputs[0] * self.coefficients[0]
        for coefficient, tensor in zip(self.coefficients[1:], inputs[1:]):
            total = total + tensor * coefficient
        return total

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config["coefficients"] = list(self.coefficients)
        return config


@keras.saving.register_keras_serializable(package="autoinit_nas")
class CenteredUnitNorm(keras.constraints.Constraint):
    """Keep each unit's incoming weights centred with a fixed spread.

    For every output unit (last axis) the incoming weights are shifted to mean
    zero and rescaled so that their mean square is gain^2 / fan, where fan is
    the number of incoming weights (``mode="fan_in"``), outgoing
    (``"fan_out"``) or their average (``"fan_avg"``). With
    gain = sqrt(fan * s), the weights keep the variance s AutoInit chose, for
    the whole of training.

    Example:
        >>> constraint = CenteredUnitNorm(gain=1.0)
        >>> w = constraint(keras.ops.ones((3, 2)) + keras.random.normal((3, 2), seed=1))
        >>> w.shape
        TensorShape([3, 2])

    Args:
        gain: the scale of each unit's incoming weights (see above).
        mode: "fan_in", "fan_out" or "fan_avg".
    """

    modes = ("fan_in", "fan_out", "fan_avg")

    def __init__(self, gain=1.0, mode="fan_in"):
        if mode not in self.modes:
            raise ValueError(
                f"`mode` must be one of {self.modes}. Received: mode={mode!r}"
            )
        self.gain = float(gain)
        self.mode = mode

    def __call__(self, w):
        w = keras.ops.convert_to_tensor(w)
        shape = tuple(w.shape)
        fan_in = 1
        for dim in shape[:-1]:
            fan_in *= int(dim)
        fan_out = int(shape[-1]) if shape else 1
        if len(shape) > 2:
            fan_out *= fan_in // int(shape[-2])
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": 0.5 * (fan_in + fan_out)}[self.mode]
        axes = tuple(range(len(shape) - 1)) or None
        centred = w - keras.ops.mean(w, axis=axes, keepdims=True)
        mean_square = keras.ops.mean(keras.ops.square(centred), axis=axes, keepdims=True)
        scale = self.gain / keras.ops.sqrt(fan * mean_square + 1e-12)
        return centred * scale

    def get_config(self):
        return {"gain": self.gain, "mode": self.mode}
