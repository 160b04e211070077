"""The package's layout, checked from source with ``ast``: no import cycles, floors import only
downward, the core imports no engine or pandas, no module over 500 lines.

Imports inside functions count like any other; only the estimator registry's
loader of its families (``importlib`` over the estimator modules) is exempt,
since ``ast`` does not see it.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("autoinit_nas", "experiments", "search_spaces")
MAX_LINES = 500
# Modules allowed over the limit (none now); an entry must go once its module is under the
# limit (the test fails until it does).
OVERSIZED = set()
# Floors, bottom to top: a module imports only from its own floor or lower ones.
FLOORS = (
    ("autoinit_nas.maths", "autoinit_nas.stats"),
    ("autoinit_nas.estimators",),
    ("autoinit_nas.core", "autoinit_nas.init_methods", "autoinit_nas.declared"),
    ("search_spaces",),
    ("autoinit_nas.trials",),
    ("autoinit_nas.engines", "autoinit_nas.integrations"),
    ("autoinit_nas.results", "autoinit_nas.comparisons", "autoinit_nas.datasets", "autoinit_nas.configs",
     "autoinit_nas.arguments", "autoinit_nas.standalone"),
    ("autoinit_nas.study.stats", "autoinit_nas.visualize"),
    ("autoinit_nas.report", "autoinit_nas.report_plots", "autoinit_nas.sweeps", "autoinit_nas.study"),
    ("autoinit_nas", "autoinit_nas.cli", "experiments"),
)
CORE_FORBIDDEN = ("keras_tuner", "ray", "pandas")
# The registry's loader imports its estimator families (the one exempt cycle).
REGISTRY = "autoinit_nas.estimators.registry"


def module_files(root=ROOT):
    """{module name: path} of every module of the three packages under ``root``."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imported_names(path, module):
    """Every module name ``path`` imports, at any depth (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # "from pkg import name": the submodule pkg.name if there is one, else pkg.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(files):
    """{module: set of our modules it imports}: each import resolved to the deepest module we have."""
    graph = {}
    for module, path in files.items():
        targets = set()
        for name in imported_names(path, module):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module and not (module == REGISTRY and name.startswith("autoinit_nas.estimators.")):
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def floor_of(module):
    """Index of the floor ``module`` lives on (the longest matching prefix wins)."""
    best, length = None, -1
    for index, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def upward_imports(graph):
    """[(module, target)] where ``module`` imports from a floor above its own."""
    return sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if floor_of(target) is not None and floor_of(module) is not None and floor_of(target) > floor_of(module)
    )


@pytest.fixture(scope="module")
def files():
    return module_files()


def test_no_import_cycles(files):
    assert find_cycle(import_graph(files)) is None


def test_floors_import_only_downward(files):
    assert upward_imports(import_graph(files)) == []


def test_core_imports_no_engine_and_no_pandas(files):
    offending = sorted(
        (module, name)
        for module, path in files.items()
        if module.startswith(("autoinit_nas.core", "autoinit_nas.maths", "autoinit_nas.estimators"))
        for name in imported_names(path, module)
        if name.split(".")[0] in CORE_FORBIDDEN
    )
    assert offending == []


def long_modules(files):
    """{module: lines} of every module over ``MAX_LINES``."""
    return {module: n for module, path in files.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}


def test_no_module_over_500_lines(files):
    long = long_modules(files)
    assert {module: n for module, n in long.items() if module not in OVERSIZED} == {}
    assert set(long) == OVERSIZED


def test_the_checks_catch_a_cycle_an_upward_import_and_a_long_module(tmp_path):
    """The same checks on a small broken tree: each of them fires."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "autoinit_nas" / "core").mkdir()
    (tmp_path / "autoinit_nas" / "core" / "__init__.py").write_text("")
    (tmp_path / "autoinit_nas" / "core" / "a.py").write_text(
        "def f():\n    from autoinit_nas.results import g\n    import pandas\n"
    )
    (tmp_path / "autoinit_nas" / "results.py").write_text("from autoinit_nas.core import a\n" + "x = 1\n" * 501)
    broken = module_files(tmp_path)
    graph = import_graph(broken)
    assert find_cycle(graph) == ["autoinit_nas.core.a", "autoinit_nas.results", "autoinit_nas.core.a"]
    assert upward_imports(graph) == [("autoinit_nas.core.a", "autoinit_nas.results")]
    assert long_modules(broken) == {"autoinit_nas.results": 502}


def engine_folder_imports(files):
    """[(module, imported name)] where a module outside engines/ and integrations/ imports an engine folder."""
    folders = sorted(
        module for module, path in files.items()
        if module.startswith("autoinit_nas.engines.") and module.count(".") == 2 and path.name == "__init__.py"
    )
    allowed = ("autoinit_nas.engines", "autoinit_nas.integrations")
    return sorted(
        (module, name)
        for module, path in files.items()
        if not (module in allowed or module.startswith(tuple(prefix + "." for prefix in allowed)))
        for name in imported_names(path, module)
        if any(name == folder or name.startswith(folder + ".") for folder in folders)
    )


def test_only_engines_and_integrations_import_an_engine_folder(files):
    assert engine_folder_imports(files) == []


def test_the_engine_folder_check_catches_an_import(tmp_path):
    """The check on a small broken tree: a sweep importing an engine folder is caught, the registry is not."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for folder in ("engines", "engines/toy", "sweeps", "integrations"):
        (tmp_path / "autoinit_nas" / folder).mkdir()
        (tmp_path / "autoinit_nas" / folder / "__init__.py").write_text("")
    (tmp_path / "autoinit_nas" / "engines" / "toy" / "sweep.py").write_text("")
    (tmp_path / "autoinit_nas" / "integrations" / "toy.py").write_text("from autoinit_nas.engines.toy import sweep\n")
    (tmp_path / "autoinit_nas" / "sweeps" / "runner.py").write_text(
        "from autoinit_nas.engines import ENGINES\n"
        "def run():\n    from autoinit_nas.engines.toy.sweep import Driver\n"
    )
    (tmp_path / "experiments" / "bench.py").write_text("from autoinit_nas.engines import toy\n")
    assert engine_folder_imports(module_files(tmp_path)) == [
        ("autoinit_nas.sweeps.runner", "autoinit_nas.engines.toy.sweep.Driver"),
        ("experiments.bench", "autoinit_nas.engines.toy"),
    ]
