"""Ray Tune schedulers (ASHA, HyperBand, PBT), checkpoints with each report, and trials Tune restores."""

import os
import signal
import time

import keras
import numpy as np
import pytest

from autoinit_nas import AutoInit
from autoinit_nas.engines import ENGINES
from autoinit_nas.engines.ray import checkpoints
from autoinit_nas.engines.ray.callback import RayReportCallback
from autoinit_nas.engines.ray.options import checkpointing
from autoinit_nas.engines.ray.schedulers import EPOCHS, make_scheduler, pbt_mutations
from autoinit_nas.engines.ray.space import build_from_config, param_space_from_space
from autoinit_nas.engines.ray.trainable import initial_epoch, prepare_model, with_autoinit
from autoinit_nas.trials import records
from tests.integrations.digits import digits
from tests.integrations.test_ray_tune import FAST_AUTOINIT, mlp_build, small_mlp_space

tune = pytest.importorskip("ray.tune")


def tiny_model(learning_rate=0.01):
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden))
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# --- options and schedulers ---------------------------------------------------------


@pytest.mark.parametrize("given, message", [
    ({"scheduler": "median"}, "`scheduler` must be one of"),
    ({"grace_period": 0}, "`grace_period` must be an integer >= 1. Received: grace_period=0"),
    ({"reduction_factor": 1}, "`reduction_factor` must be a number greater than 1"),
    ({"perturbation_interval": 1.5}, "`perturbation_interval` must be an integer"),
    ({"scheduler": "pbt", "checkpoints": "off"}, "needs their checkpoints"),
])
def test_bad_scheduler_options_are_explained(given, message):
    with pytest.raises(ValueError, match=message):
        ENGINES["ray"].resolve_options(given)


def test_checkpoints_are_on_by_default_only_for_schedulers_that_pause_or_clone():
    resolve = ENGINES["ray"].resolve_options
    assert [checkpointing(resolve({"scheduler": name})) for name in ("fifo", "asha", "hyperband", "pbt")] == [
        False, False, True, True]
    assert checkpointing(resolve({"scheduler": "asha", "checkpoints": "on"}))


def test_every_scheduler_counts_completed_epochs():
    space = param_space_from_space(mlp_build())  # samples learning_rate
    options = ENGINES["ray"].resolve_options({"grace_period": 2, "reduction_factor": 2})
    assert make_scheduler(options, 4) is None  # fifo
    for name in ("asha", "hyperband", "pbt"):
        scheduler = make_scheduler(dict(options, scheduler=name), 4, space)
        assert scheduler._time_attr == EPOCHS, name
    with pytest.raises(ValueError, match="`grace_period` must be at most the epochs a trial trains"):
        make_scheduler(dict(options, scheduler="asha", grace_period=5), 4)


def test_pbt_perturbs_the_learning_rate_only_and_needs_it_sampled():
    space = param_space_from_space(mlp_build())
    assert list(pbt_mutations(space)) == ["learning_rate"]
    with pytest.raises(ValueError, match="PBT perturbs training hyperparameters only"):
        pbt_mutations(param_space_from_space(mlp_build(), small_mlp_space()))  # learning_rate fixed


# --- checkpoints ----------------------------------------------------------------------


def test_a_checkpoint_restores_weights_and_optimizer_state_but_keeps_the_new_learning_rate(tmp_path):
    (x, y), _ = digits("flat")
    trained = tiny_model(learning_rate=0.01)
    trained.fit(x, y, epochs=1, batch_size=64, verbose=0)
    checkpoints.save(trained, str(tmp_path), {"epochs_completed": 1})
    fresh = tiny_model(learning_rate=0.003)  # what a PBT exploit does: the source's weights, a new rate
    state = checkpoints.load(fresh, str(tmp_path))
    assert state == {"epochs_completed": 1}
    for saved, loaded in zip(trained.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(saved, loaded)
    assert int(fresh.optimizer.iterations.numpy()) == int(trained.optimizer.iterations.numpy()) > 0
    moments = [v for v in fresh.optimizer.variables if "momentum" in v.path]
    assert moments and any(np.abs(v.numpy()).sum() > 0 for v in moments)
    assert float(fresh.optimizer.learning_rate.numpy()) == pytest.approx(0.003)


def test_loading_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    checkpoints.save(tiny_model(), str(tmp_path / "a"), {})
    with pytest.raises(ValueError, match="Expected a checkpoint folder"):
        checkpoints.load(tiny_model(), str(tmp_path / "empty"))
    inputs = keras.Input((64,))
    other = keras.Model(inputs, keras.layers.Dense(10)(inputs))
    with pytest.raises(ValueError):
        checkpoints.load(other, str(tmp_path / "a"))


# --- a trial Tune restores ------------------------------------------------------------


class FailOnce(keras.callbacks.Callback):
    """After the first epoch of the first attempt: save the weights, then fail (the retry must load them).

    ``kill``: instead of raising, SIGKILL the worker process (no Python cleanup, no record written).
    """

    def __init__(self, folder, kill=False):
        super().__init__()
        self.folder = folder
        self.kill = kill

    def on_epoch_end(self, epoch, logs=None):
        marker = os.path.join(self.folder, "failed-once")
        if os.path.exists(marker):
            return
        np.savez(os.path.join(self.folder, "checkpointed.npz"), *self.model.get_weights())
        open(marker, "w").close()
        if self.kill:
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("fails once, after its first epoch's checkpoint")


def fail_once_then_train(config, build, data, folder, kill=False):
    (x, y), validation = data
    model = prepare_model(build_from_config(build, config), config, batch_size=64)
    np.savez(os.path.join(folder, f"start-{initial_epoch()}.npz"), *model.get_weights())
    model.fit(x, y, validation_data=validation, epochs=3, batch_size=64, verbose=0, initial_epoch=initial_epoch(),
              callbacks=[RayReportCallback(), FailOnce(folder, kill)])


@pytest.mark.parametrize("kill", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["raise", "sigkill"])
def test_a_retried_trial_resumes_from_its_checkpoint_instead_of_initializing(ray_session, tmp_path, kill):
    build = mlp_build()
    folder = str(tmp_path)
    tuner = tune.Tuner(
        with_autoinit(fail_once_then_train, AutoInit(weight_init_config=FAST_AUTOINIT), build=build,
                      data=digits("flat"), folder=folder, kill=kill, checkpoint=True, metric="val_accuracy"),
        param_space=param_space_from_space(build, small_mlp_space(depth=1, units=16), init="autoinit"),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), name="retry", verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=1)),
    )
    results = tuner.fit()
    assert not results.errors
    with np.load(os.path.join(folder, "checkpointed.npz")) as saved, np.load(os.path.join(folder, "start-1.npz")) as start:
        assert len(saved.files) == len(start.files) > 0
        for name in saved.files:
            np.testing.assert_array_equal(saved[name], start[name])
    assert results[0].metrics[EPOCHS] == 3  # the epoch counter went on from the checkpoint's
    (record,) = records.read_records(str(tmp_path / "ray"))
    assert record["status"] == "completed"
    assert record["restored_from"]["epochs_completed"] == 1 and record["restored_from"]["count"] == 1
    first, retried = record["executions"]  # the failed attempt's execution is kept
    assert first["arms"]["autoinit"]["initialized"] is True and first["arms"]["autoinit"]["epochs"] == 1
    arm = retried["arms"]["autoinit"]
    assert arm["initialized"] is False and arm["epochs"] == 3 and len(arm["history"]["loss"]) == 3
    assert arm["history"]["loss"][0] == first["arms"]["autoinit"]["history"]["loss"][0]


# --- schedulers in a Tuner --------------------------------------------------------------


def train_tiny(config, data):
    (x, y), validation = data
    model = prepare_model(tiny_model(config["learning_rate"]), config, batch_size=64)
    model.fit(x, y, validation_data=validation, epochs=4, batch_size=64, verbose=0, initial_epoch=initial_epoch(),
              callbacks=[RayReportCallback()])


def test_asha_stops_weak_trials_early_and_their_records_are_closed(ray_session, tmp_path):
    from autoinit_nas.engines.ray import session

    options = ENGINES["ray"].resolve_options({"scheduler": "asha", "grace_period": 1, "reduction_factor": 2})
    tuner = tune.Tuner(
        with_autoinit(train_tiny, AutoInit(weight_init_config=FAST_AUTOINIT), data=digits("flat"),
                      metric="val_accuracy"),
        # A good learning rate first: its rung scores make the cut the hopeless ones miss.
        param_space={"learning_rate": tune.grid_search([0.03, 1e-7, 1e-7]), "init": "default"},
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", scheduler=make_scheduler(options, 4),
                                    max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="asha", verbose=0,
                                  callbacks=[session.progress_callback()]),  # closes the stopped trials' records
    )
    with session.tune_session():
        results = tuner.fit()
    assert not results.errors
    found = records.read_records(str(tmp_path / "asha"))
    epochs = sorted(r["executions"][-1]["arms"]["default"]["epochs"] for r in found)
    assert all(r["status"] == "completed" for r in found), [r["status"] for r in found]
    assert epochs[0] < 4 and epochs[-1] == 4, epochs
    assert sorted(result.metrics[EPOCHS] for result in results) == epochs


# --- sweeps (make check) ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["hyperband", "pbt"])
def test_hyperband_and_pbt_sweeps_complete_on_digits_and_never_reinitialize_restored_trials(
    ray_session, tmp_path, scheduler
):
    from autoinit_nas import sweeps

    out = str(tmp_path / scheduler)
    spec = sweeps.SweepSpec(
        engine="ray", space="mlp", data="digits", trials=4, epochs=3, init="autoinit", out=out, limit=400,
        hyperparameters={"depth": 1, "normalization": "none", "dropout": 0.0, "skip": False},  # units, lr sampled
        engine_options={"scheduler": scheduler, "reduction_factor": 2},
    )
    sweeps.run_sweep(spec, progress=lambda line: None)
    found = {record["trial_id"]: record for record in records.read_records(out)}
    assert len(found) == 4 and {r["status"] for r in found.values()} == {"completed"}
    restored = [r for r in found.values() if r.get("restored_from")]
    for record in restored:
        arm = record["executions"][-1]["arms"]["autoinit"]
        assert arm["initialized"] is False
        # The epoch count goes on from the checkpoint's (a trial paused at its last epoch trains none after).
        assert arm["epochs"] >= record["restored_from"]["epochs_completed"] >= 1
        assert len(arm["history"]["loss"]) == arm["epochs"]
        for restore in record["restores"]:  # PBT exploits load another trial's checkpoint: its architecture
            assert record["architecture_id"] == found[restore["trial_id"]]["architecture_id"] or (
                restore is not record["restores"][-1] and restore["trial_id"] == record["trial_id"])
    if scheduler == "pbt":
        assert restored, "PBT exploited no trial"


# --- an interrupted ASHA sweep, resumed (make check) --------------------------------------

# Each trial's score after epochs 1..4, in arrival order. ASHA (grace 1, reduction 2, max_t 4) lets A, B
# and D train all 4 epochs and stops C and E at their first rung and F at its second: E and F only because
# of the rung scores A to D left, which a restored plain ASHAScheduler has forgotten.
CURVES = {"A": [.5, .6, .7, .8], "B": [.9] * 4, "C": [.6, .7, .8, .9], "D": [.95] * 4,
          "E": [.7, .2, .2, .2], "F": [.8, .3, .3, .3]}
INTERRUPTED_AT = ("D", 2)  # the first run is interrupted after trial D's second epoch


def scripted_trial(config, folder):
    """Report ``CURVES[name]`` through ``RayReportCallback`` (with checkpoints) epoch by epoch, training nothing."""
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile("adam", "mse")
    prepare_model(model, config)  # a resumed trial loads its checkpoint here
    report = RayReportCallback()
    report.set_model(model)
    report.on_train_begin()
    for epoch in range(initial_epoch(), 4):
        report.on_epoch_end(epoch, {"score": CURVES[config["name"]][epoch]})
        paused = os.path.join(folder, "paused")
        if (config["name"], epoch + 1) == INTERRUPTED_AT and not os.path.exists(paused):
            open(paused, "w").close()
            time.sleep(3)  # no third epoch before the driver has acted on the interruption
    report.on_train_end()


class InterruptOnce(tune.Callback):
    """At ``INTERRUPTED_AT``, interrupt the run as Ctrl+C does (SIGUSR1: Tune saves the experiment, returns)."""

    def __init__(self, marker):
        self.marker = marker  # the restored run unpickles this callback too: interrupt once only

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if (trial.config["name"], result.get(EPOCHS)) == INTERRUPTED_AT and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGUSR1)


def scripted_asha(folder, name, callbacks=()):
    options = ENGINES["ray"].resolve_options({"scheduler": "asha", "grace_period": 1, "reduction_factor": 2})
    return tune.Tuner(
        with_autoinit(scripted_trial, folder=folder, checkpoint=True, metric="score"),
        param_space={"name": tune.grid_search(list(CURVES)), "init": "default"},  # one at a time, in order
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=make_scheduler(options, 4),
                                    max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=folder, name=name, verbose=0, callbacks=list(callbacks)),
    )


def epochs_reported(results):
    return {result.config["name"]: result.metrics[EPOCHS] for result in results}


@pytest.mark.slow
def test_an_interrupted_and_resumed_asha_sweep_prunes_as_an_uninterrupted_one(ray_session, tmp_path):
    folder = str(tmp_path)
    uninterrupted = epochs_reported(scripted_asha(folder, "whole").fit())
    assert uninterrupted == {"A": 4, "B": 4, "C": 1, "D": 4, "E": 1, "F": 2}
    first = scripted_asha(folder, "cut", [InterruptOnce(os.path.join(folder, "interrupted"))]).fit()
    assert set(epochs_reported(first)) == set("ABCD"), "the first run was not interrupted during trial D"
    path = os.path.join(folder, "cut")
    resumed = tune.Tuner.restore(path, trainable=with_autoinit(scripted_trial, folder=folder, checkpoint=True,
                                                                metric="score"), resume_errored=True).fit()
    assert not resumed.errors
    assert epochs_reported(resumed) == uninterrupted
    (record,) = [r for r in records.read_records(path) if r["hyperparameters"]["name"] == "D"]
    assert 1 <= record["restored_from"]["epochs_completed"] < 4  # D went on from its checkpoint
    assert record["executions"][-1]["arms"]["default"]["epochs"] == 4
