"""The study driver: every candidate x every arm on Ray Tune, resumable, with a progress line and ETA.

One Ray trial per candidate (one CPU), which trains all its arms (see
``autoinit_nas.study.trainable``). Everything lives under ``out``:

```
out/study.json        the design and the candidates (what report and resuming read)
out/ray/run-<k>/      the Tune experiment of the k-th invocation: one trial per candidate it trained
out/report/           written by autoinit_nas.study.report
```

Resuming: each invocation reads the trial records already under ``out/ray``;
a candidate whose record finished with every arm is never trained again, and
only the others go to a new Tune experiment (``run-<k+1>``).
"""

import json
import os
import re
import sys
import time

from autoinit_nas.core.autoinit import AutoInit
from autoinit_nas.integrations.ray_tune import progress_callback, tune_session, with_autoinit
from autoinit_nas.trials import records
from autoinit_nas.study.candidates import study_candidates
from autoinit_nas.study.trainable import train_candidate

STUDY_FILE = "study.json"
RAY_FOLDER = "ray"


def finished_runs(out, arms, epochs):
    """{candidate id: record} of the candidates under ``out/ray`` trained to the end under every arm.

    A run counts when its record completed or diverged and each arm either
    ran ``epochs`` epochs or diverged, and has its test score and reference
    run; of several such records (a candidate rerun after a kill) the latest is kept.

    Example:
        >>> finished_runs("/nonexistent/study", ["he"], 2)
        {}
    """
    found = {}
    for record in records.read_records(os.path.join(out, RAY_FOLDER)):
        candidate = ((record.get("hyperparameters") or {}).get("candidate") or {}).get("candidate")
        executions = record.get("executions") or []
        if candidate is None or record.get("status") not in ("completed", "diverged") or not executions:
            continue
        trained = executions[-1].get("arms") or {}
        complete = all(
            arm in trained and ((trained[arm].get("epochs") or 0) >= epochs or trained[arm].get("diverged"))
            and "reference" in trained[arm] for arm in arms
        )
        if complete and str(record.get("updated_at")) >= str((found.get(candidate) or {}).get("updated_at", "")):
            found[candidate] = record
    return found


RUN_FIELDS = ("epochs", "batch_size", "lsuv_batch", "objective", "seed", "hyperparameters", "test_fraction",
              "bn_recalibrate")


def design_conflicts(spec):
    """What ``spec`` changes of the study already under ``spec.out`` that its runs depend on ([] if nothing).

    The records a study resumes from (or reports) must come from the same
    training design: the fields of ``RUN_FIELDS`` and every space and dataset
    entry of the same name. Candidates, arms and new spaces or datasets may
    change (records are matched per candidate and arm).

    Example:
        >>> from autoinit_nas.study.spec import load_spec
        >>> design_conflicts(load_spec("study-quick", out="/nonexistent/study"))
        []
    """
    path = os.path.join(spec.out, STUDY_FILE)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as stream:
        saved = json.load(stream).get("design") or {}
    current = json.loads(json.dumps({key: value for key, value in vars(spec).items()}))
    conflicts = [f"{name}: {saved[name]!r} there, {current[name]!r} now"
                 for name in RUN_FIELDS if name in saved and saved[name] != current[name]]
    for kind in ("spaces", "datasets"):
        before = {entry.get("name"): entry for entry in saved.get(kind) or []}
        conflicts += [f"{kind} {entry['name']!r}: {before[entry['name']]!r} there, {entry!r} now"
                      for entry in current[kind] if entry["name"] in before and before[entry["name"]] != entry]
    return conflicts


def check_design(spec):
    """Raise ValueError naming every ``design_conflicts`` of ``spec``; the study's own folder is fine."""
    conflicts = design_conflicts(spec)
    if conflicts:
        raise ValueError(
            f"{spec.out} holds a study trained with another design, and its records would be mixed with "
            f"this one's: {'; '.join(conflicts)}. Use another --out (or the same flags as before)."
        )


def _write_study_file(spec, candidates):
    os.makedirs(spec.out, exist_ok=True)
    design = {key: value for key, value in vars(spec).items() if key not in ("out", "address")}
    path = os.path.join(spec.out, STUDY_FILE)
    with open(path + ".tmp", "w", encoding="utf-8") as stream:
        json.dump({"design": design, "candidates": candidates}, stream, indent=1)
    os.replace(path + ".tmp", path)


def _next_run_name(store):
    taken = [int(m.group(1)) for name in (os.listdir(store) if os.path.isdir(store) else [])
             if (m := re.fullmatch(r"run-(\d+)", name))]
    return f"run-{max(taken, default=0) + 1}"


def run_study(spec, stream=None):
    """Train every candidate of ``spec`` under every arm that is not finished yet; returns the finished runs.

    Example:
        >>> from autoinit_nas.study.spec import load_spec
        >>> spec = load_spec("study-quick", candidates=3, epochs=2, budgets=[1], arms=["he", "autoinit"],
        ...                  out="out/study-tiny")
        >>> finished = run_study(spec)   # doctest: +SKIP
    """
    stream = stream or sys.stdout
    check_design(spec)
    candidates = study_candidates(spec)
    _write_study_file(spec, candidates)
    done = finished_runs(spec.out, spec.arms, spec.epochs)
    todo = [candidate for candidate in candidates if candidate["candidate"] not in done]
    print(f"study {spec.out}: {len(candidates)} candidates x {len(spec.arms)} arms ({', '.join(spec.arms)}), "
          f"{spec.epochs} epochs; {len(candidates) - len(todo)} finished before, {len(todo)} to train",
          file=stream, flush=True)
    if todo:
        _run_on_ray(spec, todo, Progress(len(candidates), len(candidates) - len(todo), stream))
    return finished_runs(spec.out, spec.arms, spec.epochs)


def _run_on_ray(spec, todo, progress):
    def trial_ended(trial, error):
        progress.finished(trial.config["candidate"]["candidate"], None if error is None else "error")

    with tune_session(address=spec.address, listener=trial_ended):  # Ray up before the object store is used
        _tuner(spec, todo).fit()


def _tuner(spec, todo):
    from ray import tune

    store = os.path.abspath(os.path.join(spec.out, RAY_FOLDER))
    settings = {"arms": list(spec.arms), "epochs": spec.epochs, "batch_size": spec.batch_size,
                "lsuv_batch": spec.lsuv_batch, "seed": spec.seed, "test_fraction": spec.test_fraction,
                "bn_recalibrate": spec.bn_recalibrate,
                "cells": {f"{s['name']}/{d['name']}": (s, d) for s, d in spec.cells()}}
    trainable = with_autoinit(train_candidate, autoinit=AutoInit(), seed=spec.seed, metric=spec.objective,
                              mode="max", settings=settings)
    return tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"candidate": tune.grid_search(todo)},
        tune_config=tune.TuneConfig(reuse_actors=True, trial_dirname_creator=_trial_folder),
        run_config=tune.RunConfig(name=_next_run_name(store), storage_path=store, verbose=0,
                                  callbacks=[progress_callback()],
                                  failure_config=tune.FailureConfig(max_failures=1)),
    )


def _trial_folder(trial):
    candidate = trial.config["candidate"]["candidate"]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", candidate) + f"_{trial.trial_id}"


class Progress:
    """A progress line per finished candidate: a bar, counts, elapsed time and ETA.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> progress = Progress(4, 1, out)
        >>> progress.finished("h/digits/1", None)
        >>> "[2/4]" in out.getvalue() and "ETA" in out.getvalue()
        True
    """

    WIDTH = 24

    def __init__(self, total, done_before, stream):
        self.total, self.done_before, self.stream = total, done_before, stream
        self.done = 0
        self.started = time.monotonic()

    def finished(self, candidate, error):
        self.done += 1
        position = self.done_before + self.done
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - position)
        filled = int(self.WIDTH * position / max(self.total, 1))
        bar = "#" * filled + "." * (self.WIDTH - filled)
        status = "" if error is None else f" ({error})"
        print(f"[{bar}] [{position}/{self.total}] {candidate}{status}  elapsed {_clock(elapsed)}  "
              f"ETA {_clock(eta)}", file=self.stream, flush=True)


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
