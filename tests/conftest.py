"""Shared fixtures: quiet TensorFlow, fixed seeds, and Monte Carlo helpers."""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def to_numpy(value):
    """A backend tensor (TensorFlow, JAX or PyTorch) as a float64 numpy array."""
    return np.asarray(keras.ops.convert_to_numpy(value), dtype=float)


def measured_moments(model_or_layer, inputs, training=True):
    """Mean and variance over all elements of the output on ``inputs``."""
    output = model_or_layer(inputs, training=training)
    values = to_numpy(output)
    return float(values.mean()), float(values.var()), values


def variance_standard_error(values):
    """Standard error of the sample variance of i.i.d. draws: sqrt((mu4 - sigma^4) / n)."""
    values = np.asarray(values, dtype=float).ravel()
    centred = values - values.mean()
    fourth = float(np.mean(centred**4))
    var = float(np.mean(centred**2))
    return math.sqrt(max(fourth - var * var, 0.0) / values.size)


def mean_standard_error(values):
    values = np.asarray(values, dtype=float).ravel()
    return float(values.std()) / math.sqrt(values.size)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray (``ray.init(num_cpus=2)``) for the whole test session, started on first use.

    Tests that do not ask for it never start Ray; sweeps find it initialized
    and reuse it instead of starting and stopping their own.
    """
    ray = pytest.importorskip("ray")
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        started = True
    yield ray
    if started:
        ray.shutdown()
