"""The Keras-serializable AutoInit layers, re-exported here for their public import path.

They live on the estimators floor, in ``autoinit_nas.estimators.layers``; their
registered names (``autoinit_nas>WeightedSum``, ``autoinit_nas>CenteredUnitNorm``)
are unchanged, so saved models load from either path.
"""

from autoinit_nas.estimators.layers import CenteredUnitNorm, WeightedSum  # noqa: F401
