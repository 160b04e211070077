"""Train one compiled model again from its start: for several arms of a candidate in one trial.

Building and compiling a candidate costs more than a few epochs of a small
one (tracing the train step). A trial that trains a candidate under several
arms therefore builds it once and, before each arm, puts back what training
changed besides the weights (which the arm re-draws): the optimizer's
state (step count, moments) and every random stream (dropout masks), as they
were before the first arm trained.
"""

import numpy as np

from autoinit_nas.estimators.values import to_numpy


class TrainingStart:
    """The optimizer state and random-stream state of a freshly built, compiled ``model``.

    Example:
        >>> import keras
        >>> x = keras.Input((3,))
        >>> model = keras.Model(x, keras.layers.Dense(1)(keras.layers.Dropout(0.5)(x)))
        >>> model.compile("adam", "mse")
        >>> start = TrainingStart(model)
        >>> _ = model.fit(np.ones((8, 3)), np.ones((8, 1)), verbose=0)
        >>> start.restore()
        >>> int(model.optimizer.iterations.numpy())
        0
        >>> start.restore(seed=7)  # the same start, other dropout masks
    """

    def __init__(self, model):
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            raise ValueError(
                f"TrainingStart needs a compiled model (with an optimizer). Received: model '{model.name}' "
                "without one; call model.compile(...) first."
            )
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        weights = {id(variable) for variable in model.weights}
        # Non-weight variables of the model are its random streams (SeedGenerator states).
        streams = [variable for variable in model.variables if id(variable) not in weights]
        self.variables = list(optimizer.variables) + streams
        self.streams_from = len(optimizer.variables)
        self.values = [np.array(to_numpy(variable), copy=True) for variable in self.variables]

    def restore(self, seed=None):
        """Put every saved variable back to its saved value.

        With ``seed``, the random streams start instead from states derived
        from it (other dropout masks than the saved start's, the same for one
        ``seed``): for a second, independent run of the same candidate.
        """
        for index, (variable, value) in enumerate(zip(self.variables, self.values)):
            if seed is not None and index >= self.streams_from:
                value = _stream_state(value, seed, index)
            variable.assign(value)


def _stream_state(saved, seed, index):
    """A SeedGenerator state ([seed, counter]) of ``saved``'s shape and dtype, derived from (seed, index)."""
    derived = np.random.default_rng([int(seed), int(index)]).integers(1, 2**31 - 1, size=saved.shape)
    if saved.shape and saved.shape[-1] == 2:
        derived[..., 1] = 0  # the counter starts at zero, as a fresh generator's does
    return derived.astype(saved.dtype)
