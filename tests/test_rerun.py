"""One compiled model trained under several arms in turn trains each arm exactly as a fresh build would."""

import keras
import numpy as np
import pytest

from autoinit_nas.trials.arms import apply_arm
from autoinit_nas.trials.rerun import TrainingStart
from autoinit_nas import AutoInit

SEED = 7


def _build():
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((12,))
    hidden = keras.layers.Dense(16, activation="tanh")(inputs)
    hidden = keras.layers.BatchNormalization()(hidden)
    hidden = keras.layers.Dropout(0.3)(hidden)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 12)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32")


def _train(model, start, arm, x, y):
    start.restore()  # LSUV measures in training mode: its dropout masks come from the streams too
    apply_arm(arm, model, AutoInit(), SEED, probe_batch=16, data=x[:16], redraw=True)
    start.restore()
    keras.utils.set_random_seed(SEED)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=True)
    return history.history["loss"]


@pytest.mark.parametrize("arm", ["he", "lsuv", "autoinit"])
def test_an_arm_after_another_trains_as_on_a_fresh_build(arm):
    x, y = _data()
    fresh_model = _build()
    fresh = _train(fresh_model, TrainingStart(fresh_model), arm, x, y)
    model = _build()
    start = TrainingStart(model)
    _train(model, start, "default", x, y)  # moves the optimizer, dropout streams and batch-norm statistics
    again = _train(model, start, arm, x, y)
    np.testing.assert_allclose(again, fresh, rtol=1e-5)


def test_training_start_needs_a_compiled_model():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    with pytest.raises(ValueError, match="compiled model"):
        TrainingStart(model)
