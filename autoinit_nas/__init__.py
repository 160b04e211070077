"""autoinit_nas: AutoInit for Keras 3, and the machinery to use it in NAS.

Example:
    >>> from autoinit_nas import AutoInit
    >>> initializer = AutoInit(weight_init_config={"seed": 0})

``AutoInitVisualizer`` is exported lazily: it needs pandas and matplotlib
(the ``results`` extra), which ``import autoinit_nas`` never imports.
Keras is imported first, through ``backend.import_keras``: without the selected
backend (TensorFlow, JAX or PyTorch) the ImportError names the extra to install.
"""

from autoinit_nas.backend import import_keras

import_keras()

from autoinit_nas.core.autoinit import AutoInit  # noqa: E402
from autoinit_nas.estimators.base import LayerOutputDistributionEstimator  # noqa: E402
from autoinit_nas.layers import CenteredUnitNorm, WeightedSum  # noqa: E402
from autoinit_nas import declared  # noqa: E402,F401 - registers the init arms' initializers for loading saved models

__all__ = [
    "AutoInit",
    "CenteredUnitNorm",
    "LayerOutputDistributionEstimator",
    "WeightedSum",
]
__version__ = "0.1.0"

# Names imported on first access, so the core never imports their dependencies.
# (Not in __all__: a star import must not require the optional extras.)
_LAZY = {"AutoInitVisualizer": "autoinit_nas.visualize"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'autoinit_nas' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
