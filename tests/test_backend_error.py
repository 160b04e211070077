"""Importing autoinit_nas without the selected Keras backend: an ImportError that names the extra.

Each check runs in a fresh interpreter whose import system hides the backend's package, as if it
were not installed (a meta-path finder that raises ModuleNotFoundError for it and its submodules).
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

BLOCKER = textwrap.dedent(
    """
    import sys

    class Hide:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {hidden!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Hide())
    """
)


def run_hidden(hidden, code, backend):
    """Run ``code`` in a subprocess with the packages ``hidden`` uninstallable and KERAS_BACKEND=backend."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    script = BLOCKER.format(hidden=set(hidden)) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_missing_backend_names_the_backend_and_the_extra(backend):
    result = run_hidden([backend], "import autoinit_nas", backend)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: "), result.stderr[-2000:]
    assert f"Keras's backend {backend!r}" in last
    assert f"KERAS_BACKEND={backend!r}" in last
    assert f"pip install 'autoinit_nas[{backend}]'" in last


def test_missing_backend_suggests_an_installed_one_or_says_none_is_there():
    others = [name for name in ("jax", "torch") if importlib.util.find_spec(name) is not None]
    result = run_hidden(["tensorflow"], "import autoinit_nas", "tensorflow")
    if others:
        assert f"select an installed backend: KERAS_BACKEND={others[0]}" in result.stderr
    else:
        assert "TensorFlow, JAX and PyTorch are all missing" in result.stderr
    none = run_hidden(["tensorflow", "jax", "torch"], "import autoinit_nas", "tensorflow")
    assert "TensorFlow, JAX and PyTorch are all missing" in none.stderr


def test_other_import_errors_pass_through_unchanged():
    # keras itself missing is not a backend problem: the plain ModuleNotFoundError stays.
    result = run_hidden(["keras"], "import autoinit_nas", "tensorflow")
    last = result.stderr.strip().splitlines()[-1]
    assert last == "ModuleNotFoundError: No module named 'keras'", result.stderr[-2000:]



@pytest.mark.parametrize("hidden, extra", [(["keras_tuner"], "tuner"), (["ray"], "ray")])
def test_a_command_without_its_extra_names_the_extra(hidden, extra, tmp_path):
    # The sweep needs keras-tuner (its keras-tuner engine and the spaces' hp translation); a Ray
    # sweep needs ray. Without them: one line naming the extra, exit status 2, no traceback.
    engine = "ray" if extra == "ray" else "keras-tuner"
    code = f"""
        import sys
        from autoinit_nas.cli import main
        sys.exit(main(["sweep", "--engine", {engine!r}, "--trials", "1", "--epochs", "1",
                       "--out", {str(tmp_path / "out")!r}]))
    """
    result = run_hidden(hidden, code, "tensorflow")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"autoinit_nas[{extra}]" in result.stderr.strip().splitlines()[-1]
