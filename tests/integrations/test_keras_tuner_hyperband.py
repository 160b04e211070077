"""keras-tuner Hyperband around AutoInitHyperModel: continued trials train on from their parent's checkpoints, per arm."""

import os

import keras
import keras_tuner
import numpy as np
import pytest

import search_spaces
from autoinit_nas.integrations.keras_tuner import AutoInitHyperModel
from autoinit_nas.trials import records
from tests.integrations.digits import digits

ARMS = ("autoinit", "he")
# Where each arm's best weights go in its trial directory: keras-tuner's for the tuner's arm, ours for the others.
CHECKPOINTS = {"autoinit": "checkpoint.weights.h5", "he": "he_arm.weights.h5"}


class WeightsAtStart(keras.callbacks.Callback):
    """Keeps the weights every fit starts from, by trial (in training order: the tuner's arm first)."""

    seen = {}  # class-level: keras-tuner and the twin arms train with deep copies of this callback

    def on_train_begin(self, logs=None):
        trial_id = RecordingHyperband.current
        self.seen.setdefault(trial_id, []).append([np.array(w) for w in self.model.get_weights()])


class RecordingHyperband(keras_tuner.Hyperband):
    """Hyperband that notes which trial is running."""

    current = None

    def on_trial_begin(self, trial):
        RecordingHyperband.current = trial.trial_id
        super().on_trial_begin(trial)


def tiny_space():
    """Two candidates: a one-layer MLP of 8 or 16 units."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("units", [8, 16])
    for name, value in dict(depth=1, dropout=0.0, learning_rate=1e-2, normalization="none", skip=False).items():
        hp.Fixed(name, value)
    return hp


def run_hyperband(tmp_path, trials=3, overwrite=True):
    """max_epochs=2, factor=2: both candidates train 1 epoch, then the better continues to epoch 2 (3 trials)."""
    WeightsAtStart.seen.clear()
    build = search_spaces.get("mlp")((64,), 10)
    tuner = RecordingHyperband(
        AutoInitHyperModel(build, arms=list(ARMS)), objective="val_accuracy", max_epochs=2, factor=2,
        hyperband_iterations=1, seed=3, hyperparameters=tiny_space(), tune_new_entries=False,
        directory=str(tmp_path), project_name="hyperband", overwrite=overwrite,
    )
    tuner.oracle.max_trials = trials
    (x, y), validation = digits("flat")
    tuner.search(x[:300], y[:300], validation_data=(validation[0][:100], validation[1][:100]), batch_size=32,
                 callbacks=[WeightsAtStart()], verbose=0)
    return tuner, build, {record["trial_id"]: record for record in records.read_records(tuner.project_dir)}


def test_a_continued_trial_starts_every_arm_from_its_own_parent_checkpoint(tmp_path):
    tuner, build, found = run_hyperband(tmp_path)
    continued = [record for record in found.values() if record["reloaded_from"] is not None]
    assert len(found) == 3 and len(continued) == 1, found
    (record,) = continued
    parent = found[record["reloaded_from"]]
    assert record["reloaded_from"] == tuner.oracle.get_trial(record["trial_id"]).hyperparameters.values[
        "tuner/trial_id"]
    assert record["seed"] == parent["seed"] and record["architecture_id"] == parent["architecture_id"]
    arms = record["executions"][0]["arms"]
    assert [arms[arm]["initialized"] for arm in ARMS] == [False, False]
    assert all(parent["executions"][0]["arms"][arm]["initialized"] for arm in ARMS)
    # Same budget per arm: the parent trained epoch 1, the continuation epoch 2 only, for every arm.
    assert [parent["executions"][0]["arms"][arm]["epochs"] for arm in ARMS] == [1, 1]
    assert [arms[arm]["epochs"] for arm in ARMS] == [1, 1]
    # Each arm's weights at the start of its fit are that arm's checkpoint in the parent's directory.
    started = WeightsAtStart.seen[record["trial_id"]]
    assert len(started) == len(ARMS)
    parent_dir = tuner.get_trial_dir(parent["trial_id"])
    saved = {}
    for arm in ARMS:
        fresh = build(tuner.oracle.get_trial(record["trial_id"]).hyperparameters.copy())
        fresh.load_weights(os.path.join(parent_dir, CHECKPOINTS[arm]))
        saved[arm] = fresh.get_weights()
    for arm, weights in zip(ARMS, started):
        assert len(weights) == len(saved[arm])
        for expected, actual in zip(saved[arm], weights):
            np.testing.assert_array_equal(expected, actual)
    # ... and not the other arm's: the "he" arm does not continue from the tuner arm's weights.
    assert not all(np.array_equal(a, b) for a, b in zip(saved["autoinit"], saved["he"]))


@pytest.mark.slow  # two searches (~25 s): make check
def test_an_arm_without_a_parent_checkpoint_starts_afresh_and_says_so(tmp_path):
    # The two new candidates first; then their "he" checkpoints go (as when that arm never scored a
    # finite objective), and the resumed search continues one of them.
    tuner, _, found = run_hyperband(tmp_path, trials=2)
    assert len(found) == 2
    for trial_id in found:
        os.remove(os.path.join(tuner.get_trial_dir(trial_id), CHECKPOINTS["he"]))
    with pytest.warns(UserWarning, match="saved no he-arm weights .* the he arm starts afresh"):
        _, _, found = run_hyperband(tmp_path, trials=3, overwrite=False)
    (record,) = [record for record in found.values() if record["reloaded_from"] is not None]
    arms = record["executions"][0]["arms"]
    assert arms["autoinit"]["initialized"] is False and arms["he"]["initialized"] is True
