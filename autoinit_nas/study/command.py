"""The ``study`` command: its arguments, the spec they make, running the study and writing its report.

``autoinit-nas study`` and ``python -m autoinit_nas.study`` both come here.
"""

import argparse
import sys
import time

from autoinit_nas.arguments import arm_list, positive_int
from autoinit_nas.trials.arms import ARMS
from autoinit_nas import configs
from autoinit_nas.standalone import run_command
from autoinit_nas.study.spec import load_spec

USAGE_ERRORS = (ValueError, ModuleNotFoundError)


def _int_list(text):
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, received {text!r}")
    return values


def add_arguments(parser):
    """The ``study`` arguments (shared by ``autoinit-nas study`` and ``python -m autoinit_nas.study``)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Flags override the config's values. Rerunning with the same --out resumes the study: candidates\n"
        "finished under every arm are not trained again. The report goes to DIR/report/.\n"
        f"configs: {', '.join(name for name in configs.names() if name.startswith('study'))}\n"
        f"arms: {', '.join(ARMS)}\n"
        "example: autoinit-nas study --config study-quick --out out/study-quick"
    )
    parser.add_argument("--config", metavar="NAME|FILE", default="study-quick",
                        help="a study config (autoinit_nas/configs) or a .json path (default study-quick)")
    parser.add_argument("--space", metavar="S", help="keep only these spaces (comma-separated config or space names)")
    parser.add_argument("--data", metavar="D", help="keep only these datasets (comma-separated)")
    parser.add_argument("--arms", type=arm_list, metavar="a,b,...", help="init arms to compare")
    parser.add_argument("--candidates", type=positive_int, metavar="N", help="candidates per space and dataset")
    parser.add_argument("--epochs", type=positive_int, metavar="E",
                        help="epochs of every ranked and reference run (at least 3x the largest budget)")
    parser.add_argument("--budgets", type=_int_list, metavar="1,2,4", help="short budgets (epochs)")
    parser.add_argument("--ks", type=_int_list, metavar="8,16", help="candidates per replayed search")
    parser.add_argument("--bn-recalibrate", action="store_true", default=None,
                        help="recompute BatchNorm moving statistics on training batches before every validation pass "
                             "during training (test scores are not recalibrated)")
    parser.add_argument("--out", metavar="DIR", help="study directory (default out/<config>)")
    parser.add_argument("--address", metavar="ADDR", help="Ray cluster address (default: RAY_ADDRESS or local)")
    parser.add_argument("--report-only", action="store_true", help="write the report of what finished; train nothing")


def spec_from_args(args):
    """A ``StudySpec`` from parsed ``study`` arguments (config first, flags over it)."""
    out = args.out or f"out/{str(args.config).rsplit('/', 1)[-1].removesuffix('.json')}"
    return load_spec(args.config, space=args.space, data=args.data, arms=args.arms, candidates=args.candidates,
                     epochs=args.epochs, budgets=args.budgets, ks=args.ks, bn_recalibrate=args.bn_recalibrate,
                     out=out, address=args.address)


def run(args):
    """``autoinit-nas study``: train what is missing, then write the report; prints where it went."""
    from autoinit_nas.study.report import build_report, write_timing
    from autoinit_nas.study.runner import check_design, run_study

    spec = spec_from_args(args)
    check_design(spec)  # --report-only too: a report must not relabel another design's runs
    if spec.epochs < 3 * max(spec.budgets):
        print(f"note: E = {spec.epochs} epochs is less than 3x the largest budget ({max(spec.budgets)}); the "
              "references then sit close to the budgets they judge", file=sys.stderr)
    started = time.monotonic()
    if not args.report_only:
        run_study(spec)
    wall = None if args.report_only else time.monotonic() - started
    if wall is not None:
        write_timing(spec.out, wall)  # read back by --report-only (``report.design_of``)
    files = build_report(spec, wall_seconds=wall)
    if wall is not None:
        print(f"trained in {wall / 60:.1f} min")
    print(f"report: {files['report.md']}")
    return 0


def main(argv=None):
    """``python -m autoinit_nas.study [ARGS]``: the same as ``autoinit-nas study [ARGS]``."""
    return run_command("python -m autoinit_nas.study", add_arguments, run, USAGE_ERRORS, argv)
