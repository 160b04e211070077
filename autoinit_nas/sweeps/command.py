"""The ``sweep`` command: its arguments, the spec they make, and running it.

``autoinit-nas sweep`` and ``python -m autoinit_nas.sweeps`` both come here.
"""

import argparse
import json
import os
import sys

import search_spaces

from autoinit_nas.arguments import arm_list, positive_int
from autoinit_nas.engines import ENGINES, SweepError
from autoinit_nas.trials.arms import ARMS, INIT_MODES
from autoinit_nas import configs, datasets, report
from autoinit_nas.sweeps import winners
from autoinit_nas.sweeps.runner import run_sweep
from autoinit_nas.standalone import run_command
from autoinit_nas.sweeps.spec import PROPAGATIONS, SweepSpec

# What a bad command line or a sweep that cannot go on raises: reported as one line.
USAGE_ERRORS = (SweepError, ValueError, ModuleNotFoundError)


def add_arguments(parser):
    """The ``sweep`` arguments (shared by ``autoinit-nas sweep`` and ``python -m autoinit_nas.sweeps``)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Flags override the config's values; unset flags take the config's, then the defaults.\n"
        f"configs: {', '.join(configs.names())}\n"
        f"datasets: {', '.join(datasets.names())}\n"
        "Rerunning with the same --out resumes the sweep (finished trials are kept).\n"
        "example: autoinit-nas sweep --config deep-mlp --trials 10 --out out/deep-mlp"
    )
    parser.add_argument("--config", metavar="NAME", help="a named config (autoinit_nas/configs) or a .json path")
    parser.add_argument("--space", metavar="S", help=f"search space: {', '.join(search_spaces.names())} (default mlp)")
    parser.add_argument("--data", metavar="D", help="offline dataset (default digits)")
    parser.add_argument("--engine", choices=list(ENGINES), help="search engine (default keras-tuner)")
    parser.add_argument("--trials", type=positive_int, metavar="N", help="trials in total (default 10; under Hyperband, continuations included)")
    parser.add_argument("--epochs", type=positive_int, metavar="E", help="epochs per candidate (default 2)")
    parser.add_argument("--init", choices=INIT_MODES, help="init arm(s) (default compare)")
    parser.add_argument("--arms", type=arm_list, metavar="a,b,...",
                        help=f"several init arms per candidate, from one seed (overrides --init): {', '.join(ARMS)}. "
                             "Under --tuner hyperband or --scheduler asha|hyperband: one search per arm, each "
                             "winner retrained and scored on a held-out test split")
    parser.add_argument("--out", metavar="DIR", help="sweep directory (default out/<config> or out/sweep)")
    parser.add_argument("--seed", type=int, metavar="S", help="search, trial and split seed (default 0)")
    parser.add_argument("--batch-size", type=positive_int, metavar="B", help="batch size (default 64)")
    parser.add_argument("--objective", metavar="METRIC", help="metric to optimize and compare (default val_accuracy)")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="use at most N training examples")
    parser.add_argument(
        "--hp", action="append", default=[], metavar="NAME=VALUE",
        help='narrow a hyperparameter: depth=4 (fixed), \'activation=["relu","tanh"]\' (choice), '
        '\'depth={"min":2,"max":8}\' (range); repeatable',
    )
    parser.add_argument("--propagation", choices=PROPAGATIONS,
                        help="AutoInit's propagation: probe (default) or scalar (the paper's)")
    parser.add_argument("--overwrite", action="store_true", help="delete what --out holds instead of resuming")
    for engine in ENGINES.values():
        _add_engine_arguments(parser, engine)


def _add_engine_arguments(parser, engine):
    """The engine's own flags, in a group of their own (a flag another engine added already is shared)."""
    options = engine.option_module()
    if options is None or not hasattr(options, "add_arguments"):
        return
    options.add_arguments(_SharedFlags(parser.add_argument_group(f"{engine.name} options")))


class _SharedFlags:
    """An argument group that skips a flag another engine added already (shared), one flag at a time."""

    def __init__(self, group):
        self.group = group

    def add_argument(self, *names, **kwargs):
        try:
            return self.group.add_argument(*names, **kwargs)
        except argparse.ArgumentError:
            return None


def _engine_options(args, engine_name):
    """{option: value} of the engine flags given; ``ValueError`` for another engine's flags."""
    own = set(ENGINES[engine_name].option_defaults()) if engine_name in ENGINES else set()
    given = {}
    for engine in ENGINES.values():
        for name in engine.option_defaults():
            value = getattr(args, name, None)
            if value is None:
                continue
            if name in own:
                given[name] = value
            else:
                raise ValueError(
                    f"--{name.replace('_', '-')} is an option of engine {engine.name}, not of {engine_name}. "
                    f"Received: --{name.replace('_', '-')} {value} with --engine {engine_name}"
                )
    return given


def spec_from_args(args):
    """A ``SweepSpec`` from parsed ``sweep`` arguments (config first, flags over it)."""
    flags = {
        "space": args.space, "data": args.data, "engine": args.engine, "trials": args.trials,
        "epochs": args.epochs, "init": args.init, "out": args.out, "seed": args.seed,
        "batch_size": args.batch_size, "objective": args.objective, "limit": args.limit,
        "propagation": args.propagation, "arms": args.arms,
    }
    overrides = {}
    for item in args.hp:
        name, equals, text = item.partition("=")
        if not equals or not name:
            raise ValueError(f"--hp expects NAME=VALUE. Received: --hp {item!r}")
        try:
            overrides[name] = json.loads(text)
        except ValueError:
            overrides[name] = text
    if args.config:
        spec = SweepSpec.from_config(args.config, **flags)
        if args.out is None:
            spec.out = os.path.join("out", os.path.splitext(os.path.basename(args.config))[0])
    else:
        spec = SweepSpec(**{key: value for key, value in flags.items() if value is not None})
    spec.hyperparameters = {**spec.hyperparameters, **overrides}
    spec.engine_options = {**spec.engine_options, **_engine_options(args, spec.engine)}
    return spec.validate()


def run(args):
    """``autoinit-nas sweep``: run or resume a sweep, print one line per trial and a summary.

    Raises ``USAGE_ERRORS`` for bad settings, a different sweep in ``--out``
    or trials that keep failing; the command line prints them as one line.
    """
    spec = None
    try:
        spec = spec_from_args(args)
        sweep = run_sweep(spec, progress=lambda line: print(line, flush=True), overwrite=args.overwrite)
    except KeyboardInterrupt:
        print(f"\ninterrupted: rerun the same command to resume (finished trials are kept in {spec.out if spec else args.out})",
              file=sys.stderr)
        return 130
    if sweep.winners is not None:
        print("winners (each search's best trial by its validation objective, retrained, scored on the test split; "
              "one search per arm is one sample):")
        print(winners.format_winners(sweep.winners))
    elif spec.init == "compare":
        table = sweep.table()
        print(report.summary_line(table, spec.objective, spec.direction))
    print(f"report: autoinit-nas report {spec.out}")
    return 0



def main(argv=None):
    """``python -m autoinit_nas.sweeps [ARGS]``: the same as ``autoinit-nas sweep [ARGS]``."""
    return run_command("python -m autoinit_nas.sweeps", add_arguments, run, USAGE_ERRORS, argv)
