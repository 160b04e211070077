"""Ray Tune as an engine: the trainable wrapper, its report callback, space translation,
the shared estimate cache, the store reader and the sweep driver.

Modules import Ray only where they need it (``reader`` never does). Usage: docs/engines.md.
"""
