"""autoinit_nas: AutoInit for Keras 3, and the machinery to use it in NAS.

Example:
    >>> from autoinit_nas import AutoInit
    >>> initializer = AutoInit(weight_init_config={"seed": 0})
"""

from autoinit_nas.core.autoinit import AutoInit
from autoinit_nas.estimators.base import LayerOutputDistributionEstimator
from autoinit_nas.layers import CenteredUnitNorm, WeightedSum

__all__ = [
    "AutoInit",
    "CenteredUnitNorm",
    "LayerOutputDistributionEstimator",
    "WeightedSum",
]
__version__ = "0.1.0"
