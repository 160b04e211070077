"""keras-tuner through public hooks only: tuners that build and train the candidate themselves.

AutoInitHyperModel never reads the call stack: the arm waits on the built model
and the model's first fit applies it, once, at that fit's batch size; a rebuild
of a searched trial's hyperparameters probes at the batch that trial recorded.
"""

import keras
import keras_tuner
import numpy as np
import pytest

from autoinit_nas.engines.keras_tuner import context
from autoinit_nas.engines.keras_tuner import stamp as arm_stamp
from autoinit_nas.integrations.keras_tuner import AutoInitHyperModel
from autoinit_nas.trials import records
from tests.integrations.digits import digits
from tests.integrations.test_keras_tuner import (
    CountingAutoInit,
    mlp_build,
    only_units,
    small_mlp_space,
    tuner_kwargs,
)


@pytest.fixture(autouse=True)
def fresh_counts():
    CountingAutoInit.calls.clear()
    CountingAutoInit.probe_batches.clear()


def data():
    (x, y), validation = digits("flat")
    return x, y, validation


class BuildAndFitTuner(keras_tuner.RandomSearch):
    """A custom ``run_trial``: builds and fits the model itself, with none of keras-tuner's callbacks."""

    def run_trial(self, trial, x, y, validation_data=None, **kwargs):
        model = self.hypermodel.build(trial.hyperparameters)
        return model.fit(x, y, batch_size=8, epochs=1, validation_data=validation_data, verbose=0)


class AutoKerasStyleTuner(keras_tuner.RandomSearch):
    """Overrides ``_build_and_fit_model`` as AutoKeras does: builds, then calls ``model.fit`` itself."""

    def _build_and_fit_model(self, trial, *args, **kwargs):
        model = self.hypermodel.build(trial.hyperparameters)
        return model.fit(*args, **dict(kwargs, batch_size=24))


class OwnFitHyperModel(AutoInitHyperModel):
    """A user's subclass whose ``fit`` trains the model directly, never calling ``AutoInitHyperModel.fit``."""

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, **dict(kwargs, batch_size=12))


def test_a_custom_run_trial_gets_the_arm_once_at_its_fit_batch(tmp_path):
    hypermodel = AutoInitHyperModel(mlp_build(), autoinit=CountingAutoInit())
    tuner = BuildAndFitTuner(hypermodel, max_trials=2, seed=1, hyperparameters=small_mlp_space(),
                             **tuner_kwargs(tmp_path, "custom_run_trial"))
    x, y, validation = data()
    tuner.search(x, y, validation_data=validation)
    assert CountingAutoInit.probe_batches == [8, 8]  # once per trial, in its fit, never at build's 32
    # No keras-tuner callback reached the fit: the trial is unknown, so nothing is recorded ...
    assert records.read_records(tuner.project_dir) == []
    # ... but the process remembers the batch: the rebuild probes where the trial did.
    best_hp = tuner.get_best_hyperparameters()[0]
    model = tuner.hypermodel.build(best_hp)
    assert CountingAutoInit.probe_batches == [8, 8, 8]
    assert arm_stamp.stamp_of(model).holds(model, "autoinit", hypermodel.trial_seed(best_hp), 8)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # the arm is in the weights already
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)  # trained weights are never initialized again
    assert len(CountingAutoInit.probe_batches) == 3


class BuildOnly(keras_tuner.HyperModel):
    """A wrapped HyperModel whose ``fit`` must not run when the tuner trains with ``model.fit``."""

    def build(self, hp):
        return mlp_build()(hp)

    def fit(self, hp, model, *args, **kwargs):
        raise AssertionError("the tuner trained with model.fit: HyperModel.fit must not run as well")


def test_an_autokeras_style_build_and_fit_is_initialized_and_recorded(tmp_path):
    hypermodel = AutoInitHyperModel(BuildOnly(), autoinit=CountingAutoInit())
    tuner = AutoKerasStyleTuner(hypermodel, max_trials=1, seed=1, hyperparameters=small_mlp_space(),
                                **tuner_kwargs(tmp_path, "autokeras"))
    x, y, validation = data()
    tuner.search(x, y, validation_data=validation, epochs=1, batch_size=32, verbose=0)
    assert CountingAutoInit.probe_batches == [24]
    (record,) = records.read_records(tuner.project_dir)
    arm = record["executions"][0]["arms"]["autoinit"]
    assert record["status"] == "completed" and arm["initialized"] and arm["probe_batch"] == 24
    trial = tuner.oracle.get_trial(record["trial_id"])
    assert trial.score == pytest.approx(arm["metrics"]["val_accuracy"])
    tuner.hypermodel.build(tuner.get_best_hyperparameters()[0])
    assert CountingAutoInit.probe_batches == [24, 24]


def test_a_hypermodel_whose_fit_calls_model_fit_is_initialized_at_that_batch(tmp_path):
    tuner = keras_tuner.RandomSearch(
        OwnFitHyperModel(mlp_build(), autoinit=CountingAutoInit()), max_trials=1, seed=1,
        hyperparameters=small_mlp_space(), **tuner_kwargs(tmp_path, "own_fit"),
    )
    x, y, validation = data()
    tuner.search(x, y, validation_data=validation, epochs=1, verbose=0)
    assert CountingAutoInit.probe_batches == [12]
    (record,) = records.read_records(tuner.project_dir)
    assert record["executions"][0]["arms"]["autoinit"]["probe_batch"] == 12


def test_a_wrapped_fit_training_at_another_batch_moves_the_arm_there_before_training(tmp_path):
    class HpBatch(keras_tuner.HyperModel):
        def build(self, hp):
            return mlp_build()(hp)

        def fit(self, hp, model, *args, **kwargs):
            return model.fit(*args, batch_size=hp.Fixed("batch_size", 16), **kwargs)

    tuner = keras_tuner.RandomSearch(
        AutoInitHyperModel(HpBatch(), autoinit=CountingAutoInit()), max_trials=1, seed=1,
        hyperparameters=small_mlp_space(), **tuner_kwargs(tmp_path, "hp_batch"),
    )
    x, y, validation = data()
    tuner.search(x, y, validation_data=validation, epochs=1, verbose=0)
    # fit's own arguments say nothing, so Keras's 32; the model's fit says 16: drawn again, trained once.
    assert CountingAutoInit.probe_batches == [32, 16]
    (record,) = records.read_records(tuner.project_dir)
    assert record["executions"][0]["arms"]["autoinit"]["probe_batch"] == 16
    tuner.hypermodel.build(tuner.get_best_hyperparameters()[0])
    assert CountingAutoInit.probe_batches[-1] == 16


def test_hyperband_continuations_are_not_initialized_and_rebuilds_probe_at_the_recorded_batch(tmp_path):
    hypermodel = AutoInitHyperModel(mlp_build(), autoinit=CountingAutoInit())
    tuner = keras_tuner.Hyperband(
        hypermodel, max_epochs=2, factor=2, hyperband_iterations=1, seed=0,
        **only_units(), **tuner_kwargs(tmp_path, "hyperband_hooks"),
    )
    tuner.oracle.max_trials = 3
    x, y, validation = data()
    tuner.search(x, y, validation_data=validation, batch_size=16, verbose=0)
    assert CountingAutoInit.probe_batches == [16, 16]  # the two new candidates; not the continuation
    found = records.read_records(tuner.project_dir)
    (continued,) = [record for record in found if record["reloaded_from"] is not None]
    arm = continued["executions"][0]["arms"]["autoinit"]
    assert arm["initialized"] is False and arm["probe_batch"] == 16
    # Rebuilding the continued trial's hyperparameters (tuner/trial_id and all) applies the arm at 16.
    continued_hp = tuner.oracle.get_trial(continued["trial_id"]).hyperparameters
    tuner.hypermodel.build(continued_hp)
    assert CountingAutoInit.probe_batches == [16, 16, 16]
    # A new process knows no trial until it reads the project's records: no tuner loads weights into
    # this build, so the arm waits for its first fit (never Keras's initializers kept silently).
    fresh = AutoInitHyperModel(mlp_build(), autoinit=CountingAutoInit())
    model = fresh.build(continued_hp)
    assert arm_stamp.stamp_of(model).state == arm_stamp.PENDING and len(CountingAutoInit.probe_batches) == 3
    model.fit(x[:16], y[:16], batch_size=8, epochs=1, verbose=0)
    assert CountingAutoInit.probe_batches == [16, 16, 16, 8]
    assert fresh.remember_trials(tuner.project_dir) == 3
    fresh.build(continued_hp)
    assert CountingAutoInit.probe_batches == [16, 16, 16, 8, 16]


def test_the_stamp_compares_arm_seed_batch_and_model():
    hypermodel = AutoInitHyperModel(mlp_build(), autoinit=CountingAutoInit())
    hp = small_mlp_space()
    mlp_build()(hp)  # registers every hyperparameter, as a trial's hp has them
    hypermodel._searched.remember(hp.values, hypermodel.trial_seed(hp), 16)
    model = hypermodel.build(hp)
    stamp = arm_stamp.stamp_of(model)
    seed = hypermodel.trial_seed(hp)
    assert stamp.holds(model, "autoinit", seed, 16)
    assert not stamp.holds(model, "he", seed, 16)
    assert not stamp.holds(model, "autoinit", seed + 1, 16)
    assert not stamp.holds(model, "autoinit", seed, 32)
    other = mlp_build()(hp)
    object.__setattr__(other, "_autoinit_nas_stamp", stamp)  # a copy carrying the stamp is not the model
    assert arm_stamp.stamp_of(other) is None and not stamp.holds(other, "autoinit", seed, 16)
    # An untrained model fitted at another batch is re-initialized at that batch before training.
    x, y, _ = data()
    weights = [np.array(w) for w in model.get_weights()]
    model.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
    assert CountingAutoInit.probe_batches == [16, 32]
    assert stamp.holds(model, "autoinit", seed, 32) and stamp.trained
    assert not all(np.array_equal(a, np.array(b)) for a, b in zip(weights, model.get_weights()))


class WeightsAtStart(keras.callbacks.Callback):
    """The model's weights when training begins (after any arm was applied)."""

    def on_train_begin(self, logs=None):
        self.weights = [np.array(w) for w in self.model.get_weights()]


def fit_keeps(model, weights, x, y, batch_size):
    """Fit ``model`` once at ``batch_size``; True when it started training from exactly ``weights``."""
    start = WeightsAtStart()
    model.fit(x[:32], y[:32], batch_size=batch_size, epochs=1, verbose=0, callbacks=[start])
    return all(np.array_equal(a, b) for a, b in zip(weights, start.weights))


def test_weights_assigned_after_the_arm_are_never_initialized_again():
    hypermodel = AutoInitHyperModel(mlp_build(), autoinit=CountingAutoInit())
    hp = small_mlp_space()
    mlp_build()(hp)
    hypermodel._searched.remember(hp.values, hypermodel.trial_seed(hp), 16)
    x, y, _ = data()
    model = hypermodel.build(hp)  # the arm applied at 16
    bias = model.trainable_weights[-1]
    bias.assign(bias + 0.5)  # neither load_weights nor set_weights: the fingerprint sees it
    weights = [np.array(w) for w in model.get_weights()]
    assert fit_keeps(model, weights, x, y, batch_size=32)
    assert CountingAutoInit.probe_batches == [16] and arm_stamp.stamp_of(model).state == arm_stamp.RELOADED
    pending = AutoInitHyperModel(mlp_build(), autoinit=CountingAutoInit()).build(small_mlp_space())
    pending.set_weights([w * 0.5 for w in pending.get_weights()])  # the set_weights hook
    assert arm_stamp.stamp_of(pending).state == arm_stamp.RELOADED
    assert fit_keeps(pending, [w for w in pending.get_weights()], x, y, batch_size=8)
    assert CountingAutoInit.probe_batches == [16]


@pytest.mark.parametrize("arm", ["autoinit", "lsuv"])
def test_build_then_load_weights_then_fit_keeps_the_loaded_weights(tmp_path, arm):
    x, y, _ = data()
    checkpoint = str(tmp_path / "trained.weights.h5")
    trained = mlp_build()(small_mlp_space())
    trained.fit(x[:32], y[:32], batch_size=16, epochs=1, verbose=0)
    trained.save_weights(checkpoint)
    model = AutoInitHyperModel(mlp_build(), autoinit=CountingAutoInit(), init=arm).build(small_mlp_space())
    assert arm_stamp.stamp_of(model).state == arm_stamp.PENDING
    model.load_weights(checkpoint)  # as tuner.load_model / get_best_models do after their build
    assert arm_stamp.stamp_of(model).state == arm_stamp.RELOADED
    assert fit_keeps(model, trained.get_weights(), x, y, batch_size=8)
    assert CountingAutoInit.calls == []


def test_get_best_models_fit_at_another_batch_keep_their_checkpoint(tmp_path):
    x, y, validation = data()
    hypermodel = AutoInitHyperModel(mlp_build(), autoinit=CountingAutoInit())
    tuner = keras_tuner.RandomSearch(hypermodel, max_trials=1, seed=1, hyperparameters=small_mlp_space(),
                                     **tuner_kwargs(tmp_path, "best_models"))
    tuner.search(x, y, validation_data=validation, batch_size=16, epochs=1, verbose=0)
    (best,) = tuner.get_best_models(1)  # rebuilt (the arm applied at 16), then the checkpoint loaded over it
    checkpoint = [np.array(w) for w in best.get_weights()]
    assert fit_keeps(best, checkpoint, x, y, batch_size=32)
    # A new process, without remember_trials: the rebuild's arm is pending, and the load keeps it so.
    fresh = keras_tuner.RandomSearch(AutoInitHyperModel(mlp_build(), autoinit=CountingAutoInit()), max_trials=1,
                                     seed=1, hyperparameters=small_mlp_space(),
                                     **dict(tuner_kwargs(tmp_path, "best_models"), overwrite=False))
    (reloaded,) = fresh.get_best_models(1)
    assert arm_stamp.stamp_of(reloaded).state == arm_stamp.RELOADED
    assert fit_keeps(reloaded, checkpoint, x, y, batch_size=32)
    assert CountingAutoInit.probe_batches == [16, 16]  # the trial and get_best_models' rebuild; never at 32


def test_build_outside_any_trial_leaves_the_arm_to_the_first_fit():
    hypermodel = AutoInitHyperModel(mlp_build(), autoinit=CountingAutoInit())
    model = hypermodel.build(small_mlp_space())
    assert CountingAutoInit.calls == [] and arm_stamp.stamp_of(model).state == arm_stamp.PENDING
    x, y, _ = data()
    model.fit(x[:40], y[:40], batch_size=20, epochs=1, verbose=0)
    assert CountingAutoInit.probe_batches == [20]


def test_fit_batch_size_reads_keywords_positions_and_datasets():
    assert arm_stamp.fit_batch_size((), {"batch_size": 16}) == 16
    assert arm_stamp.fit_batch_size(([0], [0], 8), {}) == 8
    assert arm_stamp.fit_batch_size((np.zeros((4, 2)),), {}) == 32
    tf = pytest.importorskip("tensorflow")
    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((40, 2)), np.zeros(40))).batch(10, drop_remainder=True)
    assert arm_stamp.fit_batch_size((dataset,), {}) == 10
    assert arm_stamp.fit_batch_size((), {"x": dataset.unbatch().batch(10)}) == 32  # a ragged last batch: unknown


class Batches(keras.utils.PyDataset):
    """A PyDataset keeping its ``batch_size``, as Keras's own example does."""

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return np.zeros((self.batch_size, 64), "float32"), np.zeros(self.batch_size, "int64")


def test_fit_batch_size_reads_the_batch_a_pydataset_or_dataloader_keeps():
    assert arm_stamp.fit_batch_size((Batches(12),), {}) == 12
    assert arm_stamp.fit_batch_size((), {"x": Batches(12), "batch_size": 64}) == 12  # fit ignores batch_size then
    torch = pytest.importorskip("torch")
    loader = torch.utils.data.DataLoader(list(range(20)), batch_size=5)
    assert arm_stamp.fit_batch_size((loader,), {}) == 5
    hypermodel = AutoInitHyperModel(mlp_build(), autoinit=CountingAutoInit())
    hypermodel.build(small_mlp_space()).fit(Batches(12), epochs=1, verbose=0)
    assert CountingAutoInit.probe_batches == [12]


def test_only_keras_tuners_own_callbacks_are_left_out_of_the_other_arms(tmp_path):
    from keras_tuner.src.engine import tuner_utils

    hypermodel = AutoInitHyperModel(mlp_build(), init="compare")
    tuner = keras_tuner.RandomSearch(hypermodel, max_trials=1, hyperparameters=small_mlp_space(),
                                     **tuner_kwargs(tmp_path, "callbacks"))
    trial = tuner.oracle.create_trial("tuner0")
    ours = tuner_utils.TunerCallback(tuner, trial)
    board = keras.callbacks.TensorBoard(str(tmp_path / "logs"))
    history = keras.callbacks.History()
    callbacks = [board, history, ours, tuner_utils.SaveBestEpoch(tuner.oracle.objective, str(tmp_path / "w"))]
    assert context.TrialContext.find(callbacks).trial_id == trial.trial_id
    copies = context.arm_callbacks(callbacks, "default")
    assert [type(c) for c in copies] == [keras.callbacks.TensorBoard, keras.callbacks.History]
    assert copies[0].log_dir == str(tmp_path / "logs" / "default") and board.log_dir == str(tmp_path / "logs")
