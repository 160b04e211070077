"""keras-tuner as an engine: ``AutoInitHyperModel``, its trial bookkeeping, store reader and sweep driver.

The modules import keras-tuner themselves (``reader`` does not), so reading
results never needs it. Usage: docs/engines.md.
"""
