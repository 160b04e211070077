"""Search engines, one folder each: an engine adapts AutoInit's trials to one tuning library.

Each folder holds the library's adapter (hypermodel or trainable), its
callback, its search-space translation, the reader of its on-disk store and
its sweep driver. Adding an engine means adding a folder; engines build on
``autoinit_nas.trials`` and know the core only through its public API.
"""
