"""``AutoInitHyperModel`` where users import it; it lives in ``autoinit_nas.engines.keras_tuner``."""

from autoinit_nas.engines.keras_tuner.hypermodel import (  # noqa: F401
    DEFAULT_ARM_WEIGHTS,
    DEFAULT_PREFIX,
    INIT_MODES,
    AutoInitHyperModel,
)
from autoinit_nas.engines.keras_tuner.space import (  # noqa: F401 - search spaces speak keras-tuner's hp API
    check_hyperparameter,
    hyperparameters_from_overrides,
    space_hyperparameters,
)
