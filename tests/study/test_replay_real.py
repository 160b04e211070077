"""The replay against real searches: a Ray Tune ASHA sweep and a keras-tuner Hyperband search choose what it chooses.

tests/study/test_replay.py checks the replay against the libraries' scheduler
and oracle objects driven by hand; here the whole search runs (``Tuner.fit``,
``Tuner.search``) and its trials report recorded validation curves, so the
replay must agree with everything around the rules too: how Tune orders trials
and breaks ties in ``get_best_result``, how keras-tuner's ``run_trial`` passes
epochs and scores a continued trial from its own ``fit``.
"""

import gc
import time

import keras
import numpy as np
import pytest

from autoinit_nas.study import replay

keras_tuner = pytest.importorskip("keras_tuner")

METRIC = "val_accuracy"


# --- Ray Tune ASHA --------------------------------------------------------------------------------


def report_curve(config, curves):
    """A function trainable: candidate ``config["candidate"]`` reports its recorded curve, one epoch a report."""
    from ray import tune

    started = time.time()
    for score in curves[config["candidate"]]:
        tune.report({METRIC: float(score), "started": started})


def tune_asha(trainable, param_space, storage, max_t, reduction_factor, callbacks=()):
    """Results of one sequential ASHA sweep (one bracket, grace period 1, one trial at a time)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from autoinit_nas.engines.ray import session

    scheduler = ASHAScheduler(metric=METRIC, mode="max", max_t=max_t, grace_period=1,
                              reduction_factor=reduction_factor)
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=1, max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(storage), name="asha", verbose=0, callbacks=list(callbacks)),
    )
    with session.tune_session():
        results = tuner.fit()
    assert not results.errors, results.errors
    return results


def learning_curves(candidates, epochs, seed, decimals=None):
    """Seeded saturating validation curves with noise; rounded to ``decimals`` they tie often."""
    rng = np.random.default_rng(seed)
    start, gain, rate = (rng.uniform(low, high, (candidates, 1)) for low, high in ((0.1, 0.5), (0.1, 0.5), (0.1, 1)))
    epoch = np.arange(1, epochs + 1)
    curves = start + gain * (1 - np.exp(-rate * epoch)) + rng.normal(0, 0.03, (candidates, epochs))
    return curves if decimals is None else np.round(curves, decimals)


ASHA_CASES = {  # (reduction factor, curves): in every case trials stop after three different epoch counts or more
    "rf2": (2, learning_curves(10, 12, seed=0)),
    "rf3": (3, learning_curves(9, 12, seed=0)),
    "rf2-ties": (2, learning_curves(8, 12, seed=3, decimals=1)),
    "rf3-ties": (3, learning_curves(10, 12, seed=9, decimals=2)),
}


# make test keeps the tied cases (what a wrong tie-break or cutoff fails); make check runs all four.
@pytest.mark.parametrize("case", [pytest.param(case, marks=[] if "ties" in case else [pytest.mark.slow])
                                  for case in ASHA_CASES])
def test_a_ray_asha_sweep_over_recorded_curves_chooses_what_the_replay_chooses(ray_session, tmp_path, case):
    from ray import tune

    reduction_factor, curves = ASHA_CASES[case]
    max_t = curves.shape[1]
    results = tune_asha(tune.with_parameters(report_curve, curves=curves),
                        {"candidate": tune.grid_search(list(range(len(curves))))}, tmp_path, max_t, reduction_factor)
    by_candidate = {result.config["candidate"]: result for result in results}
    assert sorted(by_candidate) == list(range(len(curves)))
    arrivals = sorted(by_candidate, key=lambda c: by_candidate[c].metrics["started"])
    assert arrivals == list(range(len(curves)))  # the replay's arrival order: the grid's, one at a time
    epochs = [by_candidate[c].metrics["training_iteration"] for c in range(len(curves))]
    stops = replay.asha_stops(curves, max_t, 1, reduction_factor).tolist()
    assert epochs == stops
    assert 1 in stops and max_t in stops and len(set(stops)) >= 3  # several rungs decided something
    chosen = results.get_best_result(METRIC, "max", scope="last").config["candidate"]
    assert chosen == replay.choose_asha(curves, max_t, 1, reduction_factor)
    if case.endswith("ties"):  # the tie is real, and Tune broke it as the replay does: the earlier trial
        last = curves[np.arange(len(curves)), np.array(stops) - 1]
        assert np.sum(last == last.max()) >= 2 and chosen == int(np.flatnonzero(last == last.max())[0])


# --- Ray Tune ASHA on real training ------------------------------------------------------------


REAL_CANDIDATES = [(16, 3e-2), (8, 1e-1), (4, 1e-4), (8, 1e-3), (32, 1e-2), (16, 3e-3)]  # (units, learning rate)
REAL_EPOCHS = 8


def train_candidate(config, data):
    """A tiny Dense net on iris through our Ray integration: AutoInit applied, every epoch reported and recorded."""
    from autoinit_nas.integrations.ray_tune import RayReportCallback, prepare_model

    units, learning_rate = REAL_CANDIDATES[config["candidate"]]
    inputs = keras.Input(data.input_shape)
    hidden = keras.layers.Dense(units, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(data.num_classes, activation="softmax")(hidden))
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model = prepare_model(model, config, batch_size=16)
    model.fit(*data.train, validation_data=data.validation, epochs=REAL_EPOCHS, batch_size=16, verbose=0,
              callbacks=[RayReportCallback()])


def recorded_curves(root, candidates, epochs):
    """(curves (candidates, epochs), epochs trained) from the trial records; untrained epochs ``MISSING_SCORE``."""
    from autoinit_nas.trials import records

    curves = np.full((candidates, epochs), replay.MISSING_SCORE)
    trained = np.zeros(candidates, dtype=int)
    for record in records.read_records(str(root)):
        (arm,) = record["executions"][-1]["arms"].values()
        history = arm["history"][METRIC]
        candidate = record["hyperparameters"]["candidate"]
        curves[candidate, :len(history)] = history
        trained[candidate] = len(history)
    return curves, trained


@pytest.mark.slow
def test_a_ray_asha_sweep_that_trains_chooses_what_the_replay_of_its_records_chooses(ray_session, tmp_path):
    from ray import tune

    from autoinit_nas import AutoInit, datasets
    from autoinit_nas.engines.ray import session
    from autoinit_nas.integrations.ray_tune import with_autoinit

    data = datasets.load("iris", seed=0)
    trainable = with_autoinit(train_candidate, AutoInit(weight_init_config={"monte_carlo_samples": 100_000}),
                              data=data, metric=METRIC)
    space = {"candidate": tune.grid_search(list(range(len(REAL_CANDIDATES)))), "init": "autoinit"}
    results = tune_asha(trainable, space, tmp_path, REAL_EPOCHS, 2, callbacks=[session.progress_callback()])
    curves, trained = recorded_curves(tmp_path / "asha", len(REAL_CANDIDATES), REAL_EPOCHS)
    by_candidate = {result.config["candidate"]: result for result in results}
    assert trained.tolist() == [by_candidate[c].metrics["training_iteration"] for c in range(len(curves))]
    assert replay.asha_stops(curves, REAL_EPOCHS, 1, 2).tolist() == trained.tolist()
    assert len(set(trained.tolist())) >= 3  # ASHA stopped trials at two rungs (1 and 4 when last measured)
    chosen = results.get_best_result(METRIC, "max", scope="last").config["candidate"]
    assert chosen == replay.choose_asha(curves, REAL_EPOCHS, 1, 2)


# --- keras-tuner Hyperband ------------------------------------------------------------------------


class RecordedCurves(keras_tuner.HyperModel):
    """A HyperModel whose ``fit`` replays candidate ``hp["candidate"]``'s recorded curve.

    ``fit`` drives the tuner's callbacks (its checkpoint and trial callbacks) and
    a ``History`` through the epochs it is asked for, as ``Model.fit`` would, so
    keras-tuner scores the trial from that ``History`` (the best validation
    score of this fit) and continues a promoted trial from its checkpoint.
    """

    def __init__(self, curves):
        super().__init__(name="recorded_curves")
        self.curves = curves
        self.fits = []  # (candidate, initial_epoch, epochs) per fit, in the order they ran

    def build(self, hp):
        hp.Int("candidate", 0, len(self.curves) - 1)
        inputs = keras.Input((1,))
        return keras.Model(inputs, keras.layers.Dense(1)(inputs))

    def fit(self, hp, model, *args, epochs=1, initial_epoch=0, callbacks=(), **kwargs):
        candidate = hp["candidate"]
        self.fits.append((candidate, initial_epoch, epochs))
        callbacks = keras.callbacks.CallbackList(list(callbacks), add_history=True, model=model)
        callbacks.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            callbacks.on_epoch_begin(epoch)
            callbacks.on_epoch_end(epoch, {METRIC: float(self.curves[candidate, epoch])})
        callbacks.on_train_end()
        return model.history


class InOrderHyperbandOracle(keras_tuner.oracles.HyperbandOracle):
    """keras-tuner's Hyperband oracle, its round-0 slots given candidates 0, 1, 2, ... instead of random ones.

    The replay assigns a subset's candidates to the round-0 slots in arrival
    order; ``_random_values`` is the sampler ``HyperbandOracle._random_trial``
    (and nothing else) calls. Everything else is keras-tuner's.
    """

    arrivals = 0

    def _random_values(self):
        values, self.arrivals = {"candidate": self.arrivals}, self.arrivals + 1
        return values


class InOrderHyperband(keras_tuner.Hyperband):
    """keras-tuner's ``Hyperband`` tuner (its ``run_trial`` and checkpoint reloads) on ``InOrderHyperbandOracle``."""

    def __init__(self, hypermodel, max_epochs, directory):
        oracle = InOrderHyperbandOracle(objective=keras_tuner.Objective(METRIC, "max"), max_epochs=max_epochs,
                                        factor=3, hyperband_iterations=1)
        keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, directory=str(directory),
                                   project_name="hyperband", overwrite=True)


@pytest.fixture
def frozen_heap():
    """The heap so far left out of garbage collection: keras-tuner's ``gc.collect()`` per trial then takes
    milliseconds instead of half a second under a loaded TensorFlow (it changes nothing the search decides)."""
    gc.freeze()
    yield
    gc.unfreeze()


HYPERBAND_CASES = {  # (max_epochs, curves); "ties": the pick hangs on a tied promotion cut and a tied best score
    "9": (9, learning_curves(replay.hyperband_candidates(9), 9, seed=0)),
    "9-ties": (9, learning_curves(replay.hyperband_candidates(9), 9, seed=5, decimals=1)),
    "12": (12, learning_curves(replay.hyperband_candidates(12), 12, seed=2)),
    "12-ties": (12, learning_curves(replay.hyperband_candidates(12), 12, seed=10, decimals=1)),
}


@pytest.mark.parametrize("case", list(HYPERBAND_CASES))
def test_a_keras_tuner_hyperband_search_over_recorded_curves_chooses_what_the_replay_chooses(tmp_path, frozen_heap,
                                                                                             case):
    max_epochs, curves = HYPERBAND_CASES[case]
    hypermodel = RecordedCurves(curves)
    tuner = InOrderHyperband(hypermodel, max_epochs, tmp_path)
    tuner.search(verbose=0)
    expected = []  # (initial_epoch, epochs) per trial, in keras-tuner's order: bracket by bracket, round by round
    for bracket in replay.hyperband_brackets(max_epochs, factor=3):
        starts = [0] + [epochs for _, epochs in bracket[:-1]]
        expected += [(start, epochs) for (size, epochs), start in zip(bracket, starts) for _ in range(size)]
    assert [(start, epochs) for _, start, epochs in hypermodel.fits] == expected
    fresh = [candidate for candidate, start, _ in hypermodel.fits if start == 0]
    assert fresh == list(range(replay.hyperband_candidates(max_epochs)))  # round-0 slots in arrival order
    assert len(tuner.oracle.trials) == len(expected)
    (best,) = tuner.oracle.get_best_trials(1)
    assert best.hyperparameters["candidate"] == replay.choose_hyperband(curves, max_epochs, factor=3)
    if case.endswith("ties"):  # the tie is real, and keras-tuner broke it as the replay does: the earlier trial
        trials = list(tuner.oracle.trials.values())  # in creation order
        top = [trial for trial in trials if trial.score == best.score]
        assert len({trial.hyperparameters["candidate"] for trial in top}) >= 2 and best is top[0]
