"""The engine-neutral trial: one record per trial, its arms, seeds, divergence and metrics.

No keras-tuner and no Ray here: every engine under ``autoinit_nas.engines``
builds its trials from these rooms, and ``autoinit_nas.results`` reads what
they wrote. ``records`` (schema and I/O), ``arms`` (applying an init arm, the
trial seed), ``divergence`` (the one divergence callback), ``metrics``
(best epoch, per-epoch values).
"""
