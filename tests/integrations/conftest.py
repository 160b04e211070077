"""Fixtures of the integration tests: ``ray_session`` (one local Ray per test session) lives in
tests/conftest.py so the sweep tests share it. A test needing a cluster of its own
(``ray.cluster_utils.Cluster``) runs it in a subprocess.
"""

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
