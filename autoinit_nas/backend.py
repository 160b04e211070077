"""Importing Keras, with an error that names the extra to install when its backend is missing.

Keras 3 imports the backend that ``KERAS_BACKEND`` (or ``~/.keras/keras.json``) selects,
TensorFlow by default. ``autoinit_nas`` requires no backend: the extras ``tensorflow``,
``jax`` and ``torch`` pick one. Without it, Keras fails deep inside its own import;
``import_keras`` turns that into an ``ImportError`` that says which backend was selected
and which ``pip install`` brings it.
"""

import importlib.util
import os

# Top-level module Keras imports for a backend -> (backend name, extra that installs it).
BACKEND_MODULES = {
    "tensorflow": ("tensorflow", "tensorflow"),
    "jax": ("jax", "jax"),
    "jaxlib": ("jax", "jax"),
    "torch": ("torch", "torch"),
}
EXTRAS = ("tensorflow", "jax", "torch")


def _installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_backend_message(module, reason):
    """The message for a Keras import that failed because backend ``module`` is missing."""
    backend, extra = BACKEND_MODULES[module]
    others = [name for name in EXTRAS if name != backend and _installed(name)]
    switch = (f" or select an installed backend: KERAS_BACKEND={others[0]}" if others
              else "; TensorFlow, JAX and PyTorch are all missing")
    selected = os.environ.get("KERAS_BACKEND")
    source = f"KERAS_BACKEND={selected!r}" if selected else "Keras's config file or its default"
    return (
        f"Keras's backend {backend!r} (from {source}) is not installed ({reason}). "
        f"autoinit_nas needs the package of the selected backend. Install it with "
        f"pip install 'autoinit_nas[{extra}]'{switch}."
    )


def import_keras():
    """Import and return ``keras``; raise ImportError naming the extra if its backend is missing.

    Example:
        >>> keras = import_keras()
        >>> keras.backend.backend() in ("tensorflow", "jax", "torch", "numpy", "openvino")
        True
    """
    try:
        import keras
    except ImportError as error:
        module = (error.name or "").partition(".")[0]
        if module not in BACKEND_MODULES or _installed(module):
            raise
        raise ImportError(missing_backend_message(module, error)) from error
    return keras
