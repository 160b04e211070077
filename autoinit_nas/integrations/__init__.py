"""Thin re-exports of the engines' public names, kept for users' imports.

``integrations.keras_tuner.AutoInitHyperModel``, ``integrations.ray_tune.with_autoinit``
and ``prepare_model`` live in ``autoinit_nas.engines``; the trial record in
``autoinit_nas.trials.records``.
"""
