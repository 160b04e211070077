"""Fixtures of the integration tests.

``ray_session``: one local Ray (2 CPUs) for the whole test session, started
the first time a test asks for it and shut down at the end. Tests that do not
ask for it (the keras-tuner ones) never start Ray. A test needing a cluster of
its own (``ray.cluster_utils.Cluster``) runs it in a subprocess.
"""

import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def ray_session():
    """The session's Ray (``ray.init(num_cpus=2)``), started on first use."""
    ray = pytest.importorskip("ray")
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        started = True
    yield ray
    if started:
        ray.shutdown()
