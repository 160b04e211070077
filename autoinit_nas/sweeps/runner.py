"""Running a sweep: load the data and space, hand them to the engine, keep the state on disk."""

import dataclasses
import os
import time

from autoinit_nas.engines import ENGINES
from autoinit_nas.sweeps import searches
from autoinit_nas.sweeps import state as sweep_state
from autoinit_nas.sweeps.progress import SweepContext, duration


@dataclasses.dataclass
class Sweep:
    """A sweep's directory, and what the last ``run_sweep`` did in it."""

    out: str
    spec: object
    ran: list
    done_before: int
    seconds: float
    winners: list = None  # per-arm searches: one row per arm (``autoinit_nas.sweeps.winners``)

    def table(self):
        """``autoinit_nas.results.trials_table`` of everything in ``out``."""
        from autoinit_nas.results import trials_table

        return trials_table(self.out)


def run_sweep(spec, progress=print, overwrite=False):
    """Run (or resume) ``spec``; returns a ``Sweep``.

    Several ``arms`` under a multi-fidelity search (keras-tuner's Hyperband,
    Ray's ASHA or HyperBand) run one search per arm from the same seed, then
    retrain and test each search's winner (``autoinit_nas.sweeps.searches``).

    Example:
        >>> from autoinit_nas.sweeps import SweepSpec
        >>> sweep = run_sweep(SweepSpec(data="wine", trials=2, epochs=1, out="out/wine"))  # doctest: +SKIP

    Args:
        spec: a ``SweepSpec``.
        progress: called with one line of text per event (start, each trial, end).
        overwrite: delete what ``spec.out`` holds first, instead of resuming.

    Raises:
        SweepError: ``out`` holds a different sweep, or trials keep failing.
        ValueError: a bad spec field.
    """
    spec.validate()
    if searches.per_arm(spec):
        return Sweep(**searches.run_searches(spec, _run_search, progress=progress, overwrite=overwrite))
    return _run_search(spec, progress, overwrite)


def _run_search(spec, progress, overwrite):
    """One search: the engine trains the missing trials of ``spec``; returns a ``Sweep``."""
    out = os.path.abspath(spec.out)
    engine = ENGINES[spec.engine]
    state_path = os.path.join(out, sweep_state.SPEC_FILE)
    if overwrite:
        sweep_state.clear(out, [e.folder for e in ENGINES.values()])
    state = sweep_state.read_state(state_path)
    sweep_state.check_resumable(state, spec)
    dataset, build = _load(spec)
    state = state or {"spec": None, "runs": []}
    state["spec"] = sweep_state.jsonable(dataclasses.asdict(spec))
    state["dataset"] = {"name": dataset.name, "train": len(dataset.y_train), "validation": len(dataset.y_val),
                        "input_shape": list(dataset.input_shape), "num_classes": dataset.num_classes,
                        "test": None if dataset.y_test is None else len(dataset.y_test)}
    entry = {"started_at": sweep_state.now(), "finished_at": None, "trials": spec.trials, "ran": [],
             "status": "running"}
    state["runs"].append(entry)
    sweep_state.write_state(state_path, state)
    context = SweepContext(spec=spec, dataset=dataset, build=build, store=os.path.join(out, engine.folder),
                           progress=progress, autoinit=spec.autoinit(), options=spec.options())
    progress(_opening_line(spec, dataset))
    start = time.perf_counter()
    status = "error"
    try:
        _quiet_tensorflow()
        engine.sweep_driver().run(context)
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        seconds = time.perf_counter() - start
        entry.update(finished_at=sweep_state.now(), ran=[str(t) for t in context.ran], status=status,
                     seconds=seconds)
        sweep_state.write_state(state_path, state)
    progress(_closing_line(spec, context, seconds))
    return Sweep(out=out, spec=spec, ran=list(context.ran), done_before=context.done_before, seconds=seconds)


def _load(spec):
    """The spec's dataset and search space (``SweepSpec.load``)."""
    return spec.load()


def _opening_line(spec, dataset):
    named = {"compare": "AutoInit vs default", "autoinit": "AutoInit", "default": "default init"}
    arms = " vs ".join(spec.arms) if spec.arms else named.get(spec.init, f"{spec.init} init")
    return (
        f"sweep {spec.space} on {dataset.summary()}\n"
        f"  {spec.engine}, {spec.trials} candidates x {spec.epochs} epochs, {arms}, objective {spec.objective} "
        f"({spec.direction}), seed {spec.seed} -> {spec.out}"
    )


def _closing_line(spec, context, seconds):
    total = context.total or spec.trials
    if context.done_before and not context.ran:
        return f"nothing to run: {context.done_before} trials done, {total} asked for"
    resumed = f", {context.done_before} done before" if context.done_before else ""
    return f"ran {len(context.ran)} trial(s) in {duration(seconds)}{resumed}; results in {spec.out}"


def _quiet_tensorflow():
    """Silence TensorFlow's Python-side warnings (retracing notes) during a sweep."""
    try:
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
    except Exception:  # noqa: BLE001 - another backend, or no TensorFlow
        pass
