"""The estimate cache, re-exported here for its earlier import path.

It lives on the estimators floor, in ``autoinit_nas.estimators.cache``.
"""

from autoinit_nas.estimators.cache import GLOBAL_CACHE, EstimateCache, round_moment  # noqa: F401
