"""AutoInitHyperModel with real keras-tuner searches on digits (one short epoch per trial)."""

import json
import os
import socket
import subprocess
import sys

import keras
import keras_tuner
import numpy as np
import pytest

import search_spaces
from autoinit_nas import AutoInit, LayerOutputDistributionEstimator
from autoinit_nas.trials import records
from autoinit_nas.integrations.keras_tuner import DEFAULT_ARM_WEIGHTS, AutoInitHyperModel
from tests.integrations.digits import ProbeHyperModel, digits, trial_id_of

FIT = {"epochs": 1, "batch_size": 32, "verbose": 0}


def small_mlp_space(**fixed):
    """The mlp space narrowed to tiny candidates, plus any fixed values."""
    hp = keras_tuner.HyperParameters()
    hp.Int("depth", 1, 3)
    hp.Choice("units", [16, 32])
    hp.Fixed("dropout", 0.0)
    hp.Fixed("learning_rate", 1e-2)
    for name, value in fixed.items():
        hp.Fixed(name, value)
    return hp


def mlp_build():
    return search_spaces.get("mlp")((64,), 10)


def search(tuner, **fit):
    (x, y), validation = digits("flat")
    tuner.search(x, y, validation_data=validation, **{**FIT, **fit})
    return records.read_records(tuner.project_dir)


def tuner_kwargs(tmp_path, name, **extra):
    return dict(objective="val_accuracy", directory=str(tmp_path), project_name=name, overwrite=True, **extra)


# --- arguments -----------------------------------------------------------------


def test_bad_init_names_the_modes():
    with pytest.raises(ValueError, match=r"'autoinit', 'default', .*'compare'.*Received: init='both'"):
        AutoInitHyperModel(mlp_build(), init="both")


def test_bad_hypermodel_and_autoinit_are_type_errors():
    with pytest.raises(TypeError, match="build\\(hp\\)"):
        AutoInitHyperModel("mlp")
    with pytest.raises(TypeError, match="AutoInit instance"):
        AutoInitHyperModel(mlp_build(), autoinit={"seed": 0})


def test_trial_seed_ignores_hyperband_bookkeeping():
    hypermodel = AutoInitHyperModel(mlp_build())
    hp = keras_tuner.HyperParameters()
    hp.values.update({"depth": 2, "units": 16})
    continued = hp.copy()
    continued.values.update({"tuner/trial_id": "0003", "tuner/epochs": 3})
    assert hypermodel.trial_seed(hp) == hypermodel.trial_seed(continued)
    assert hypermodel.trial_seed(hp) != AutoInitHyperModel(mlp_build(), seed=1).trial_seed(hp)


# --- construction ----------------------------------------------------------------


class CountingAutoInit(AutoInit):
    calls = []

    probe_batches = []

    def initialize_model(self, model, *args, **kwargs):
        self.calls.append(model.name)
        self.probe_batches.append(kwargs.get("probe_batch"))
        return super().initialize_model(model, *args, **kwargs)


def test_tuner_construction_builds_without_autoinit(tmp_path):
    CountingAutoInit.calls.clear()
    builds = []

    def build(hp):
        builds.append(1)
        return mlp_build()(hp)

    hypermodel = AutoInitHyperModel(build, autoinit=CountingAutoInit())
    tuner = keras_tuner.RandomSearch(hypermodel, max_trials=1, **tuner_kwargs(tmp_path, "construct"))
    assert builds and not CountingAutoInit.calls
    assert "depth" in tuner.oracle.get_space().values
    assert records.read_records(tuner.project_dir) == []


def test_a_trial_initializes_once_at_its_batch_size_and_a_rebuild_applies_the_arm(tmp_path):
    """keras-tuner's retraining idiom, build(best_hp) then fit, gets the searched (AutoInit) model."""
    CountingAutoInit.calls.clear()
    CountingAutoInit.probe_batches.clear()
    hypermodel = AutoInitHyperModel(mlp_build(), autoinit=CountingAutoInit())
    tuner = keras_tuner.RandomSearch(hypermodel, max_trials=1, seed=1, hyperparameters=small_mlp_space(),
                                     **tuner_kwargs(tmp_path, "rebuild"))
    search(tuner, batch_size=16)
    assert CountingAutoInit.probe_batches == [16]  # one initialization, in fit, at the fit's batch size
    best_hp = tuner.get_best_hyperparameters()[0]
    rebuilt = tuner.hypermodel.build(best_hp)
    assert CountingAutoInit.probe_batches == [16, 16]  # the rebuild probes at the batch the trial recorded
    keras.utils.set_random_seed(hypermodel.trial_seed(best_hp))
    plain = mlp_build()(best_hp.copy())  # the same draws, without the arm
    rebuilt_kernel, plain_kernel = (np.asarray(m.layers[1].kernel) for m in (rebuilt, plain))
    assert not np.allclose(rebuilt_kernel, plain_kernel)
    again = tuner.hypermodel.build(best_hp)
    np.testing.assert_allclose(np.asarray(again.layers[1].kernel), rebuilt_kernel)
    (record,) = records.read_records(tuner.project_dir)
    assert record["executions"][0]["arms"]["autoinit"]["initialized"]
    assert record["executions"][0]["arms"]["autoinit"]["probe_batch"] == 16


# --- modes -------------------------------------------------------------------------


def test_autoinit_mode_records_every_field_on_disk(tmp_path):
    tuner = keras_tuner.RandomSearch(
        AutoInitHyperModel(mlp_build()), max_trials=2, seed=1, hyperparameters=small_mlp_space(),
        **tuner_kwargs(tmp_path, "autoinit"),
    )
    found = search(tuner)
    assert len(found) == 2
    for record in found:
        path = os.path.join(tuner.project_dir, f"trial_{record['trial_id']}", records.RECORD_FILENAME)
        assert os.path.exists(path)
        assert record["init"] == "autoinit" and record["status"] == "completed"
        assert record["objective"] == {"name": "val_accuracy", "direction": "max"}
        assert len(record["architecture_id"]) == 64 and record["parameter_count"] > 0
        assert record["depth"] == record["hyperparameters"]["depth"] + 1
        assert isinstance(record["seed"], int) and record["reloaded_from"] is None
        assert record["worker"]["tuner_id"] == "tuner0"
        (execution,) = record["executions"]
        arm = execution["arms"]["autoinit"]
        assert arm["initialized"] and arm["init_seconds"] > 0 and arm["train_seconds"] > 0
        assert arm["autoinit_seed"] == record["seed"]
        assert arm["predicted_output_variance"] > 0 and arm["layers_without_estimator"] == 0
        assert arm["diverged"] is False and arm["divergence"] is None and arm["epochs"] == 1
        assert set(arm["metrics"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
        trial = tuner.oracle.get_trial(record["trial_id"])
        assert trial.metrics.get_best_value("val_accuracy") == pytest.approx(arm["metrics"]["val_accuracy"])


def test_default_mode_leaves_keras_initializers(tmp_path):
    probe = ProbeHyperModel(mlp_build())
    tuner = keras_tuner.RandomSearch(
        AutoInitHyperModel(probe, init="default"), max_trials=1, seed=1, executions_per_trial=2,
        hyperparameters=small_mlp_space(), **tuner_kwargs(tmp_path, "default"),
    )
    (record,) = search(tuner)
    assert record["init"] == "default" and record["status"] == "completed"
    assert [execution["execution"] for execution in record["executions"]] == [0, 1]
    for execution in record["executions"]:
        arms = execution["arms"]
        assert list(arms) == ["default"]
        assert arms["default"]["initialized"] is False and arms["default"]["init_seconds"] == 0.0
        assert arms["default"]["predicted_output_variance"] is None
    for probed in probe.probes[record["trial_id"]]:
        assert {init for _, init in probed["initializers"].values()} == {"GlorotUniform"}


class Doubler(keras.layers.Layer):
    def call(self, inputs):
        return 2.0 * inputs


class DoublerEstimator(LayerOutputDistributionEstimator):
    calls = 0

    def estimate(self, means_in, vars_in):
        DoublerEstimator.calls += 1
        return 2.0 * means_in[0], 4.0 * vars_in[0]


def test_custom_estimators_reach_every_trial(tmp_path):
    def build(hp):
        inputs = keras.Input((64,))
        hidden = Doubler()(keras.layers.Dense(hp.Choice("units", [8, 16]), activation="relu")(inputs))
        logits = keras.layers.Dense(10, name="logits")(hidden)
        model = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    autoinit = AutoInit(custom_distribution_estimators={Doubler: DoublerEstimator})
    hypermodel = AutoInitHyperModel(build, autoinit=autoinit)
    tuner = keras_tuner.RandomSearch(hypermodel, max_trials=2, seed=0, **tuner_kwargs(tmp_path, "custom"))
    found = search(tuner)
    assert DoublerEstimator.calls == 2 and autoinit.unsupported_layers == []
    for record in found:
        arm = record["executions"][0]["arms"]["autoinit"]
        assert arm["layers_without_estimator"] == 0
        doubled = next(value for name, value in arm["estimates"].items() if name.startswith("doubler"))
        assert doubled[1] == pytest.approx(4 * arm["estimates"][next(n for n in arm["estimates"] if n.startswith("dense"))][1])


class BrokenFit(keras_tuner.HyperModel):
    def build(self, hp):
        return mlp_build()(hp)

    def fit(self, hp, model, *args, **kwargs):
        raise RuntimeError("the data loader fell over")


def test_errors_are_recorded_and_reraised(tmp_path):
    tuner = keras_tuner.RandomSearch(
        AutoInitHyperModel(BrokenFit()), max_trials=1, hyperparameters=small_mlp_space(),
        **tuner_kwargs(tmp_path, "errors"),
    )
    (record,) = search(tuner)
    assert record["status"] == "error"
    assert record["reason"] == "RuntimeError: the data loader fell over"
    assert record["executions"][0]["arms"]["autoinit"]["initialized"]  # it got that far
    trial = tuner.oracle.get_trial(record["trial_id"])
    assert trial.status == "FAILED" and "the data loader fell over" in trial.message


def test_compare_mode_trains_both_arms_from_one_seed(tmp_path):
    probe = ProbeHyperModel(mlp_build())
    hypermodel = AutoInitHyperModel(probe, init="compare")
    tuner = keras_tuner.RandomSearch(
        hypermodel, max_trials=2, seed=2, hyperparameters=small_mlp_space(), **tuner_kwargs(tmp_path, "compare"),
    )
    found = search(tuner)
    assert len(found) == 2
    for record in found:
        arms = record["executions"][0]["arms"]
        assert set(arms) == {"autoinit", "default"}
        assert arms["autoinit"]["initialized"] and not arms["default"]["initialized"]
        trial = tuner.oracle.get_trial(record["trial_id"])
        for name in ("val_accuracy", "val_loss", "accuracy"):
            assert trial.metrics.get_best_value(name) == pytest.approx(arms["autoinit"]["metrics"][name])
            assert trial.metrics.get_best_value("default_" + name) == pytest.approx(arms["default"]["metrics"][name])
        assert trial.score == pytest.approx(arms["autoinit"]["metrics"]["val_accuracy"])
        # The tuner's fit ran once per arm: AutoInit first, then Keras's default.
        autoinit_probe, default_probe = probe.probes[record["trial_id"]]
        assert {init for _, init in autoinit_probe["initializers"].values()} == {"AutoInitInitializer"}
        assert {init for _, init in default_probe["initializers"].values()} == {"GlorotUniform"}
        # The default arm is exactly the build seeded with the trial seed.
        hp = hp_of(record)
        assert record["seed"] == hypermodel.trial_seed(hp)
        keras.utils.set_random_seed(record["seed"])
        fresh = mlp_build()(hp)
        for expected, actual in zip(fresh.get_weights(), default_probe["weights"]):
            np.testing.assert_array_equal(expected, actual)

    # The records are plain JSON: another process reads them without keras-tuner.
    script = (
        "import glob, json, sys\n"
        "paths = sorted(glob.glob(sys.argv[1] + '/trial_*/autoinit_record.json'))\n"
        "print(json.dumps([[r['trial_id'], sorted(r['executions'][0]['arms'])]"
        " for r in map(json.load, map(open, paths))]))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script, tuner.project_dir], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(output) == [[trial_id, ["autoinit", "default"]] for trial_id in sorted(tuner.oracle.trials)]
    table = [row for record in records.read_records(tuner.project_dir) for row in records.rows(record)]
    assert len(table) == 4 and {row["arm"] for row in table} == {"autoinit", "default"}
    assert all("best/val_accuracy" in row and "hp/depth" in row for row in table)


def test_wraps_user_hypermodel_declare_and_fit(tmp_path):
    class UserHyperModel(keras_tuner.HyperModel):
        fits = []

        def declare_hyperparameters(self, hp):
            hp.Choice("batch_size", [16, 32])

        def build(self, hp):
            return mlp_build()(hp)

        def fit(self, hp, model, *args, **kwargs):
            self.fits.append(trial_id_of(kwargs["callbacks"]))
            return model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)

    tuner = keras_tuner.RandomSearch(
        AutoInitHyperModel(UserHyperModel(), init="compare"), max_trials=1, seed=0,
        hyperparameters=small_mlp_space(), **tuner_kwargs(tmp_path, "user"),
    )
    assert "batch_size" in tuner.oracle.get_space().values
    (x, y), validation = digits("flat")
    tuner.search(x, y, validation_data=validation, epochs=1, verbose=0)
    (record,) = records.read_records(tuner.project_dir)
    # One fit per arm; the default arm trains without the tuner's own callbacks.
    assert UserHyperModel.fits == [record["trial_id"], None]
    assert "batch_size" in record["hyperparameters"]


# --- divergence ---------------------------------------------------------------------


class Poison(keras.layers.Layer):
    """Turns every value into NaN while training; AutoInit (which calls it in inference) sees the identity."""

    def call(self, inputs, training=False):
        return inputs * float("nan") if training else inputs


def poisoned_build(hp):
    """A candidate whose output is NaN whenever ``poison`` is on: its loss cannot be finite."""
    model = mlp_build()(hp)
    if hp.Boolean("poison"):
        features = model.get_layer("logits").input
        poisoned = Poison()(features)
        logits = keras.layers.Dense(10, name="logits")(poisoned)
        outputs = keras.layers.Activation("softmax")(logits)
        model = keras.Model(model.inputs, outputs)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_divergent_candidates_are_recorded_and_the_search_completes(tmp_path):
    # Three failures in a row would stop the search at keras-tuner's default limit.
    tuner = keras_tuner.RandomSearch(
        AutoInitHyperModel(poisoned_build), max_trials=3, seed=0,
        hyperparameters=small_mlp_space(poison=True), max_consecutive_failed_trials=None,
        **tuner_kwargs(tmp_path, "diverge"),
    )
    found = search(tuner, epochs=2)
    assert len(found) == 3
    for record in found:
        assert record["status"] == "diverged"
        assert record["reason"].startswith("autoinit arm: non-finite loss")
        for arm in record["executions"][0]["arms"].values():
            assert arm["diverged"] and "non-finite loss" in arm["divergence"]
            assert arm["epochs"] == 1  # stopped at the first non-finite batch
        trial = tuner.oracle.get_trial(record["trial_id"])
        assert trial.status == "FAILED"
        assert "FailedTrialError" in trial.message and "diverged" in trial.message


def test_divergence_counts_towards_the_consecutive_failure_limit(tmp_path):
    tuner = keras_tuner.RandomSearch(
        AutoInitHyperModel(poisoned_build), max_trials=5, seed=0, max_consecutive_failed_trials=2,
        hyperparameters=small_mlp_space(poison=True), **tuner_kwargs(tmp_path, "limit"),
    )
    with pytest.raises(RuntimeError, match="consecutive failures exceeded the limit of 2"):
        search(tuner)
    found = records.read_records(tuner.project_dir)
    assert [record["status"] for record in found] == ["diverged"] * 2


def test_only_a_diverged_default_arm_does_not_fail_the_trial(tmp_path):
    # Huge default weights overflow; AutoInit redraws the same kernels at unit scale.
    def build(hp):
        inputs = keras.Input((64,))
        hidden = keras.layers.Dense(16, kernel_initializer=keras.initializers.Constant(1e30))(inputs)
        hidden = keras.layers.Activation("relu")(hidden)
        logits = keras.layers.Dense(10, name="logits", kernel_initializer=keras.initializers.Constant(1e30))(hidden)
        model = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
        model.compile(keras.optimizers.Adam(hp.Choice("learning_rate", [1e-3])), "sparse_categorical_crossentropy")
        return model

    tuner = keras_tuner.RandomSearch(
        AutoInitHyperModel(build, init="compare"), max_trials=1, objective="val_loss",
        directory=str(tmp_path), project_name="half", overwrite=True,
    )
    (record,) = search(tuner)
    arms = record["executions"][0]["arms"]
    assert record["status"] == "completed"
    assert not arms["autoinit"]["diverged"] and arms["default"]["diverged"]
    trial = tuner.oracle.get_trial(record["trial_id"])
    assert trial.status == "COMPLETED" and not trial.metrics.exists("default_val_loss")


# --- tuners ---------------------------------------------------------------------------


def only_units(**fixed):
    """A space of exactly two candidates (16 or 32 units); everything else at its default."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("units", [16, 32])
    hp.Fixed("learning_rate", 1e-2)
    for name, value in fixed.items():
        hp.Fixed(name, value)
    return dict(hyperparameters=hp, tune_new_entries=False)


def hp_of(record):
    hp = keras_tuner.HyperParameters()
    hp.values.update(record["hyperparameters"])
    return hp


def test_hyperband_continuations_keep_their_loaded_weights(tmp_path):
    # max_epochs=2, factor=2: the first bracket trains both candidates 1 epoch,
    # then continues the better one to epoch 2 from its checkpoint. Stop there.
    probe = ProbeHyperModel(mlp_build())
    tuner = keras_tuner.Hyperband(
        AutoInitHyperModel(probe, init="compare"), max_epochs=2, factor=2, hyperband_iterations=1, seed=0,
        **only_units(), **tuner_kwargs(tmp_path, "hyperband"),
    )
    tuner.oracle.max_trials = 3
    found = search(tuner)
    continued = [record for record in found if record["reloaded_from"] is not None]
    assert len(found) == 3 and len(continued) == 1
    (record,) = continued
    source = {r["trial_id"]: r for r in found}[record["reloaded_from"]]
    assert record["seed"] == source["seed"]
    assert record["architecture_id"] == source["architecture_id"]
    arms = record["executions"][0]["arms"]
    assert arms["autoinit"]["initialized"] is False and arms["autoinit"]["init_seconds"] == 0.0
    assert arms["autoinit"]["estimates"] == source["executions"][0]["arms"]["autoinit"]["estimates"]
    assert arms["autoinit"]["epochs"] == arms["default"]["epochs"] == 1  # epoch 2 only, on top of the loaded one
    # Both arms start from the earlier trial's saved best weights, not from a fresh init.
    autoinit_probe, default_probe = probe.probes[record["trial_id"]]
    source_dir = os.path.join(tuner.project_dir, f"trial_{record['reloaded_from']}")
    for probed, filename in ((autoinit_probe, "checkpoint.weights.h5"), (default_probe, DEFAULT_ARM_WEIGHTS)):
        reference = mlp_build()(hp_of(record))
        reference.load_weights(os.path.join(source_dir, filename))
        for expected, actual in zip(reference.get_weights(), probed["weights"]):
            np.testing.assert_array_equal(expected, actual)


# make check (~7 s)
@pytest.mark.slow
def test_grid_search_runs_every_combination(tmp_path):
    space = only_units(depth=2, activation="tanh")
    space["hyperparameters"].Boolean("skip")  # 2 widths x skip or not: four candidates
    tuner = keras_tuner.GridSearch(
        AutoInitHyperModel(mlp_build()), max_trials=10, **space, **tuner_kwargs(tmp_path, "grid"),
    )
    found = search(tuner)
    combinations = {(r["hyperparameters"]["units"], r["hyperparameters"]["skip"]) for r in found}
    assert combinations == {(16, False), (16, True), (32, False), (32, True)}
    assert len({record["architecture_id"] for record in found}) == 4
    assert all(record["executions"][0]["arms"]["autoinit"]["initialized"] for record in found)


def test_bayesian_optimization_initializes_its_proposals(tmp_path):
    tuner = keras_tuner.BayesianOptimization(
        AutoInitHyperModel(mlp_build()), max_trials=3, num_initial_points=2, seed=0,
        hyperparameters=small_mlp_space(), **tuner_kwargs(tmp_path, "bayes"),
    )
    found = search(tuner)
    assert len(found) == 3  # the third comes from the Gaussian process
    for record in found:
        assert record["status"] == "completed"
        assert record["executions"][0]["arms"]["autoinit"]["initialized"]


# --- distributed -----------------------------------------------------------------------


# make check (~10 s): three processes (chief and two workers)
@pytest.mark.slow
def test_distributed_search_runs_the_same_script(tmp_path):
    """A chief and a worker process, keras-tuner's environment variables, one unchanged script."""
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_search.py")
    environment = dict(
        os.environ, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port), PYTHONPATH=root
    )
    processes = [
        subprocess.Popen(
            [sys.executable, script, str(tmp_path)], env=dict(environment, KERASTUNER_TUNER_ID=role),
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for role in ("chief", "tuner0")
    ]
    outputs = [process.communicate(timeout=240)[0] for process in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    found = records.read_records(str(tmp_path / "distributed"))
    assert len(found) == 2
    for record in found:
        assert record["status"] == "completed"
        assert record["worker"]["tuner_id"] == "tuner0"  # the worker ran it; the chief only served the oracle
        assert set(record["executions"][0]["arms"]) == {"autoinit", "default"}
