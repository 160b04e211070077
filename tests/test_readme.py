"""The README runs as written.

Every ```python block runs as pasted, in a fresh process whose working
folder is an empty temporary one, unless an HTML comment right before it
marks it a fragment (``<!-- fragment: NAME: why -->``); fragments are skipped
by name and listed here, so a new block runs unless it is marked.
``<!-- block: NAME -->`` names a runnable block for the tables below. Blocks
that run searches are marked slow (``make check``). No block may download:
Keras's and scikit-learn's download folders point into the temporary folder
and must stay empty.

The shell examples are checked against the code: every flag of every
``autoinit-nas SUB`` command exists in that subcommand's parser (and every
``a|b`` alternative among its choices), every ``make TARGET`` is a Makefile
target, every ``python -m MODULE`` imports, and every repository path named in
inline code exists.
"""

import argparse
import dataclasses
import glob
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Fragments skipped by name: the README must mark exactly these.
FRAGMENTS = {"options-signatures", "custom-estimator", "add-engine"}
# Runnable blocks that train searches: make check only.
SLOW = {"keras-tuner-search", "ray-tune", "results-tables"}
# Blocks that continue another: run after it in the same process.
AFTER = {"visualize": "quick-start"}
# What a user has done before a block: a command run in its folder first.
SETUP = {
    "results-tables": ["-m", "autoinit_nas.cli", "sweep", "--config", "demo", "--trials", "2",
                       "--epochs", "1", "--out", "out/demo"],
}
FAST_TIMEOUT = 300
SLOW_TIMEOUT = 1200

FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARK = re.compile(r"<!--\s*(block|fragment):\s*([\w-]+)\s*(?::\s*(.*?))?\s*-->\s*\Z")
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
REPO_DIRS = ("autoinit_nas", "docs", "experiments", "scripts", "search_spaces", "tests")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced block of the README."""

    name: str
    language: str
    code: str
    line: int
    fragment: bool = False


def readme_blocks(text=None):
    """Every fenced block, named by its marker (or ``line-N``)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        marker = MARK.search(text[: match.start()].rstrip() + "\n")
        kind, name = (marker.group(1), marker.group(2)) if marker else ("block", f"line-{line}")
        blocks.append(Block(name, match.group(1), match.group(2), line, kind == "fragment"))
    return blocks


def python_blocks():
    return {block.name: block for block in readme_blocks() if block.language == "python"}


def runnable(slow):
    return sorted(name for name, block in python_blocks().items()
                  if not block.fragment and (name in SLOW) == slow and name != "ray-tune")


def run_block(name, folder, timeout):
    """Run block ``name`` (after the blocks it continues) as a script in ``folder``."""
    blocks = python_blocks()
    chain = [name]
    while chain[0] in AFTER:
        chain.insert(0, AFTER[chain[0]])
    script = folder / f"{name}.py"
    script.write_text("\n".join(blocks[part].code for part in chain), encoding="utf-8")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", RAY_AUTH_MODE="disabled",
               KERAS_HOME=str(folder / "keras_home"), SCIKIT_LEARN_DATA=str(folder / "sklearn_data"),
               MPLBACKEND="Agg")
    if name in SETUP:
        setup = subprocess.run([sys.executable, *SETUP[name]], cwd=folder, env=env, capture_output=True,
                               text=True, timeout=timeout)
        assert setup.returncode == 0, f"setup of {name} failed:\n{setup.stdout[-3000:]}\n{setup.stderr[-3000:]}"
    result = subprocess.run([sys.executable, script.name], cwd=folder, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"README block {name} (line {blocks[name].line}) failed as pasted:\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    downloaded = [str(path) for path in (folder / "keras_home" / "datasets", folder / "sklearn_data")
                  if path.exists() and any(path.iterdir())]
    assert not downloaded, f"README block {name} downloaded data into {downloaded}"
    return result.stdout


def test_fragments_are_marked_and_listed():
    blocks = python_blocks()
    assert len(blocks) == len([b for b in readme_blocks() if b.language == "python"]), "block names repeat"
    assert {name for name, block in blocks.items() if block.fragment} == FRAGMENTS
    named = set(SLOW) | set(AFTER) | set(AFTER.values()) | set(SETUP)
    missing = sorted(name for name in named if name not in blocks or blocks[name].fragment)
    assert not missing, f"tables here name blocks the README no longer has (or marks fragments): {missing}"


def test_markers_name_blocks():
    text = "intro\n<!-- fragment: sig: not a program -->\n```python\nf(...)\n```\n\n```python\nx = 1\n```\n"
    first, second = readme_blocks(text)
    assert (first.name, first.fragment, first.code) == ("sig", True, "f(...)\n")
    assert (second.name, second.fragment, second.line) == ("line-7", False, 7)


@pytest.mark.parametrize("name", runnable(slow=False))
def test_block_runs_as_pasted(name, tmp_path):
    run_block(name, tmp_path, FAST_TIMEOUT)


@pytest.mark.slow
@pytest.mark.parametrize("name", runnable(slow=True))
def test_slow_block_runs_as_pasted(name, tmp_path):
    run_block(name, tmp_path, SLOW_TIMEOUT)


@pytest.mark.slow
def test_ray_block_runs_and_reads_only_its_own_trials(tmp_path):
    """Run twice in one folder: the second run prints its own trials, not the first run's too."""
    line = re.compile(r"^\S+ (autoinit|default) \d+ \S+ [0-9.]+$", re.M)
    first = line.findall(run_block("ray-tune", tmp_path, SLOW_TIMEOUT))
    second = line.findall(run_block("ray-tune", tmp_path, SLOW_TIMEOUT))
    assert sorted(first) == ["autoinit", "autoinit", "default", "default"]
    assert sorted(second) == sorted(first)


# The shell examples --------------------------------------------------------------------------


def shell_texts(text=None):
    """Commands of the non-Python fenced blocks (continuation lines joined, comments cut) and inline code."""
    text = README.read_text(encoding="utf-8") if text is None else text
    texts = []
    for block in readme_blocks(text):
        if block.language == "python":
            continue
        for line in block.code.splitlines():
            line = line.split(" #")[0].rstrip()
            if line[:1].isspace() and texts and texts[-1].startswith("autoinit-nas"):
                texts[-1] += " " + line.strip()
            elif line:
                texts.append(line.strip())
    texts += INLINE.findall(FENCE.sub("", text))
    return texts


def cli_commands(text=None):
    """(subcommand, command text) of every ``autoinit-nas SUB ...`` the README shows."""
    found = []
    for text_ in shell_texts(text):
        for match in re.finditer(r"autoinit-nas\s+([\w-]+)([^`]*)", text_):
            found.append((match.group(1), match.group(0)))
    return found


def subcommand_parsers():
    from autoinit_nas import cli

    parsers = {}
    for command in cli.COMMANDS:
        parser = argparse.ArgumentParser(prog=f"autoinit-nas {command.name}")
        command.add_arguments(parser)
        parsers[command.name] = parser
    return parsers


def flag_problems(commands, parsers):
    """What in ``commands`` the parsers do not accept: unknown subcommands, flags, choices."""
    problems = []
    for sub, command in commands:
        if sub not in parsers:
            problems.append(f"{command!r}: no subcommand {sub!r} (have {sorted(parsers)})")
            continue
        actions = {option: action for action in parsers[sub]._actions for option in action.option_strings}
        for flag in re.findall(r"(?<![\w-])--[a-z][\w-]*", command):
            if flag not in actions:
                problems.append(f"{command!r}: `autoinit-nas {sub} --help` has no {flag}")
        for flag, alternatives in re.findall(r"(--[a-z][\w-]*)\s+([\w.-]+(?:\|[\w.-]+)+)", command):
            choices = getattr(actions.get(flag), "choices", None)
            unknown = [value for value in alternatives.split("|") if choices is not None and value not in choices]
            if unknown:
                problems.append(f"{command!r}: {flag} does not accept {unknown} (choices {list(choices)})")
    return problems


def test_cli_examples_use_flags_the_parsers_have():
    commands = cli_commands()
    assert {sub for sub, _ in commands} >= {"sweep", "study", "report", "visualize", "layers"}
    assert flag_problems(commands, subcommand_parsers()) == []


def test_flag_check_catches_a_wrong_flag_and_choice():
    parsers = subcommand_parsers()
    text = "```\nautoinit-nas sweep --trials 2\n    [--no-such-flag] [--engine keras-tuner|spark]\n```\n`autoinit-nas plot --x`"
    problems = flag_problems(cli_commands(text), parsers)
    assert len(problems) == 3, problems
    assert "--no-such-flag" in problems[0] and "spark" in problems[1] and "no subcommand 'plot'" in problems[2]


def makefile_targets():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, re.M))


def test_make_targets_exist():
    named = {target for text in shell_texts() for target in re.findall(r"(?<![\w.-])make\s+([a-z][\w-]*)", text)}
    assert {"demo", "test", "check", "bench"} <= named
    assert sorted(named - makefile_targets()) == []


def test_python_modules_and_repository_paths_exist():
    texts = shell_texts()
    modules = {module for text in texts for module in re.findall(r"python -m ([\w.]+)", text)}
    assert "experiments.demo" in modules
    assert sorted(module for module in modules if importlib.util.find_spec(module) is None) == []
    text = README.read_text(encoding="utf-8")
    inline = INLINE.findall(FENCE.sub("", text))
    tokens = [token.rstrip(".,;:") for text_ in inline for token in text_.split()] + LINK.findall(text)
    paths = {token for token in tokens if token.split("/")[0] in REPO_DIRS and "/" in token and "<" not in token}
    assert "tests/data/ANCHORS.md" in paths
    missing = sorted(path for path in paths if not glob.glob(str(ROOT / path)))
    assert missing == []


def names_listed_after(label, text=None):
    """The inline-code names of the README's sentence that starts with ``label``."""
    text = " ".join((README.read_text(encoding="utf-8") if text is None else text).split())
    match = re.search(re.escape(label) + r"(.*?)(?:\. |;)", text)
    assert match, f"the README no longer has a sentence starting {label!r}"
    return set(INLINE.findall(match.group(1)))


def test_listed_spaces_datasets_and_configs_are_the_real_ones():
    import search_spaces

    from autoinit_nas import configs, datasets

    assert names_listed_after("Spaces:") == set(search_spaces.names())
    assert names_listed_after("Datasets (offline,") == set(datasets.names(available_only=False))
    sweep_configs = names_listed_after("Named configs (`autoinit_nas/configs/*.json`):")
    assert sweep_configs and sweep_configs <= set(configs.names())
