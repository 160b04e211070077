"""A toy engine living in the tests folder: every trial trains in this process, one after another.

It is what a new engine needs and nothing more: a sweep driver (``ToyDriver``),
a reader of its own files (``ToyReader``), its options (``ToyOptions``: a
``--toy-budget`` flag), and one ``Engine`` line. Its records go through the
shared lifecycle (``autoinit_nas.trials.lifecycle``).
"""

import json
import os
import time

import keras

from autoinit_nas.core.architecture import describe_model
from autoinit_nas.engines import Engine
from autoinit_nas.integrations.keras_tuner import hyperparameters_from_overrides
from autoinit_nas.trials import arms, lifecycle, records
from autoinit_nas.trials.divergence import DivergenceCallback
from autoinit_nas.trials.metrics import best_history_epoch, better_for, summarize_history

NAME = "toy"
PARAMS_FILE = "toy.json"  # the toy's own file, written before a trial starts


class ToyOptions:
    """``--toy-budget``: epochs per arm (default 1), part of the sweep's identity."""

    DEFAULTS = {"toy_budget": 1}
    IDENTITY = ("toy_budget",)

    @staticmethod
    def add_arguments(parser):
        parser.add_argument("--toy-budget", dest="toy_budget", type=int, metavar="E",
                            help="toy engine: epochs per arm (default 1)")

    @staticmethod
    def validate(options):
        budget = options.get("toy_budget")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ValueError(f"`toy_budget` must be a positive int. Received: toy_budget={budget!r}")


class ToyReader:
    """The toy's own files: ``trial_<i>/toy.json`` (its hyperparameters), written before the record."""

    @staticmethod
    def engine_status(directory, files):
        return "started" if PARAMS_FILE in files else None

    @staticmethod
    def orphan(directory, files):
        if PARAMS_FILE not in files:
            return None
        with open(os.path.join(directory, PARAMS_FILE), encoding="utf-8") as stream:
            params = json.load(stream)
        return {"engine": NAME, "trial_id": params["trial_id"], "status": "error", "error": "no record",
                "engine_status": "started", "trial_dir": directory, "mode": None,
                "hyperparameters": params["hyperparameters"]}


class ToyDriver:
    """Trains the sweep's missing trials in this process; each arm for ``toy_budget`` epochs."""

    def run(self, context):
        spec = context.spec
        finished = {r["trial_id"] for r in records.read_records(context.store)
                    if r.get("status") in ("completed", "diverged")}
        context.done_before = len(finished)
        for index in range(spec.trials):
            if str(index) not in finished:
                start = time.perf_counter()
                record = self._trial(context, index)
                context.trial_finished(record, trial_id=str(index), seconds=time.perf_counter() - start)

    def _trial(self, context, index):
        spec = context.spec
        directory = os.path.join(context.store, f"trial_{index}")
        hp = hyperparameters_from_overrides(spec.hyperparameters)
        context.build(hp)  # declares the space's defaults
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, PARAMS_FILE), "w", encoding="utf-8") as stream:
            json.dump({"trial_id": str(index), "hyperparameters": records.json_safe(hp.values)}, stream)
        seed = arms.trial_seed({**hp.values, "toy_trial": index}, spec.seed)
        record = lifecycle.start(NAME, str(index), "+".join(spec.arm_list), seed=seed, hyperparameters=hp.values,
                                 objective={"name": spec.objective, "direction": spec.direction})
        lifecycle.start_execution(record)
        try:
            for arm in spec.arm_list:
                self._train_arm(context, record, arm, hp, seed)
                records.write_record(directory, record)
            lifecycle.finish(record)
        except Exception as error:  # noqa: BLE001 - recorded, and the sweep counts it
            lifecycle.fail(record, error)
        records.write_record(directory, record)
        return record

    def _train_arm(self, context, record, arm, hp, seed):
        spec = context.spec
        (x, y), validation = context.dataset.train, context.dataset.validation
        keras.utils.set_random_seed(seed)
        model = context.build(hp)
        if record["architecture_id"] is None:
            record.update(describe_model(model))
        applied, _ = arms.apply_arm(arm, model, context.autoinit, seed, probe_batch=spec.batch_size,
                                    data=arms.data_batch(x, spec.batch_size))
        fields = lifecycle.open_arm(record, arm, dict(arms.uninitialized_arm(training=True), **applied))
        monitor = DivergenceCallback()
        start = time.perf_counter()
        history = model.fit(x, y, validation_data=validation, epochs=context.options["toy_budget"],
                            batch_size=spec.batch_size, verbose=0, callbacks=[monitor]).history
        score = lambda logs: logs.get(spec.objective)  # noqa: E731
        best = best_history_epoch(history, score, better_for(spec.direction))
        fields.update(summarize_history(history, best, monitor.divergence), history=history,
                      train_seconds=time.perf_counter() - start)


ENGINE = Engine(NAME, folder="toy", driver=ToyDriver, reader=ToyReader, options=ToyOptions)
