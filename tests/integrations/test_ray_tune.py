"""with_autoinit, the shared estimate cache and search spaces in real Ray Tune runs on digits.

One local Ray (``ray_session``, 2 CPUs) serves every test here; trials are tiny
MLPs trained for one epoch on a few hundred digits. The two-node cluster runs
in a subprocess (``ray_cluster_check.py``).
"""

import asyncio
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import keras
import keras_tuner
import numpy as np
import pytest

import search_spaces
from autoinit_nas import AutoInit
from autoinit_nas.engines.ray import estimate_cache
from autoinit_nas.integrations import records
from autoinit_nas.integrations.estimate_cache import EstimateStore, SharedEstimateCache
from autoinit_nas.integrations.ray_tune import (
    RayReportCallback,
    build_from_config,
    current_record,
    paired_search,
    param_space_from_space,
    prepare_model,
    set_tensorflow_threads,
    trial_seed,
    with_autoinit,
)
from tests.integrations.digits import digits

tune = pytest.importorskip("ray.tune")

FAST_AUTOINIT = {"monte_carlo_samples": 100_000}


def small_mlp_space(**fixed):
    """The mlp space narrowed to tiny candidates; ``fixed`` pins more (or the same) names."""
    hp = keras_tuner.HyperParameters()
    for name, value in fixed.items():
        hp.Fixed(name, value)
    narrowed = {
        "depth": lambda: hp.Int("depth", 1, 2),
        "units": lambda: hp.Choice("units", [16, 32]),
        "normalization": lambda: hp.Fixed("normalization", "none"),
        "dropout": lambda: hp.Fixed("dropout", 0.0),
        "learning_rate": lambda: hp.Fixed("learning_rate", 1e-2),
    }
    for name, declare in narrowed.items():
        if name not in fixed:
            declare()
    return hp


def mlp_build():
    return search_spaces.get("mlp")((64,), 10)


def train(config, build, data, log=None, failing=False, driver_pid=0):
    """The trainable of these tests; ``config["case"]`` asks for misbehaviour."""
    case = config.get("case", "ok")
    if log is not None:
        with open(log, "a") as stream:
            stream.write(case + "\n")
    (x, y), validation = data
    if case == "fail" and failing:
        raise RuntimeError("this trial fails on purpose")
    weights = np.full(len(y), np.nan, "float32") if case == "diverge" else None  # a NaN loss at once
    if case == "interrupt" and driver_pid:
        os.kill(driver_pid, signal.SIGUSR1)  # what Ctrl+C does to Tune: stop, save state
        time.sleep(2.0)
    model = prepare_model(build_from_config(build, config), config)
    import tensorflow as tf

    current_record()["worker"]["observed_threads"] = [
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    ]
    model.fit(
        x, y, sample_weight=weights, validation_data=validation, epochs=1, batch_size=64, verbose=0,
        callbacks=[RayReportCallback()],
    )


def arm_of(record):
    (arm, fields), = record["executions"][-1]["arms"].items()
    return arm, fields


# --- search spaces ------------------------------------------------------------------


def every_kind_of_hyperparameter(hp):
    hp.Int("plain_int", 2, 5)
    hp.Int("stepped_int", 1, 10, step=3)
    hp.Int("log_int", 2, 64, sampling="log")
    hp.Int("log_stepped_int", 2, 32, step=2, sampling="log")
    hp.Float("plain_float", -1.0, 1.0)
    hp.Float("log_float", 1e-4, 1e-1, sampling="log")
    hp.Float("stepped_float", 0.0, 0.5, step=0.1)
    hp.Float("reverse_float", 1.0, 10.0, sampling="reverse_log")
    hp.Choice("choice", ["a", "b", "c"])
    hp.Boolean("flag")
    hp.Fixed("fixed", 7)
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def test_param_space_maps_every_hyperparameter_kind():
    from ray.tune.search import sample

    space = param_space_from_space(every_kind_of_hyperparameter)
    assert space["fixed"] == 7
    assert isinstance(space["plain_int"], sample.Integer)
    assert (space["plain_int"].lower, space["plain_int"].upper) == (2, 6)  # randint's upper is exclusive
    assert space["stepped_int"].categories == [1, 4, 7, 10]
    assert isinstance(space["log_int"].get_sampler(), sample.LogUniform)
    assert space["log_stepped_int"].categories == [2, 4, 8, 16, 32]
    assert isinstance(space["plain_float"], sample.Float) and space["plain_float"].lower == -1.0
    assert isinstance(space["log_float"].get_sampler(), sample.LogUniform)
    # keras-tuner's own values, float floor division included: it never draws 0.5 here either.
    assert [round(v, 6) for v in space["stepped_float"].categories] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert space["choice"].categories == ["a", "b", "c"]
    assert space["flag"].categories == [True, False]
    for name in ("plain_int", "log_int", "plain_float", "log_float"):
        values = space[name].sample(size=200)
        assert all(-1.0 <= value <= 64 for value in values)
    assert set(space["plain_int"].sample(size=200)) == {2, 3, 4, 5}
    reverse = [space["reverse_float"].func(None) for _ in range(200)]
    assert all(1.0 <= value <= 10.0 for value in reverse)
    assert np.median(reverse) > 5.5  # dense near the maximum


def test_param_space_honours_pre_declared_hyperparameters_and_adds_the_arm_grid():
    space = param_space_from_space(mlp_build(), small_mlp_space(activation="tanh"), init=("autoinit", "default"))
    assert space["init"] == {"grid_search": ["autoinit", "default"]}
    assert (space["depth"].lower, space["depth"].upper) == (1, 3)
    assert space["units"].categories == [16, 32]
    assert space["activation"] == "tanh" and space["dropout"] == 0.0
    assert param_space_from_space(mlp_build(), init="default")["init"] == "default"
    with pytest.raises(ValueError, match=r"'autoinit', 'default'.*Received: init='both'"):
        param_space_from_space(mlp_build(), init="both")


def test_build_from_config_builds_what_the_config_says():
    build = mlp_build()
    space = param_space_from_space(build)
    rng = np.random.default_rng(0)
    for _ in range(3):
        config = {
            name: (domain.sample() if hasattr(domain, "sample") else domain) for name, domain in space.items()
        }
        config["depth"] = int(rng.integers(1, 4))
        config["init"] = "default"
        model = build_from_config(build, config)
        dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
        assert len(dense) == config["depth"] + 1
        assert all(layer.units == config["units"] for layer in dense[:-1])
        # The same model as keras-tuner builds from the same values.
        hp = keras_tuner.HyperParameters()
        build(hp)
        hp.values.update({name: value for name, value in config.items() if name != "init"})
        assert records.architecture_id(build(hp)) == records.architecture_id(model)


def test_trial_seed_pairs_arms_and_ignores_numpy_types():
    config = {"depth": np.int64(2), "units": 16, "init": "autoinit"}
    assert trial_seed(config) == trial_seed({"depth": 2, "units": 16, "init": "default"})
    assert trial_seed(config) != trial_seed(config, seed=1)
    assert paired_search()._constant_grid_search is True


# --- arguments and helpers ------------------------------------------------------------


def test_bad_arguments_are_explained():
    with pytest.raises(TypeError, match="function trainable"):
        with_autoinit("train")
    with pytest.raises(TypeError, match="AutoInit instance"):
        with_autoinit(train, autoinit={"seed": 0})
    with pytest.raises(TypeError, match="get_or_compute"):
        with_autoinit(train, shared_cache="actor")
    with pytest.raises(ValueError, match="`mode` must be one of"):
        with_autoinit(train, mode="up")
    with pytest.raises(ValueError, match="Received: init='both'"):
        prepare_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), {"init": "both"})
    with pytest.raises(ValueError, match="shared"):
        SharedEstimateCache(shared="some")
    with pytest.raises(ValueError, match="wait_timeout_s"):
        SharedEstimateCache(wait_timeout_s=0)


def test_prepare_model_outside_a_trial_applies_the_arm_and_records_nothing():
    x = keras.Input((16,))
    model = keras.Model(x, keras.layers.Dense(8)(x))
    before = np.array(model.layers[-1].kernel)
    assert prepare_model(model, {"init": "default"}) is model
    np.testing.assert_array_equal(np.array(model.layers[-1].kernel), before)
    prepare_model(model)  # "autoinit" by default
    assert not np.array_equal(np.array(model.layers[-1].kernel), before)
    assert current_record() is None


def test_tensorflow_threads_after_initialization_are_reported_not_raised():
    import tensorflow as tf

    _ = tf.constant(1.0) + 1.0  # TensorFlow's runtime is surely up now
    current = tf.config.threading.get_intra_op_parallelism_threads()
    info = set_tensorflow_threads(current + 3)
    assert info["applied"] is False
    assert "already initialized" in info["reason"]
    assert tf.config.threading.get_intra_op_parallelism_threads() == current


def test_estimate_store_computes_each_key_once_and_counts_nodes():
    async def scenario():
        store = EstimateStore()
        assert await store.lookup("k", "node-a", 5.0) == (False, None)  # a computes
        waiting = asyncio.ensure_future(store.lookup("k", "node-b", 5.0))
        await asyncio.sleep(0.01)
        assert not waiting.done()  # b waits for a instead of sampling too
        await store.store("k", 0.25, "node-a")
        assert await waiting == (True, 0.25)
        assert await store.lookup("k", "node-a", 5.0) == (True, 0.25)
        # A failed computation hands the key to the next asker.
        assert await store.lookup("j", "node-a", 5.0) == (False, None)
        waiting = asyncio.ensure_future(store.lookup("j", "node-b", 5.0))
        await asyncio.sleep(0.01)
        await store.release("j")
        assert await waiting == (False, None)
        return await store.stats()

    stats = asyncio.run(scenario())
    assert stats["hits"] == 2 and stats["misses"] == 3 and stats["entries"] == 1
    assert stats["cross_node_hits"] == 1
    assert stats["hits_by_node"] == {"node-a": 1, "node-b": 1}
    assert stats["computed_by_node"] == {"node-a": 1}


def test_shared_cache_client_asks_the_actor_and_travels_by_pickle(ray_session):
    key = ("SoftmaxEstimator", "vector", ("softmax", 10), (0.0, 1.0), 100, 100, 0)
    cheap = ("DenseEstimator", "quadrature", "tanh", (0.0, 1.0), 100, 100, 0)
    first = SharedEstimateCache(name="test_client_cache")
    assert first.get_or_compute(key, lambda: (0.1, 0.01)) == (0.1, 0.01)
    assert first.get_or_compute(cheap, lambda: (0.0, 0.4)) == (0.0, 0.4)
    assert first.counts() == {"hits": 0, "misses": 2, "shared_hits": 0, "shared_misses": 1, "errors": 0}
    estimate_cache._LOCAL.clear()  # as if in another process
    second = pickle.loads(pickle.dumps(first))
    assert second.counts()["misses"] == 0

    def must_not_run():
        raise AssertionError("a shared estimate was computed twice")

    assert second.get_or_compute(key, must_not_run) == (0.1, 0.01)
    assert second.counts()["shared_hits"] == 1
    assert second.get_or_compute(cheap, lambda: (0.0, 0.4)) == (0.0, 0.4)  # not shared: computed here
    stats = second.stats()
    assert stats["entries"] == 1 and stats["hits"] == 1 and stats["misses"] == 1
    second.shutdown()
    assert second.stats() is None


# --- sweeps ---------------------------------------------------------------------------


def test_paired_sweep_records_every_trial_and_shares_sampled_estimates(ray_session, tmp_path):
    import pyarrow.fs

    build = mlp_build()
    cache = SharedEstimateCache(name="test_paired_estimates")
    # A storage filesystem that is not pyarrow's LocalFileSystem: records take the upload path
    # that S3/GCS storage uses.
    storage = pyarrow.fs.SubTreeFileSystem(str(tmp_path), pyarrow.fs.LocalFileSystem())
    tuner = tune.Tuner(
        with_autoinit(
            # Scalar propagation: the checks below are its predictions and its sampled estimates.
            train, AutoInit(weight_init_config=FAST_AUTOINIT, propagation="scalar"), build=build,
            data=digits("flat"), shared_cache=cache, metric="val_accuracy",
        ),
        param_space=param_space_from_space(build, small_mlp_space(), init=("autoinit", "default")),
        tune_config=tune.TuneConfig(
            num_samples=2, search_alg=paired_search(), reuse_actors=True, metric="val_accuracy", mode="max"
        ),
        run_config=tune.RunConfig(storage_path="sweeps", storage_filesystem=storage, name="paired", verbose=0),
    )
    results = tuner.fit()
    assert not results.errors
    found = records.read_records(str(tmp_path / "sweeps" / "paired"))
    assert sorted(r["trial_id"] for r in found) == sorted(result.metrics["trial_id"] for result in results)
    by_seed = {}
    for record in found:
        assert record["engine"] == "ray" and record["status"] == "completed" and record["reason"] is None
        assert record["objective"] == {"name": "val_accuracy", "direction": "max"}
        assert record["parameter_count"] > 0 and record["depth"] in (2, 3)
        assert record["worker"]["node_id"] and record["worker"]["trial_name"]
        threads = record["worker"]["threads"]
        assert threads["applied"] and threads["intra_op"] == threads["inter_op"] == 1
        assert record["worker"]["observed_threads"] == [1, 1]  # TensorFlow follows the trial's one CPU
        arm, fields = arm_of(record)
        assert arm == record["init"] == record["hyperparameters"]["init"]
        assert fields["epochs"] == 1 and fields["train_seconds"] > 0 and not fields["diverged"]
        assert set(fields["metrics"]) >= {"loss", "val_loss", "accuracy", "val_accuracy"}
        assert fields["history"]["val_accuracy"] == [fields["final_metrics"]["val_accuracy"]]
        by_seed.setdefault(record["seed"], []).append((arm, fields, record))
    assert len(by_seed) == 2
    for pair in by_seed.values():
        assert sorted(arm for arm, _, _ in pair) == ["autoinit", "default"]
        (_, auto, auto_record), = [p for p in pair if p[0] == "autoinit"]
        (_, default, default_record), = [p for p in pair if p[0] == "default"]
        assert auto_record["architecture_id"] == default_record["architecture_id"]
        strip = lambda hp: {k: v for k, v in hp.items() if k != "init"}  # noqa: E731
        assert strip(auto_record["hyperparameters"]) == strip(default_record["hyperparameters"])
        assert auto["initialized"] and auto["init_seconds"] > 0 and auto["autoinit_seed"] == auto_record["seed"]
        assert auto["layers_without_estimator"] == 0 and auto["unsupported_layers"] == []
        assert auto["estimates"]["logits"] == pytest.approx([0.0, 1.0])
        assert 0.0 < auto["predicted_output_variance"] < 0.1  # softmax over 10 classes
        assert not default["initialized"] and default["predicted_output_variance"] is None
        assert default["init_seconds"] == 0.0 and "cache_hits" not in default
    # Tune got one report per epoch with the arm and divergence flag.
    for result in results:
        assert result.metrics["epoch"] == 1 and result.metrics["diverged"] is False
        assert result.metrics["init"] == result.config["init"]
    # The softmax head's Monte Carlo estimate was sampled once for the whole sweep.
    autoinit_fields = [arm_of(record)[1] for record in found if record["init"] == "autoinit"]
    assert sum(fields["cache_shared_misses"] for fields in autoinit_fields) == 1
    assert sorted(fields["cache_shared_misses"] for fields in autoinit_fields) == [0, 1]
    stats = cache.stats()
    assert stats["misses"] == 1 and stats["entries"] == 1
    cache.shutdown()


@pytest.fixture(scope="module")
def interrupted_sweep(ray_session, tmp_path_factory):
    """A sweep with a good, a diverging and a failing trial, interrupted (SIGUSR1) at the fourth."""
    directory = tmp_path_factory.mktemp("interrupted")
    log = str(directory / "runs.log")
    build = mlp_build()
    cases = ["ok", "diverge", "fail", "interrupt", "late"]
    space = param_space_from_space(build, small_mlp_space(depth=1, units=16, activation="relu", skip=False))
    space["case"] = tune.grid_search(cases)
    arguments = dict(build=build, data=digits("flat"), log=log, metric="val_accuracy",
                     autoinit=AutoInit(weight_init_config=FAST_AUTOINIT))
    results = tune.Tuner(
        with_autoinit(train, failing=True, driver_pid=os.getpid(), **arguments),
        param_space=space,
        tune_config=tune.TuneConfig(max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(
            storage_path=str(directory), name="sweep", verbose=0,
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    ).fit()
    return {"directory": directory, "log": log, "results": results, "arguments": arguments, "cases": cases}


def records_by_case(path):
    return {record["hyperparameters"]["case"]: record for record in records.read_records(path)}


def test_diverged_and_failed_trials_are_recorded_and_the_sweep_goes_on(interrupted_sweep):
    results = interrupted_sweep["results"]
    by_case = {result.config["case"]: result for result in results}
    found = records_by_case(results.experiment_path)
    assert found["ok"]["status"] == "completed"
    diverged = found["diverge"]
    assert diverged["status"] == "diverged"
    assert diverged["reason"].startswith("autoinit arm: non-finite loss (nan) at epoch 0, batch 0")
    arm, fields = arm_of(diverged)
    assert fields["diverged"] and fields["epochs"] == 1 and fields["metrics"]["loss"] is None
    assert by_case["diverge"].error is None  # ends normally: no retry reruns a divergence
    last_report = by_case["diverge"].metrics
    assert last_report["diverged"] is True and "non-finite loss" in last_report["divergence"]
    failed = found["fail"]
    assert failed["status"] == "error" and failed["reason"] == "RuntimeError: this trial fails on purpose"
    assert failed["executions"] == []
    assert by_case["fail"].error is not None
    # The failure did not stop the sweep; the interrupt did, before the last trial.
    with open(interrupted_sweep["log"]) as stream:
        assert stream.read().split() == ["ok", "diverge", "fail", "interrupt"]
    assert "late" not in found


def test_restore_reruns_only_errored_and_unfinished_trials(interrupted_sweep):
    results = interrupted_sweep["results"]
    finished = records_by_case(results.experiment_path)
    tuner = tune.Tuner.restore(
        results.experiment_path,
        trainable=with_autoinit(train, failing=False, driver_pid=0, **interrupted_sweep["arguments"]),
        resume_errored=True,
    )
    restored = tuner.fit()
    assert not restored.errors and len(restored) == 5
    with open(interrupted_sweep["log"]) as stream:
        runs = stream.read().split()
    assert runs.count("ok") == 1 and runs.count("diverge") == 1  # finished: not rerun
    assert runs.count("fail") == 2 and runs.count("late") == 1
    found = records_by_case(restored.experiment_path)
    assert set(found) == set(interrupted_sweep["cases"])
    for case in ("ok", "diverge"):
        assert found[case]["updated_at"] == finished[case]["updated_at"]
    assert found["diverge"]["status"] == "diverged"
    for case in ("ok", "fail", "interrupt", "late"):
        assert found[case]["status"] == "completed", found[case]["reason"]


class FakeTrialContext:
    """What ``tune.get_context()`` gives a trial, for running ``_run_trial`` outside Tune."""

    def __init__(self, trial_dir):
        self.trial_dir = trial_dir

    def get_trial_id(self):
        return "fake_00001"

    def get_trial_name(self):
        return "train_fake_00001"

    def get_trial_dir(self):
        return self.trial_dir

    def get_trial_resources(self):
        raise RuntimeError("outside Tune")  # one CPU


def test_a_trial_restored_after_it_finished_reports_its_record_instead_of_training(
    ray_session, tmp_path, monkeypatch
):
    """Tune saves its state every ~10 s: a driver killed just after a trial ended restores it as unfinished."""
    from autoinit_nas.engines.ray import trainable as ray_tune

    trial_dir = str(tmp_path / "trial")
    reports, trainings = [], []
    monkeypatch.setattr(tune, "get_context", lambda: FakeTrialContext(trial_dir))
    monkeypatch.setattr(tune, "report", lambda metrics, **kwargs: reports.append(dict(metrics)))
    build = mlp_build()
    config = {"depth": 1, "units": 16, "activation": "relu", "normalization": "none", "dropout": 0.0,
              "skip": False, "learning_rate": 1e-2, "init": "autoinit"}
    (x, y), validation = digits("flat")

    def fit(config):
        trainings.append(config["init"])
        model = prepare_model(build_from_config(build, config), config)
        model.fit(x, y, validation_data=validation, epochs=2, batch_size=64, verbose=0,
                  callbacks=[RayReportCallback()])

    def run(config):
        options = ray_tune._Options(seed=0, metric="val_accuracy", mode="max", threads=False)
        portable = ray_tune._PortableAutoInit(AutoInit(weight_init_config=FAST_AUTOINIT))
        ray_tune._run_trial(fit, config, portable, None, options, {})

    run(config)
    path = os.path.join(trial_dir, records.RECORD_FILENAME)
    with open(path) as stream:
        finished = stream.read()
    trained = list(reports)
    assert trainings == ["autoinit"] and [report["epoch"] for report in trained] == [1, 2]

    # Restarted after it finished: the same epochs are reported from the record, nothing trains or changes.
    reports.clear()
    run(config)
    assert trainings == ["autoinit"] and reports == trained
    with open(path) as stream:
        assert stream.read() == finished

    # A record of another trial, or of one that had not finished, is no reason to skip training.
    run(dict(config, units=32))
    assert trainings == ["autoinit", "autoinit"]
    record = records.read_record(path)
    record["status"] = "running"
    records.write_record(trial_dir, record)
    run(dict(config, units=32))
    assert trainings == ["autoinit"] * 3 and records.read_record(path)["status"] == "completed"


# --- several machines -----------------------------------------------------------------


@pytest.mark.slow  # a simulated two-node Ray cluster in a subprocess: make check
def test_two_node_cluster_shares_estimators_and_estimates(tmp_path):
    """Trials on both nodes of a simulated cluster use an estimator defined only in the driver script."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ray_cluster_check.py")
    output = tmp_path / "report.json"
    environment = dict(os.environ, PYTHONPATH=root, RAY_AUTH_MODE="disabled")
    environment.pop("RAY_ADDRESS", None)
    process = subprocess.run(
        [sys.executable, script, str(output), str(tmp_path / "storage")],
        cwd=root, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )
    assert process.returncode == 0, process.stdout[-4000:]
    report = json.loads(output.read_text())
    assert not report["errors"]
    assert len(report["nodes"]) == 2
    found = report["records"]
    assert len(found) == 4
    by_node = {}
    for record in found:
        by_node.setdefault(record["worker"]["node_id"], []).append(record["hyperparameters"]["units"])
    assert set(by_node) == set(report["nodes"])  # both nodes ran trials
    assert sorted(map(sorted, by_node.values())) == [[8, 24], [16, 32]]
    for record in found:
        assert record["status"] == "completed"
        _, fields = arm_of(record)
        # The __main__-only estimator ran on every node: y = 2x + 0.5 after a unit-variance Dense.
        assert fields["layers_without_estimator"] == 0
        assert fields["estimates"]["shifted"] == pytest.approx([0.5, 4.0])
        assert fields["estimates"]["logits"] == pytest.approx([0.0, 1.0])
    stats = report["stats"]
    (computer,) = stats["computed_by_node"]
    assert stats["entries"] == 1 and stats["misses"] == 1  # the softmax head, sampled once for the cluster
    assert stats["cross_node_hits"] > 0
    assert any(node != computer and hits > 0 for node, hits in stats["hits_by_node"].items())
    other = [record for record in found if record["worker"]["node_id"] != computer]
    assert sum(arm_of(record)[1]["cache_shared_hits"] for record in other) >= 1
    assert all(arm_of(record)[1]["cache_shared_misses"] == 0 for record in other)


class ProbeBatchAutoInit(AutoInit):
    """Notes the probe batch each initialization was asked for."""

    probe_batches = []

    def initialize_model(self, model, *args, **kwargs):
        self.probe_batches.append(kwargs.get("probe_batch"))
        return super().initialize_model(model, *args, **kwargs)


@pytest.mark.parametrize("batch_size, probed", [(64, 64), (None, 32)])
def test_prepare_model_probes_at_the_trials_batch_size(ray_session, tmp_path, monkeypatch, batch_size, probed):
    from autoinit_nas.engines.ray import trainable as ray_tune

    monkeypatch.setattr(tune, "get_context", lambda: FakeTrialContext(str(tmp_path / "trial")))
    ProbeBatchAutoInit.probe_batches.clear()
    config = {"depth": 1, "units": 8, "init": "autoinit"}
    build = mlp_build()

    def fit(config):
        prepare_model(build_from_config(build, config), config, batch_size=batch_size)

    options = ray_tune._Options(seed=0, metric=None, mode="max", threads=False)
    portable = ray_tune._PortableAutoInit(ProbeBatchAutoInit(weight_init_config=FAST_AUTOINIT))
    ray_tune._run_trial(fit, config, portable, None, options, {})
    assert ProbeBatchAutoInit.probe_batches == [probed]  # once, at the trial's batch (Keras's 32 by default)
