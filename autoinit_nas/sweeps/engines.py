"""The engines a sweep can run on, by name; an engine is a driver from ``autoinit_nas.engines``.

Example:
    >>> names()
    ['keras-tuner', 'ray']
"""

from autoinit_nas.engines.keras_tuner.sweep import KerasTunerEngine
from autoinit_nas.engines.ray.sweep import RayEngine

ENGINES = {}


def register_engine(engine):
    """Make ``engine`` available as ``SweepSpec(engine=engine.name)`` (replacing one of that name).

    An engine has a ``name``, a ``folder`` (its store under the sweep's
    directory) and ``run(context)``, which trains the trials, leaves one record
    per trial in its store and calls ``context.trial_finished`` after each.
    """
    for attribute in ("name", "folder", "run"):
        if not hasattr(engine, attribute):
            raise TypeError(f"An engine needs `name`, `folder` and `run(context)`. Received: {engine!r}")
    ENGINES[engine.name] = engine
    return engine


def names():
    """Names of the registered engines."""
    return list(ENGINES)


register_engine(KerasTunerEngine())
register_engine(RayEngine())
