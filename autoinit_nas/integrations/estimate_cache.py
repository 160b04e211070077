"""``SharedEstimateCache`` where users import it; it lives in ``autoinit_nas.engines.ray.estimate_cache``."""

from autoinit_nas.engines.ray.estimate_cache import (  # noqa: F401
    DEFAULT_NAME,
    DEFAULT_NAMESPACE,
    SAMPLED_NAMES,
    SHARED_MODES,
    EstimateStore,
    SharedEstimateCache,
    estimate_store_actor,
)
