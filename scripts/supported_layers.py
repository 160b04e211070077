"""Generate the README's supported-layers tables from the estimator registry.

The tables are rendered by ``autoinit_nas.cli.supported_layers_markdown`` (the
same function behind ``autoinit-nas layers --markdown``) and live in
README.md between ``<!-- supported-layers:start -->`` and
``<!-- supported-layers:end -->``, so they cannot drift from the code.

Example:
    python scripts/supported_layers.py                    # print the Markdown
    python scripts/supported_layers.py --write README.md  # update the README
    python scripts/supported_layers.py --check            # exit 1 if README.md is stale
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")

if ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", metavar="PATH", help="replace the marked block in PATH")
    action.add_argument("--check", metavar="PATH", nargs="?", const=README,
                        help="exit 1 if the marked block in PATH (default: README.md) is out of date")
    args = parser.parse_args(argv)

    from autoinit_nas.cli import replace_marked_block, supported_layers_markdown

    table = supported_layers_markdown()
    path = args.write or args.check
    if path is None:
        print(table)
        return 0
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        updated = replace_marked_block(text, table)
    except (OSError, ValueError) as error:
        print(f"supported_layers.py: error: {path}: {error}", file=sys.stderr)
        return 2
    if args.check:
        if updated != text:
            print(f"{path} is out of date: run `python scripts/supported_layers.py --write {path}`",
                  file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    if updated != text:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(updated)
        print(f"updated {path}")
    else:
        print(f"{path} already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
