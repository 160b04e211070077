"""Demo: a real paired sweep, AutoInit vs Keras's default init, on deep plain MLPs.

Runs the ``demo`` sweep config (``autoinit_nas/configs/demo.json``): 24 MLPs
from the ``mlp`` search space, 2 to 30 Dense layers deep with relu, tanh,
sigmoid or selu and no normalization or skip connections, on scikit-learn's
bundled digits (offline). keras-tuner trains each candidate twice from the same
seed, once with Keras's default initializers and once after AutoInit, for 3
epochs. Then it prints the paired comparison (one row per candidate), the
summary (wins/ties/losses, mean difference with a bootstrap interval, Wilcoxon
p, divergences, by depth and by activation), and writes tables and plots under
``out/demo/report/``.

Run: ``python -m experiments.demo`` (or ``make demo``); a few minutes on two
cores. ``--resume`` keeps an earlier run's finished trials instead of starting
over; ``--trials``/``--epochs`` shrink or grow it.

The same, step by step:
    autoinit-nas sweep --config demo --out out/demo --overwrite
    autoinit-nas report out/demo
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONFIG = "demo"
OUT = os.path.join("out", "demo")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.demo",
        description="A paired AutoInit-vs-default sweep on deep plain MLPs (digits), its table, summary and plots.",
    )
    parser.add_argument("--out", default=OUT, help=f"sweep directory (default {OUT})")
    parser.add_argument("--trials", type=int, help="candidates (default: the demo config's, 24)")
    parser.add_argument("--epochs", type=int, help="epochs per arm (default: the demo config's, 3)")
    parser.add_argument("--seed", type=int, help="search and trial seed (default 0)")
    parser.add_argument("--resume", action="store_true", help="keep an earlier run's finished trials")
    args = parser.parse_args(argv)

    from autoinit_nas.report import build_report
    from autoinit_nas.sweeps import SweepError, SweepSpec, run_sweep

    start = time.perf_counter()
    spec = SweepSpec.from_config(CONFIG, out=args.out, trials=args.trials, epochs=args.epochs, seed=args.seed)
    try:
        run_sweep(spec, progress=lambda line: print(line, flush=True), overwrite=not args.resume)
    except SweepError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    report = build_report(args.out)
    print()
    print(report.text)
    print()
    for name in ("paired_scatter.png", "metric_vs_depth.png", "divergence.png", "report.md",
                 "comparison.csv", "summary.csv", "trials.csv"):
        if name in report.files:
            print(f"wrote {report.files[name]}")
    print(f"demo took {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
