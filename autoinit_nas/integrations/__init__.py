"""Adapters that apply AutoInit inside search engines.

Each engine lives in its own module, imported on demand so the core never
imports an engine it does not need:

- ``autoinit_nas.integrations.keras_tuner``: ``AutoInitHyperModel``, a
  keras-tuner ``HyperModel`` that initializes every candidate with AutoInit.
- ``autoinit_nas.integrations.records``: the per-trial record (architecture id,
  depth, init arm, timings, divergence) every engine writes next to its
  trials, and the readers for it. Imports neither keras-tuner nor Ray.

Example:
    >>> from autoinit_nas.integrations import records
    >>> records.RECORD_FILENAME
    'autoinit_record.json'
"""
