"""The package as users get it: the core's import footprint, and the wheel installed outside the repo.

The wheel test (slow, in ``make check``) builds the wheel from a copy of the sources, installs it
into a fresh venv under tmp that reuses this environment's dependencies (a ``.pth`` line pointing at
its site-packages, whose own ``.pth`` files, the editable install's finder among them, are not run),
and runs the demo sweep and a two-candidate study from an empty folder.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.test_backend_error import run_hidden

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "autoinit_nas", "search_spaces")
OPTIONAL = ("pandas", "keras_tuner", "ray", "matplotlib", "sklearn", "pyarrow")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", RAY_AUTH_MODE="disabled", KERAS_BACKEND="tensorflow")


def run(command, cwd, timeout=600):
    """Run ``command``; fail with its output unless it exits 0. Returns the CompletedProcess."""
    env = {key: value for key, value in ENV.items() if key != "PYTHONPATH"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{output}"
    return result


def test_the_core_works_without_the_optional_dependencies_or_other_backends():
    # Keras itself imports pandas, matplotlib, sklearn and pyarrow when they are there; hidden, as if
    # uninstalled (JAX and PyTorch too), the core imports on TensorFlow and initializes a model.
    code = """
        import keras, numpy as np
        from autoinit_nas import AutoInit
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
        AutoInit(weight_init_config={"seed": 0}).initialize_model(model)
        print(keras.backend.backend(), model.predict(np.ones((2, 8)), verbose=0).shape)
    """
    result = run_hidden(OPTIONAL + ("jax", "torch"), code, "tensorflow")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("tensorflow (2, 1)"), result.stdout


def build_wheel(folder):
    """The wheel of a copy of the sources (nothing written into the work tree); returns its path."""
    source = folder / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    run(pip + [str(source), "-w", str(folder / "dist")], cwd=folder)
    (wheel,) = (folder / "dist").glob("autoinit_nas-*.whl")
    return wheel


def venv_with(wheel, folder):
    """A fresh venv holding only ``wheel``; this environment's site-packages after its own."""
    venv = folder / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=folder)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=folder).stdout.strip())
    (site / "reuse_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], cwd=folder)
    return venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(folder)
    venv = venv_with(wheel, folder)
    empty = folder / "empty"
    empty.mkdir()
    return wheel, venv, empty


@pytest.mark.slow
def test_the_wheel_ships_the_package_and_its_configs_only(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"autoinit_nas", "search_spaces"}
    configs = {Path(name).name for name in names if name.startswith("autoinit_nas/configs/") and name.endswith(".json")}
    assert {"demo.json", "study-quick.json"} <= configs


@pytest.mark.slow
def test_the_installed_package_is_the_wheel_and_states_ranges(installed):
    _, venv, empty = installed
    python = str(venv / "bin" / "python")
    where = run([python, "-c", "import autoinit_nas; print(autoinit_nas.__file__)"], cwd=empty).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    show = run([python, "-m", "pip", "show", "autoinit_nas"], cwd=empty).stdout
    assert f"Location: {venv}" in show, show
    # pip show names the required packages (no TensorFlow); their specifiers are in the metadata.
    assert "Requires: keras, numpy, scipy\n" in show, show
    metadata = "from importlib.metadata import requires; print('\\n'.join(requires('autoinit_nas')))"
    requires = run([python, "-c", metadata], cwd=empty).stdout.splitlines()
    core = sorted(line for line in requires if "extra ==" not in line)
    assert [re.match(r"[a-z-]+", line).group() for line in core] == ["keras", "numpy", "scipy"], core
    specifiers = [line.partition(";")[0] for line in requires]
    assert all(">=" in line and "==" not in line for line in specifiers), requires
    assert all("<" in line for line in core), core


@pytest.mark.slow
def test_the_demo_sweep_and_a_two_candidate_study_run_from_an_empty_folder(installed):
    _, venv, empty = installed
    command = str(venv / "bin" / "autoinit-nas")
    sweep = run([command, "sweep", "--config", "demo", "--trials", "2", "--epochs", "1", "--out", "sweep-out"],
                cwd=empty)
    assert "report: autoinit-nas report sweep-out" in sweep.stdout, sweep.stdout
    assert any((empty / "sweep-out").iterdir())
    report = run([command, "report", "sweep-out"], cwd=empty)
    assert report.stdout.strip(), report.stderr
    study = run([command, "study", "--config", "study-quick", "--space", "heterogeneous", "--data", "digits",
                 "--candidates", "2", "--arms", "default,autoinit", "--epochs", "1", "--budgets", "1",
                 "--out", "study-out"], cwd=empty)
    assert "report:" in study.stdout, study.stdout
    for name in ("report.md", "scores.csv"):
        assert (empty / "study-out" / "report" / name).is_file(), name
    assert not (empty / "out").exists()
