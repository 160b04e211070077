"""Print pip constraints that pin each of pyproject's lower bounds: ``name==lowest`` per line.

Reads ``[project] dependencies`` and the extras named on the command line (default: the
tensorflow-cpu backend), so ``make lower-bounds`` installs exactly the oldest versions the
package claims to support.

Example:
    python scripts/lower_bounds.py tensorflow-cpu > lower-bounds.txt
"""

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
LOWER = re.compile(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*[^;]*?>=\s*([0-9][^,;\s]*)")


def lower_bounds(extras=("tensorflow-cpu",), path=PYPROJECT):
    """[(name, lowest version)] of the dependencies and ``extras`` that state a ``>=`` bound."""
    project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    unknown = [extra for extra in extras if extra not in project["optional-dependencies"]]
    if unknown:
        raise SystemExit(
            f"Unknown extra(s) {unknown}. Expected names from {sorted(project['optional-dependencies'])}."
        )
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    found = [LOWER.match(requirement) for requirement in requirements]
    return list(dict.fromkeys((match.group(1), match.group(3)) for match in found if match))


if __name__ == "__main__":
    for name, version in lower_bounds(tuple(sys.argv[1:]) or ("tensorflow-cpu",)):
        print(f"{name}=={version}")
