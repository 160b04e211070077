"""Running a command as ``python -m autoinit_nas.<name>``, without the ``autoinit-nas`` entry point."""

import argparse
import sys


def run_command(prog, add_arguments, run, usage_errors, argv=None):
    """Parse ``argv`` with ``add_arguments``, call ``run(args)``; ``usage_errors`` print as one line (exit 2).

    Example:
        >>> run_command("demo", lambda parser: None, lambda args: 0, (ValueError,), [])
        0
    """
    parser = argparse.ArgumentParser(prog=prog)
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except usage_errors as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
