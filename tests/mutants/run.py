"""Run every fault of ``tests/mutants/plugin.py`` against its tests and count the catches.

``python -m tests.mutants.run`` (``make mutants``) first runs all the
targeted tests unmutated (they must pass, or a catch would mean nothing),
then each mutant in its own pytest process; a mutant is caught when its
tests fail (exit status 1). Prints one line per mutant and "caught k of n";
exits 1 if any mutant survived or could not be applied.

Example:
    python -m tests.mutants.run                      # all of them
    python -m tests.mutants.run seed_ignored --no-baseline
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.mutants.plugin import ENV, MUTANTS

ROOT = Path(__file__).resolve().parents[2]
PYTEST = [sys.executable, "-m", "pytest", "-p", "tests.mutants.plugin", "-q", "-rf", "-p", "no:cacheprovider"]


def existing(targets):
    """The targets whose file or folder exists (the record tests may live in either place)."""
    return [t for t in targets if (ROOT / t.split("::")[0]).exists()]


def run_pytest(targets, mutant=None, stop_at_first=True):
    """(exit status, seconds, first failed test or last output line) of pytest on ``targets``."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", RAY_AUTH_MODE="disabled")
    env.pop(ENV, None)
    if mutant:
        env[ENV] = mutant
    command = PYTEST + (["-x"] if stop_at_first else []) + targets
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith("FAILED ")]
    return done.returncode, time.perf_counter() - start, (failed or lines or [""])[-1 if not failed else 0][:300]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.mutants.run", description=__doc__.splitlines()[0])
    parser.add_argument("mutants", nargs="*", default=list(MUTANTS), help=f"some of {', '.join(MUTANTS)}")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.mutants) - set(MUTANTS))
    if unknown:
        parser.error(f"unknown mutants {unknown}; expected some of {list(MUTANTS)}")
    if not args.no_baseline:
        targets = sorted({t for name in args.mutants for t in existing(MUTANTS[name][2])})
        status, seconds, last = run_pytest(targets, stop_at_first=False)
        print(f"baseline (no mutant): exit {status} in {seconds:.0f} s: {last}", flush=True)
        if status != 0:
            print("the targeted tests fail without a mutant: fix them first")
            return 1
    caught = 0
    for name in args.mutants:
        _, description, targets = MUTANTS[name]
        status, seconds, last = run_pytest(existing(targets), name)
        verdict = {0: "SURVIVED", 1: "caught"}.get(status, f"NOT APPLIED (exit {status})")
        caught += status == 1
        print(f"{verdict:>9}  {name}: {description} ({seconds:.0f} s) -> {last}", flush=True)
    print(f"caught {caught} of {len(args.mutants)}")
    return 0 if caught == len(args.mutants) else 1


if __name__ == "__main__":
    sys.exit(main())
