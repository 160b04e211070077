"""docs/ARCHITECTURE.md stays true: its floor table names every module of each room it lists, and
nothing else; every path and ``autoinit_nas.*`` name it quotes exists."""

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
CODE = re.compile(r"`([^`]+)`")
IGNORED_FILES = {"__init__.py", "__main__.py"}


def table_rows(text):
    """[(room, [names in the modules column])] of the floor table: rows whose first cell is a path."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and (room := CODE.fullmatch(cells[0])):
            rows.append((room.group(1), CODE.findall(cells[1])))
    return rows


def room_problems(room, names, root=ROOT):
    """What is wrong with one row: a missing room, a module listed but absent, or one present but unlisted."""
    path = root / room
    if not path.exists():
        return [f"{room}: no such path"]
    if not room.endswith("/"):
        return []
    present = {p.stem for p in path.glob("*.py") if p.name not in IGNORED_FILES}
    present |= {p.name for p in path.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    listed = {name.rstrip("/").split(".")[0] for name in names}
    return [f"{room}{name}: listed, not there" for name in sorted(listed - present)] + [
        f"{room}{name}: there, not listed" for name in sorted(present - listed)
    ]


def quoted_path_problems(text, root=ROOT):
    """Quoted paths (tokens with a slash) that exist neither from the repository root nor from docs/."""
    tokens = {token for token in CODE.findall(text) if "/" in token and re.fullmatch(r"[\w./-]+", token)}
    return sorted(token for token in tokens if not any((base / token).exists() for base in (root, root / "docs")))


def dotted_name_problems(text):
    """Quoted ``autoinit_nas.x.y`` names that neither import nor resolve as attributes."""
    problems = []
    for token in sorted(set(CODE.findall(text))):
        if not re.fullmatch(r"autoinit_nas(\.\w+)+", token):
            continue
        parts = token.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                target = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attribute in parts[cut:]:
                    target = getattr(target, attribute)
            except AttributeError:
                problems.append(token)
            break
    return problems


def test_every_room_lists_exactly_its_modules():
    rows = table_rows(DOC.read_text(encoding="utf-8"))
    assert len(rows) >= 10
    assert [problem for room, names in rows for problem in room_problems(room, names)] == []


def test_quoted_paths_and_names_exist():
    text = DOC.read_text(encoding="utf-8")
    assert quoted_path_problems(text) == []
    assert dotted_name_problems(text) == []


def test_the_checks_catch_a_stale_doc(tmp_path):
    (tmp_path / "pkg").mkdir()
    for name in ("a.py", "b.py", "__init__.py"):
        (tmp_path / "pkg" / name).write_text("")
    stale = "| room | modules | owns |\n|---|---|---|\n| `pkg/` | `a`, `gone` | x |\n| `nowhere/` | `c` | y |\n"
    rows = table_rows(stale)
    assert rows == [("pkg/", ["a", "gone"]), ("nowhere/", ["c"])]
    assert [p for room, names in rows for p in room_problems(room, names, tmp_path)] == [
        "pkg/gone: listed, not there", "pkg/b: there, not listed", "nowhere/: no such path"]
    assert quoted_path_problems("see `pkg/a.py` and `docs/missing.md`", tmp_path) == ["docs/missing.md"]
    assert dotted_name_problems("`autoinit_nas.results.trials_table` `autoinit_nas.results.no_such`") == [
        "autoinit_nas.results.no_such"]
