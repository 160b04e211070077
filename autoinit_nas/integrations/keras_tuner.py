"""``AutoInitHyperModel`` where users import it; it lives in ``autoinit_nas.engines.keras_tuner``."""

from autoinit_nas.engines.keras_tuner.hypermodel import (  # noqa: F401
    DEFAULT_ARM_WEIGHTS,
    DEFAULT_PREFIX,
    INIT_MODES,
    AutoInitHyperModel,
)
