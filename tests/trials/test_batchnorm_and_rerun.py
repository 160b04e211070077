"""BatchNorm recalibration (the study's ablation) and a second, independently seeded run from one compiled model."""

import keras
import numpy as np

from autoinit_nas.trials.batchnorm import BatchNormRecalibration, recalibrate_batchnorm
from autoinit_nas.trials.rerun import TrainingStart


def _bn_model(dropout=0.0):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, kernel_initializer="ones", bias_initializer="zeros")(inputs)
    hidden = keras.layers.Dropout(dropout)(hidden) if dropout else hidden
    hidden = keras.layers.BatchNormalization()(hidden)
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_recalibration_sets_moving_statistics_to_the_average_of_the_batch_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (512, 4)).astype("float32")
    model = _bn_model()
    assert recalibrate_batchnorm(model, x, batch_size=64, batches=8) == 8
    layer = [item for item in model.layers if isinstance(item, keras.layers.BatchNormalization)][0]
    features = x.sum(axis=1, keepdims=True) * np.ones((1, 8), "float32")  # Dense of ones: every unit the same sum
    batches = features.reshape(8, 64, 8)
    expected_mean = batches.mean(axis=1).mean(axis=0)
    expected_variance = batches.var(axis=1).mean(axis=0)
    np.testing.assert_allclose(layer.moving_mean.numpy(), expected_mean, rtol=1e-4)
    np.testing.assert_allclose(layer.moving_variance.numpy(), expected_variance, rtol=1e-3)
    assert layer.momentum == 0.99  # put back


def test_recalibration_runs_before_fit_validation_and_leaves_dropout_streams_alone():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, (256, 4)).astype("float32")
    y = (x[:, 0] > 3.0).astype("int32")
    calls = []

    class Counting(BatchNormRecalibration):
        def on_test_begin(self, logs=None):
            calls.append(1)
            super().on_test_begin(logs)

    model = _bn_model(dropout=0.5)
    streams_before = [v.numpy().copy() for v in model.variables if "seed_generator" in v.path]
    recalibrate_batchnorm(model, x, batch_size=64)
    assert all(np.array_equal(a, v.numpy()) for a, v in
               zip(streams_before, [v for v in model.variables if "seed_generator" in v.path]))
    model.fit(x, y, validation_data=(x, y), epochs=2, batch_size=64, verbose=0, callbacks=[Counting(x, 64)])
    assert len(calls) == 2  # once per validation pass


def _fits_with_and_without_recalibration(shuffle):
    rng = np.random.default_rng(2)
    x = rng.normal(3.0, 2.0, (256, 4)).astype("float32")
    y = (x[:, 0] > 3.0).astype("int32")
    results = []
    for callbacks in ([], [BatchNormRecalibration(x, 64)]):
        keras.utils.set_random_seed(0)
        model = _bn_model(dropout=0.5)
        history = model.fit(x, y, validation_data=(x, y), epochs=2, batch_size=64, verbose=0, callbacks=callbacks,
                            shuffle=shuffle)
        results.append((history.history, [w.copy() for w in model.get_weights()]))
    return results


def test_training_and_later_evaluations_are_the_same_with_and_without_recalibrated_validation():
    results = _fits_with_and_without_recalibration(shuffle=False)
    (plain, plain_weights), (recalibrated, recalibrated_weights) = results
    assert plain["loss"] == recalibrated["loss"]  # the same training
    assert plain["val_loss"] != recalibrated["val_loss"]  # only the validation reads other statistics
    for before, after in zip(plain_weights, recalibrated_weights):
        np.testing.assert_array_equal(before, after)  # moving statistics included: put back after each pass


def test_shuffled_training_is_the_same_with_and_without_recalibrated_validation():
    # As the study's fit: shuffled batches after keras.utils.set_random_seed(0) in both runs.
    (plain, plain_weights), (recalibrated, recalibrated_weights) = _fits_with_and_without_recalibration(shuffle=True)
    assert plain["loss"] == recalibrated["loss"]  # the same batches, the same training
    assert plain["val_loss"] != recalibrated["val_loss"]
    for before, after in zip(plain_weights, recalibrated_weights):
        np.testing.assert_array_equal(before, after)


def test_models_without_batchnorm_are_left_alone():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    assert recalibrate_batchnorm(model, np.zeros((10, 3), "float32")) == 0


def test_a_reseeded_restore_gives_other_dropout_masks_the_same_for_one_seed():
    model = _bn_model(dropout=0.5)
    start = TrainingStart(model)
    x = np.ones((4, 4), "float32")
    layer = [item for item in model.layers if isinstance(item, keras.layers.Dropout)][0]

    def mask():
        return keras.ops.convert_to_numpy(layer(np.ones((64, 8), "float32"), training=True))

    start.restore()
    first = mask()
    start.restore()
    assert np.array_equal(first, mask())  # the saved start: the same masks
    start.restore(seed=11)
    reseeded = mask()
    assert not np.array_equal(first, reseeded)
    start.restore(seed=11)
    assert np.array_equal(reseeded, mask())
    assert int(model.optimizer.iterations.numpy()) == 0 and x.shape == (4, 4)
