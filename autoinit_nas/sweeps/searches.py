"""Per-arm searches: under a multi-fidelity search, one search per arm from the same seed, then its winner tested.

Successive halving (keras-tuner's Hyperband, Ray's ASHA and HyperBand) stops
candidates on partial budgets, so arms paired inside a trial end up compared
at different budgets. With several ``arms`` and an engine whose options say
``multi_fidelity(options)``, the sweep instead runs one single-arm search per
arm into ``<out>/searches/<arm>/`` from the same spec and seed (the same
candidate stream and brackets), each on the train / validation split of a
dataset whose test split (``test_fraction``, 0.2 unless the spec sets one) is
held out; then ``winners`` retrains each search's winner and scores it on the
test split. Layout and resuming: docs/engines.md ("Per-arm searches").

Example:
    >>> from autoinit_nas.sweeps.spec import SweepSpec
    >>> spec = SweepSpec(arms=["he", "lecun"], engine_options={"tuner": "hyperband"}, out="out/s")
    >>> per_arm(spec), search_spec(spec, "he").out, search_spec(spec, "he").test_fraction
    (True, 'out/s/searches/he', 0.2)
"""

import dataclasses
import os
import time

from autoinit_nas.engines import ENGINES
from autoinit_nas.sweeps import state as sweep_state
from autoinit_nas.sweeps import winners as sweep_winners
from autoinit_nas.sweeps.progress import duration

SEARCHES = sweep_winners.SEARCHES  # the folder under ``out`` holding one search per arm
TEST_FRACTION = 0.2  # the test split per-arm searches hold out when the spec sets none


def per_arm(spec):
    """Whether ``spec`` runs one search per arm: several ``arms`` and a multi-fidelity engine search.

    The engine says which of its searches are multi-fidelity through its
    options module's ``multi_fidelity(options)``; an engine without one never
    runs per-arm searches.
    """
    if not spec.arms or len(spec.arms) < 2:
        return False
    capability = getattr(ENGINES[spec.engine].option_module(), "multi_fidelity", None)
    return bool(capability is not None and capability(spec.options()))


def search_spec(spec, arm):
    """The single-arm sweep of ``arm`` inside ``spec``: the same spec, ``init=arm``, its own folder and a test split."""
    return dataclasses.replace(
        spec, init=arm, arms=None, out=os.path.join(spec.out, SEARCHES, arm),
        test_fraction=spec.test_fraction if spec.test_fraction is not None else TEST_FRACTION,
    )


def run_searches(spec, run_search, progress=print, overwrite=False):
    """Run (or resume) one search per arm of ``spec`` with ``run_search``, then retrain and test the winners.

    ``run_search(spec, progress, overwrite)`` runs one single-arm sweep (the
    runner's). A search whose last run completed with as many trials is
    skipped; so is a winner already retrained (``winners.retrain_winners``).
    Returns the fields of a ``runner.Sweep``.
    """
    out = os.path.abspath(spec.out)
    state_path = os.path.join(out, sweep_state.SPEC_FILE)
    if overwrite:
        sweep_state.clear(out, [engine.folder for engine in ENGINES.values()] + [SEARCHES])
    state = sweep_state.read_state(state_path)
    sweep_state.check_resumable(state, spec)
    state = state or {"spec": None, "runs": []}
    state["spec"] = sweep_state.jsonable(dataclasses.asdict(spec))
    state["searches"] = {arm: os.path.join(SEARCHES, arm) for arm in spec.arms}
    entry = {"started_at": sweep_state.now(), "finished_at": None, "trials": spec.trials, "ran": [],
             "status": "running"}
    state["runs"].append(entry)
    sweep_state.write_state(state_path, state)
    progress(_opening_line(spec))
    start, ran, done_before, status, rows = time.perf_counter(), [], 0, "error", []
    try:
        for position, arm in enumerate(spec.arms, 1):
            sub = search_spec(spec, arm)
            if search_done(sub):
                done_before += sub.trials
                progress(f"search {position}/{len(spec.arms)} ({arm}): done before, {sub.trials} trials in {sub.out}")
                continue
            progress(f"search {position}/{len(spec.arms)} ({arm}) -> {sub.out}")
            result = run_search(sub, progress, False)
            ran += [f"{arm}/{trial}" for trial in result.ran]
            done_before += result.done_before
        rows = sweep_winners.retrain_winners(spec, [search_spec(spec, arm) for arm in spec.arms], progress)
        status = "completed"
    finally:
        seconds = time.perf_counter() - start
        entry.update(finished_at=sweep_state.now(), ran=ran, status=status, seconds=seconds)
        sweep_state.write_state(state_path, state)
    progress(f"ran {len(ran)} trial(s) in {len(spec.arms)} searches in {duration(seconds)}; results in {spec.out}")
    return {"out": out, "spec": spec, "ran": ran, "done_before": done_before, "seconds": seconds, "winners": rows}


def search_done(spec):
    """Whether the single-arm search ``spec`` finished: its last run completed, with as many trials as asked."""
    state = sweep_state.read_state(os.path.join(os.path.abspath(spec.out), sweep_state.SPEC_FILE))
    if not state or not state.get("runs"):
        return False
    last = state["runs"][-1]
    return last.get("status") == "completed" and last.get("trials") == spec.trials


def _opening_line(spec):
    return (
        f"per-arm searches: {', '.join(spec.arms)}: one {spec.engine} search each from seed {spec.seed} "
        f"(the same candidates and brackets), selecting on the validation split; each winner is retrained "
        f"for {spec.epochs} epochs and scored on a held-out test split -> {spec.out}"
    )
