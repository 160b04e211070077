"""The ``autoinit-nas`` command.

Each subcommand is one ``Command``: a name, a one-line help, a function adding
its arguments and a function running it. Subcommands import what they need
when they run, so ``autoinit-nas --help`` stays instant; ``sweep`` and
``report`` live in this package (sweeps/, study/, report.py).

Example:
    $ autoinit-nas visualize tests/data/pmlb.json --out out/pmlb
    $ autoinit-nas layers --markdown
    $ autoinit-nas sweep --config demo --out out/demo
    $ autoinit-nas report out/demo

    >>> from autoinit_nas.cli import main
    >>> main(["layers"])
    0
"""

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Callable

from autoinit_nas.arguments import positive_int
from autoinit_nas.supported_layers import (  # noqa: F401 - the command's tables, public here too
    replace_marked_block,
    supported_layers,
    supported_layers_markdown,
    supported_layers_text,
)

PROG = "autoinit-nas"
# Exit status for unusable input (a bad path, malformed JSON, a model that cannot be built).
USAGE_ERROR = 2


@dataclass(frozen=True)
class Command:
    """One subcommand of ``autoinit-nas``.

    Example:
        >>> register_command(Command("layers", "List the supported layers.", _add_layers_arguments, _run_layers))

    Args:
        name: the subcommand, as typed.
        help: one line for ``autoinit-nas --help`` (and the subcommand's description).
        add_arguments: ``add_arguments(parser)``.
        run: ``run(args) -> int`` (the exit status; None means 0).
    """

    name: str
    help: str
    add_arguments: Callable
    run: Callable


class CommandError(Exception):
    """A user error a subcommand reports as one line, exiting with ``USAGE_ERROR``."""


def register_command(command):
    """Add ``command`` to the ``autoinit-nas`` subcommands (replacing one of the same name)."""
    if not isinstance(command, Command):
        raise TypeError(f"`command` must be a Command. Received: {type(command).__name__}")
    COMMANDS[:] = [existing for existing in COMMANDS if existing.name != command.name] + [command]


def build_parser(commands=None, only=None):
    """The argument parser for ``commands`` (default: all registered).

    Args:
        commands: list of ``Command``.
        only: if given, the name of the one subcommand whose arguments are
            added (the others are listed, not loaded); "" adds none.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="AutoInit for Keras 3: signal-propagation diagnostics and NAS tooling.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS if commands is None else commands:
        subparser = subparsers.add_parser(command.name, help=command.help, description=command.help)
        if only is None or only == command.name:
            command.add_arguments(subparser)
        subparser.set_defaults(_command=command)
    return parser


# The optional packages a command may need, and the extra that installs each.
EXTRA_OF_PACKAGE = {
    "keras_tuner": "tuner", "tensorboard": "tuner", "ray": "ray", "pandas": "results",
    "sklearn": "results", "matplotlib": "results", "pyarrow": "results", "mnist1d": "results",
}


def missing_extra_error(error):
    """A ``CommandError`` naming the extra that installs the package ``error`` (a ModuleNotFoundError) missed.

    Returns None when the missing module is not one of our optional dependencies.

    Example:
        >>> str(missing_extra_error(ModuleNotFoundError("No module named 'ray'", name="ray")))
        "this command needs the optional package 'ray': pip install 'autoinit_nas[ray]'"
    """
    package = (error.name or "").split(".")[0]
    if package not in EXTRA_OF_PACKAGE:
        return None
    return CommandError(f"this command needs the optional package '{package}': "
                        f"pip install 'autoinit_nas[{EXTRA_OF_PACKAGE[package]}]'")


def main(argv=None):
    """Run ``autoinit-nas`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    names = {command.name for command in COMMANDS}
    only = argv[0] if argv and argv[0] in names else ""
    try:
        parser = _with_extras_named(build_parser, only=only)
    except CommandError as error:
        print(f"{PROG} {only}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    args = parser.parse_args(argv)
    command = args._command
    try:
        status = _with_extras_named(command.run, args)
    except CommandError as error:
        print(f"{PROG} {command.name}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    return 0 if status is None else int(status)


def _with_extras_named(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except ModuleNotFoundError as error:
        named = missing_extra_error(error)
        if named is None:
            raise
        raise named from None


# visualize ------------------------------------------------------------------


def _add_visualize_arguments(parser):
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="JSON file: model.to_json() output, a model.get_config() dict, or a file that "
        "holds either under interpretation.model (as the tests/data anchors do)",
    )
    parser.add_argument(
        "--out",
        metavar="PREFIX",
        help="write PREFIX_variance.png, PREFIX_mean.png and PREFIX_layers.csv "
        "(into PREFIX/ when it is a directory or ends in /)",
    )
    parser.add_argument("--batch", type=positive_int, default=256, metavar="N",
                        help="noise samples per input (default: 256)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seeds the noise, AutoInit's weights and the default copy's (default: 0)")
    parser.add_argument("--propagation", choices=("probe", "scalar"), default="probe",
                        help="AutoInit's propagation: probe (default) or scalar (the paper's)")
    parser.add_argument(
        "--unsafe",
        action="store_true",
        help="allow configs that run code when loaded (Lambda layers); only for files you trust",
    )


def _run_visualize(args):
    spec = load_model_spec(args.model)
    import keras

    from autoinit_nas.visualize import AutoInitVisualizer, output_path

    keras.utils.set_random_seed(args.seed)  # repeatable default-init copy
    visualizer = AutoInitVisualizer()
    try:
        frame = visualizer.visualize(
            spec, path=args.out, batch_size=args.batch, seed=args.seed, safe_mode=not args.unsafe,
            propagation=args.propagation,
        )
    except (ValueError, TypeError) as error:
        raise CommandError(f"cannot visualize '{args.model}': {_one_line(error)}") from None
    print(
        f"{visualizer.autoinit_model.name}: {len(frame)} entries, batch {args.batch}, seed {args.seed}, "
        f"{args.propagation} propagation"
    )
    print(format_table(frame))
    print()
    print(format_summary(AutoInitVisualizer.summarize(frame)))
    if args.out:
        csv_path = output_path(args.out, "layers.csv")
        frame.to_csv(csv_path, index=False)
        for path in visualizer.paths + [csv_path]:
            print(f"wrote {path}")
    return 0


def load_model_spec(path):
    """The model config in a JSON file, unwrapped from ``interpretation.model`` if needed.

    Example:
        >>> spec = load_model_spec("tests/data/pmlb.json")
        >>> spec["class_name"]
        'Functional'

    Raises:
        CommandError: the file cannot be read, is not JSON, or holds no model.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise CommandError(f"cannot read model file '{path}': {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise CommandError(f"model file '{path}' is not UTF-8 text (expected JSON)") from None
    try:
        spec = json.loads(text)
        if isinstance(spec, str):  # a JSON string holding model.to_json() output
            spec = json.loads(spec)
    except json.JSONDecodeError as error:
        raise CommandError(
            f"model file '{path}' is not valid JSON ({error.msg} at line {error.lineno}, "
            f"column {error.colno})"
        ) from None
    if isinstance(spec, dict) and isinstance(spec.get("interpretation"), dict):
        spec = spec["interpretation"].get("model")
    is_model = isinstance(spec, dict) and (
        ("class_name" in spec and "config" in spec) or "layers" in spec
    )
    if not is_model:
        found = sorted(spec)[:8] if isinstance(spec, dict) else type(spec).__name__
        raise CommandError(
            f"model file '{path}' holds no model: expected model.to_json() output (class_name, "
            f"config), a model.get_config() dict (layers, ...) or interpretation.model; found {found}"
        )
    return spec


def format_table(frame):
    """The per-layer variances of a ``visualize`` table as compact text (the CSV has every column).

    Example:
        >>> print(format_table(frame))
        #  layer   class       predicted  autoinit  default  |log2 err|
        0  x       InputLayer          1    0.9951   0.9951    0.007061
    """
    columns = [("#", "depth_index", str), ("layer", "layer", str), ("class", "class", str)]
    columns += [(title, name, "{:.4g}".format) for title, name in (
        ("predicted", "predicted_var"), ("autoinit", "autoinit_var"),
        ("default", "default_var"), ("|log2 err|", "log2_error"))]
    cells = [[render(value) for value in frame[name]] for _, name, render in columns]
    lines = []
    for row in [[title for title, _, _ in columns]] + [list(values) for values in zip(*cells)]:
        parts = []
        for index, (cell, column) in enumerate(zip(row, cells)):
            width = max([len(columns[index][0])] + [len(value) for value in column])
            text_column = columns[index][1] in ("layer", "class")
            parts.append(cell.ljust(width) if text_column else cell.rjust(width))
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def format_summary(summary):
    """Two lines: the log2 errors, and the final layer's variance under each init."""
    return (
        f"|log2(measured AutoInit var / predicted var)|: median {summary['median_log2_error']:.3g}, "
        f"max {summary['max_log2_error']:.3g} (at {summary['worst_layer']})\n"
        f"final layer {summary['final_layer']}: variance predicted {summary['final_predicted_var']:.4g}, "
        f"AutoInit {summary['final_autoinit_var']:.4g}, Keras default {summary['final_default_var']:.4g}"
    )


def _one_line(error):
    text = " ".join(str(error).split())
    return text or type(error).__name__


# layers ----------------------------------------------------------------------


def _add_layers_arguments(parser):
    parser.add_argument("--markdown", action="store_true",
                        help="print the Markdown tables the README embeds")


def _run_layers(args):
    print(supported_layers_markdown() if args.markdown else supported_layers_text())
    return 0



# sweep, report ----------------------------------------------------------------
# Both live in this package (with the datasets and named configs they use).


def _add_sweep_arguments(parser):
    from autoinit_nas.sweeps.command import add_arguments

    add_arguments(parser)


def _run_sweep(args):
    from autoinit_nas.sweeps.command import USAGE_ERRORS, run

    try:
        return run(args)
    except USAGE_ERRORS as error:
        raise CommandError(str(error)) from None


def _add_study_arguments(parser):
    from autoinit_nas.study.command import add_arguments

    add_arguments(parser)


def _run_study(args):
    from autoinit_nas.study.command import USAGE_ERRORS, run

    try:
        return run(args)
    except USAGE_ERRORS as error:
        raise CommandError(str(error)) from None


def _add_report_arguments(parser):
    from autoinit_nas.report import add_arguments

    add_arguments(parser)


def _run_report(args):
    from autoinit_nas.report import USAGE_ERRORS, run

    try:
        return run(args)
    except USAGE_ERRORS as error:
        raise CommandError(str(error)) from None


COMMANDS = [
    Command(
        "visualize",
        "Plot AutoInit's predicted vs measured (AutoInit and Keras default) mean and variance per layer.",
        _add_visualize_arguments,
        _run_visualize,
    ),
    Command(
        "layers",
        "List the supported layers and keras.ops, with how each is estimated.",
        _add_layers_arguments,
        _run_layers,
    ),
    Command(
        "sweep",
        "Run (or resume) a search sweep on offline data, AutoInit vs Keras's default init, one line per trial.",
        _add_sweep_arguments,
        _run_sweep,
    ),
    Command(
        "study",
        "Run (or resume) the init study on Ray Tune: every candidate under every init arm, then its report.",
        _add_study_arguments,
        _run_study,
    ),
    Command(
        "report",
        "Tables (CSV, Parquet, Markdown) and plots of a sweep directory: the paired AutoInit-vs-default comparison.",
        _add_report_arguments,
        _run_report,
    ),
]


if __name__ == "__main__":
    # Run the imported module, not this __main__ copy, so CommandError raised by
    # subcommand modules (which import autoinit_nas.cli) is the class main() catches.
    from autoinit_nas import cli

    sys.exit(cli.main())
