"""Run every benchmark in this package: ``python -m experiments.benchmarks [ARGS]``.

A benchmark is any module of ``experiments.benchmarks`` (not starting with an
underscore) with a callable ``main(argv=None)`` returning an exit status.
They run in name order; ARGS are passed to each one's ``main`` (for example
``--tiny`` or ``--out DIR``). ``--list`` prints the benchmarks found and exits;
``--only NAME[,NAME]`` runs a subset. The exit status is the first non-zero
status any benchmark returned (1 for one that raised).
"""

import importlib
import os
import pkgutil
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PACKAGE = "experiments.benchmarks"


def discover():
    """{module name: main function} of every benchmark module, sorted by name."""
    package = importlib.import_module(PACKAGE)
    found = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda item: item.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        entry = getattr(module, "main", None)
        if callable(entry):
            found[info.name] = entry
    return found


def _split_own_args(argv):
    """Take ``--list`` and ``--only X`` out of argv; the rest goes to the benchmarks."""
    rest, only, list_only = [], None, False
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--list":
            list_only = True
        elif arg == "--only" and index + 1 < len(argv):
            only = argv[index + 1]
            index += 1
        elif arg.startswith("--only="):
            only = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        index += 1
    names = None if only is None else [name.strip() for name in only.split(",") if name.strip()]
    return rest, names, list_only


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, names, list_only = _split_own_args(argv)
    benchmarks = discover()
    if list_only:
        for name in benchmarks:
            print(name)
        return 0
    if names is not None:
        unknown = [name for name in names if name not in benchmarks]
        if unknown:
            print(f"unknown benchmark(s) {unknown}; found {list(benchmarks)}", file=sys.stderr)
            return 2
        benchmarks = {name: benchmarks[name] for name in names}
    if not benchmarks:
        print(f"no benchmark modules with main(argv=None) in {PACKAGE}", file=sys.stderr)
        return 2
    status = 0
    for name, entry in benchmarks.items():
        print(f"=== {PACKAGE}.{name} ===", flush=True)
        try:
            result = entry(list(rest))
        except SystemExit as exit_:  # argparse errors, explicit sys.exit
            result = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except Exception:  # keep running the others, report at the end
            traceback.print_exc()
            result = 1
        result = int(result or 0)
        if result and not status:
            status = result
        print(flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
