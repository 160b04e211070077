"""A Ray Tune sweep on a simulated two-node cluster, with an estimator that exists only here.

Run by ``test_ray_tune.test_two_node_cluster_shares_estimators_and_estimates``
in a subprocess of its own, so its ``ray.cluster_utils.Cluster`` (a head node
and one worker node, one CPU each) does not meet the test session's Ray.
Two trials are pinned to each node (custom resources), so both nodes run
trials whatever the timing.

The custom layer and its estimator are defined in this script, i.e. in
``__main__``: no worker can import them, so they reach the trials only because
Ray's cloudpickle pickles ``__main__`` classes by value (the AutoInit and its
registry through the object store, the build function with the trainable).

Usage: python ray_cluster_check.py OUTPUT_JSON STORAGE_DIR
Writes {"nodes": [...], "records": [...], "stats": {...}, "errors": [...]}.
"""

import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
warnings.simplefilter("ignore")

import keras  # noqa: E402
import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from autoinit_nas import AutoInit, LayerOutputDistributionEstimator  # noqa: E402
from autoinit_nas.integrations import records  # noqa: E402
from autoinit_nas.integrations.estimate_cache import SharedEstimateCache  # noqa: E402
from autoinit_nas.integrations.ray_tune import (  # noqa: E402
    RayReportCallback,
    build_from_config,
    prepare_model,
    with_autoinit,
)
from tests.integrations.digits import digits  # noqa: E402

CACHE_NAME = "cluster_check_estimates"


class ShiftedDouble(keras.layers.Layer):
    """y = 2 x + 0.5 (a layer no worker can import)."""

    def call(self, inputs):
        return 2.0 * inputs + 0.5


class ShiftedDoubleEstimator(LayerOutputDistributionEstimator):
    """E[2X + 0.5] = 2 E[X] + 0.5, Var(2X + 0.5) = 4 Var(X)."""

    def estimate(self, means_in, vars_in):
        return 2.0 * means_in[0] + 0.5, 4.0 * vars_in[0]


def build(hp):
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(hp.Choice("units", [8, 16, 24, 32]), name="hidden")(inputs)
    shifted = ShiftedDouble(name="shifted")(hidden)
    logits = keras.layers.Dense(10, name="logits")(shifted)
    outputs = keras.layers.Activation("softmax", name="probabilities")(logits)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train(config, build, data):
    (x, y), validation = data
    model = prepare_model(build_from_config(build, config), config)
    model.fit(x, y, validation_data=validation, epochs=1, batch_size=64, verbose=0, callbacks=[RayReportCallback()])


def placement(config):
    """Trials with 8 or 24 units on the head node, 16 or 32 on the worker node."""
    slot = "head_slot" if config["units"] in (8, 24) else "worker_slot"
    return tune.PlacementGroupFactory([{"CPU": 1, slot: 1}])


def main(output, storage):
    # One CPU per node; a custom resource per node pins two of the four trials to each,
    # whatever the timing of actor start-up and reuse.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"head_slot": 1}})
    cluster.add_node(num_cpus=1, resources={"worker_slot": 1})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        cache = SharedEstimateCache(name=CACHE_NAME)
        autoinit = AutoInit(
            weight_init_config={"monte_carlo_samples": 200_000},
            custom_distribution_estimators={ShiftedDouble: ShiftedDoubleEstimator},
            # The test checks the estimator's own prediction (the probe would report a measurement).
            propagation="scalar",
        )
        trainable = with_autoinit(
            train, autoinit, build=build, data=digits("flat"), shared_cache=cache, metric="val_accuracy"
        )
        results = tune.Tuner(
            tune.with_resources(trainable, placement),
            param_space={"units": tune.grid_search([8, 16, 24, 32]), "init": "autoinit"},
            tune_config=tune.TuneConfig(reuse_actors=True),
            run_config=tune.RunConfig(storage_path=storage, name="cluster", verbose=0),
        ).fit()
        report = {
            "nodes": sorted(node["NodeID"] for node in ray.nodes() if node["Alive"]),
            "records": records.read_records(results.experiment_path),
            "stats": cache.stats(),
            "errors": [str(result.error) for result in results if result.error],
        }
        cache.shutdown()
    finally:
        ray.shutdown()
        cluster.shutdown()
    with open(output, "w") as stream:
        json.dump(report, stream)
    print("finished", len(report["records"]), "trials on", len(report["nodes"]), "nodes")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
