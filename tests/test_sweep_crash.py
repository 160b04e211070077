"""Crash-proof sweeps: ``autoinit-nas sweep`` killed with SIGKILL resumes when rerun, on both engines.

Each test runs the real command in a child process (its own session, so the
whole run can be killed, and for Ray its own local Ray under a private
``RAY_TMPDIR``), waits until a trial has finished and a later one is
training, SIGKILLs every process of the session (driver, Ray's daemons and
workers), checks that nothing of the run survives, reruns
the identical command and compares the results table with what was on disk
at the kill: finished trials untouched, the trial(s) in flight rerun and
complete, nothing missing or duplicated. The last tests make one candidate
raise (an activation Keras does not know) and check that the sweep records
the error and carries on.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from autoinit_nas.trials import records
from autoinit_nas.results import trials_table

psutil = pytest.importorskip("psutil")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every process a test's sweep starts (Ray's raylet and workers included) inherits this variable.
MARKER = "AUTOINIT_NAS_CRASH_TEST"
FINISHED = ("completed", "diverged", "error")
# Tiny candidates: 2-layer MLPs on 80 wine examples, 3 epochs per arm (~1-3 s per trial).
TINY = ["--space", "mlp", "--data", "wine", "--epochs", "3", "--init", "compare", "--limit", "80",
        "--hp", "depth=2", "--hp", "units=16", "--hp", "normalization=none",
        "--hp", "dropout=0.0", "--hp", "skip=false"]
ACTIVATIONS = '["relu","tanh","sigmoid","selu","elu"]'
ENGINES = {
    "keras-tuner": {"store": "keras_tuner", "arms_per_trial": 2},  # one trial trains both arms
    "ray": {"store": "ray", "arms_per_trial": 1},  # one Ray trial per arm
}


def engine_available(engine):
    if engine == "ray":
        pytest.importorskip("ray.tune")
    else:
        pytest.importorskip("keras_tuner")


class SweepProcess:
    """``python -m autoinit_nas.cli sweep ...`` in a session of its own, tagged with ``MARKER``."""

    def __init__(self, arguments, log_path, ray_dir):
        self.marker = uuid.uuid4().hex
        environment = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", RAY_AUTH_MODE="disabled",
                           RAY_TMPDIR=ray_dir, **{MARKER: self.marker})
        environment.pop("RAY_ADDRESS", None)  # a local Ray of its own, never the session's
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autoinit_nas.cli", "sweep", *arguments], cwd=ROOT, env=environment,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self):
        self.log.flush()
        with open(self.log_path) as stream:
            return stream.read()

    def descendants(self):
        """Live processes carrying this run's marker (the driver, Ray's daemons and workers)."""
        found = []
        for process in psutil.process_iter():
            try:
                if process.environ().get(MARKER) == self.marker and process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def kill(self):
        """SIGKILL the run at once; returns the marked processes still alive 60 s later.

        The process group first (the driver, and Ray's raylet and GCS, so nothing new starts),
        then the rest of the session: Ray puts each worker in a process group of its own, and a
        worker left alive finishes its epoch and writes its record before noticing that its
        raylet is gone, which a crash would not let it do.
        """
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in psutil.pids():
            try:
                if os.getsid(pid) == self.process.pid:
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
        self.process.wait(timeout=60)
        deadline = time.monotonic() + 60
        survivors = self.descendants()
        while survivors and time.monotonic() < deadline:
            time.sleep(0.5)
            survivors = self.descendants()
        return survivors

    def wait(self, timeout):
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the sweep did not finish in {timeout} s:\n{self.output()[-4000:]}")

    def close(self):
        """Leave nothing running, whatever happened."""
        if self.process.poll() is None:
            self.kill()
        for process in self.descendants():
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        self.log.close()


@pytest.fixture
def ray_dir():
    """A short private RAY_TMPDIR (Ray's socket paths must stay under 108 bytes)."""
    directory = tempfile.mkdtemp(prefix="airay")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def sweeps():
    started = []
    yield started
    for sweep in started:
        sweep.close()


def wait_for_a_finished_and_a_running_trial(sweep, store, timeout=240):
    """Poll the records until one trial has finished and another is training; returns their ids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = records.read_records(store) if os.path.isdir(store) else []
        finished = [r["trial_id"] for r in found if r["status"] in FINISHED]
        running = [r["trial_id"] for r in found if r["status"] == "running"]
        if finished and running:
            return finished, running
        if sweep.process.poll() is not None:
            pytest.fail(f"the sweep ended (exit {sweep.process.returncode}) before it could be killed:\n"
                        f"{sweep.output()[-4000:]}")
        time.sleep(0.05)
    pytest.fail(f"no trial finished while another ran within {timeout} s:\n{sweep.output()[-4000:]}")


@pytest.mark.slow  # SIGKILLs real sweep processes mid-trial: make check
@pytest.mark.parametrize("engine", list(ENGINES))
def test_a_killed_sweep_resumes_without_losing_or_repeating_trials(engine, tmp_path, ray_dir, sweeps):
    engine_available(engine)
    trials = 3 if engine == "ray" else 5  # Ray: 6 trials (one per arm), 2 at a time
    out = tmp_path / "sweep"
    store = str(out / ENGINES[engine]["store"])
    arguments = ["--engine", engine, *TINY, "--hp", f"activation={ACTIVATIONS}", "--trials", str(trials),
                 "--seed", "4", "--out", str(out)]

    first = SweepProcess(arguments, str(tmp_path / "first.log"), ray_dir)
    sweeps.append(first)
    wait_for_a_finished_and_a_running_trial(first, store)
    survivors = first.kill()
    assert not survivors, f"processes of the killed sweep still run: {[p.cmdline()[:3] for p in survivors]}"

    # What the kill left on disk (nothing writes to it any more).
    at_kill = {record["trial_id"]: record for record in records.read_records(store)}
    finished = {trial_id: record for trial_id, record in at_kill.items() if record["status"] in FINISHED}
    in_flight = {trial_id: record for trial_id, record in at_kill.items() if record["status"] == "running"}
    assert finished and in_flight, first.output()[-4000:]

    second = SweepProcess(arguments, str(tmp_path / "second.log"), ray_dir)
    sweeps.append(second)
    status = second.wait(timeout=300)
    printed = second.output()
    assert status == 0, printed[-4000:]
    assert f"{len(finished)} done before" in printed, printed[-4000:]

    table = trials_table(str(out))
    rows = trials * 2  # one row per candidate and arm ("compare")
    assert len(table) == rows, table[["trial_id", "arm", "status"]]
    assert not table.duplicated(["trial_id", "arm"]).any()
    assert table["trial_id"].nunique() == rows // ENGINES[engine]["arms_per_trial"]
    assert set(table["status"]) == {"completed"}, table[["trial_id", "arm", "status", "error"]]
    assert table["best_val_accuracy"].notna().all()

    # The rerun trained (and printed) exactly the trials that had not finished, those in flight included.
    rerun_ids = re.findall(r"^\[\s*\d+/\d+\] trial (\S+) ", printed, flags=re.MULTILINE)
    assert sorted(rerun_ids) == sorted(set(table["trial_id"]) - set(finished)), printed[-4000:]
    assert set(in_flight) <= set(rerun_ids)
    if engine == "keras-tuner":
        assert rerun_ids[0] in in_flight  # keras-tuner retries the interrupted trial before new ones

    after = {record["trial_id"]: record for record in records.read_records(store)}
    for trial_id, record in finished.items():
        assert after[trial_id] == record, f"finished trial {trial_id} was rerun or changed"
    for trial_id, record in in_flight.items():
        rerun = after[trial_id]
        assert rerun["status"] == "completed" and rerun["hyperparameters"] == record["hyperparameters"]
        arms = rerun["executions"][-1]["arms"]
        assert len(arms) == ENGINES[engine]["arms_per_trial"]
        assert all(fields["epochs"] == 3 and fields["metrics"]["val_accuracy"] is not None
                   for fields in arms.values())


# Seeds whose samples put a broken candidate before a working one and never three failed trials
# in a row (the sweep stops there; with Ray a broken candidate is two failed trials, one per arm).
# keras-tuner, seed 0: broken, working, broken, broken. Ray, seed 1: working, broken, working.
@pytest.mark.slow  # real sweep processes on both engines (~45 s): make check
@pytest.mark.parametrize("engine, seed, trials", [("keras-tuner", 0, 4), ("ray", 1, 3)])
def test_a_trial_that_raises_is_recorded_and_the_sweep_goes_on(engine, seed, trials, tmp_path, ray_dir, sweeps):
    engine_available(engine)
    out = tmp_path / "sweep"
    # Keras refuses the activation "no_such_activation" when the candidate is built.
    arguments = ["--engine", engine, *TINY, "--hp", 'activation=["relu","no_such_activation"]',
                 "--trials", str(trials), "--seed", str(seed), "--out", str(out)]
    sweep = SweepProcess(arguments, str(tmp_path / "sweep.log"), ray_dir)
    sweeps.append(sweep)
    status = sweep.wait(timeout=300)
    printed = sweep.output()
    assert status == 0, printed[-4000:]

    table = trials_table(str(out))
    shown = table[["trial_id", "arm", "status", "hp_activation", "error"]]
    broken = table[table["hp_activation"] == "no_such_activation"]
    working = table[table["hp_activation"] == "relu"]
    assert len(broken) and len(working), shown
    assert set(broken["status"]) == {"error"} and set(working["status"]) == {"completed"}, shown
    assert broken["error"].str.contains("Could not interpret activation function identifier").all(), shown
    assert broken["arm"].isna().all()  # nothing trained: one row per failed trial
    # Every candidate is in the table: a working one has a row per arm, a broken one a row per trial.
    trials_per_candidate = 2 // ENGINES[engine]["arms_per_trial"]
    assert len(working) // 2 + len(broken) // trials_per_candidate == trials, shown
    for trial_id in broken["trial_id"]:
        assert f"trial {trial_id}  error" in printed, printed[-4000:]
    # The sweep went on after the first error: a later trial completed.
    assert max(working["trial_id"]) > min(broken["trial_id"]), shown
