"""Search engines by name: ``ENGINES`` maps each name to an ``Engine`` description.

An engine is one folder here (its adapter, callback, reader, sweep driver and
options) plus one ``ENGINES[...] = Engine(...)`` line below. The folders are
imported on first use, so this module stays light; everything above the
engines (sweep, results, report, command line) finds them only through
``ENGINES``. Adding an engine: docs/engines.md.
"""

import dataclasses
import importlib

from autoinit_nas.engines.errors import SweepError  # noqa: F401 - re-exported
from autoinit_nas.trials import records


@dataclasses.dataclass(frozen=True)
class Engine:
    """What the rest of the package knows about one engine.

    ``driver``, ``reader`` and ``options`` are objects, or import paths
    (``"package.module"`` or ``"package.module:name"``) loaded on first use.

    Example:
        >>> engine = Engine("toy", folder="toy", driver="collections:OrderedDict")
        >>> engine.option_defaults(), engine.reader_module() is None
        ({}, True)

    Args:
        name: the ``--engine`` / ``SweepSpec(engine=...)`` name.
        folder: its store under a sweep's directory.
        driver: the sweep driver: a class (or factory) whose instances have
            ``run(context)``; ``run`` trains the missing trials, leaves one
            record per trial in ``context.store`` and calls
            ``context.trial_finished`` after each.
        reader: None, or what reads the engine's own files without the engine:
            ``engine_status(directory, files)`` and ``orphan(directory, files)``.
        options: None, or its sweep options: ``DEFAULTS`` (name -> default),
            ``IDENTITY`` (names that must match to resume), ``add_arguments(parser)``
            (one flag per option, default None) and ``validate(options)``.
        bookkeeping: prefixes of hyperparameter names that are the engine's
            bookkeeping, not the candidate's (keras-tuner's "tuner/").
    """

    name: str
    folder: str
    driver: object
    reader: object = None
    options: object = None
    bookkeeping: tuple = ()

    def sweep_driver(self):
        """A new driver (``run(context)``) for one sweep."""
        return _load(self.driver)()

    def reader_module(self):
        """The reader of the engine's own files, or None."""
        return None if self.reader is None else _load(self.reader)

    def option_module(self):
        """The engine's options description, or None."""
        return None if self.options is None else _load(self.options)

    def option_defaults(self):
        """{option: default} (empty without options)."""
        module = self.option_module()
        return dict(getattr(module, "DEFAULTS", {}) or {})

    def resolve_options(self, given):
        """``given`` over the defaults, validated; ``ValueError`` names an unknown or bad option.

        Example:
            >>> ENGINES["keras-tuner"].resolve_options({"tuner": "bayesian"})
            {'tuner': 'bayesian', 'hyperband_factor': 3}
        """
        defaults = self.option_defaults()
        unknown = sorted(set(given or {}) - set(defaults))
        if unknown:
            raise ValueError(
                f"Unknown option(s) {unknown} for engine '{self.name}'. Expected some of: {sorted(defaults)}. "
                f"Received: engine_options={given!r}"
            )
        options = {**defaults, **{key: value for key, value in (given or {}).items() if value is not None}}
        module = self.option_module()
        if module is not None and hasattr(module, "validate"):
            module.validate(options)
        return options

    def identity_options(self, given):
        """The resolved options that must match for a rerun to resume a sweep."""
        options = self.resolve_options(given)
        names = getattr(self.option_module(), "IDENTITY", ()) or ()
        return {name: options[name] for name in names}


ENGINES = {}


def register_engine(engine):
    """Make ``engine`` available everywhere by its name (replacing one of that name); returns it.

    Example:
        >>> toy = register_engine(Engine("toy", folder="toy", driver="collections:OrderedDict"))
        >>> "toy" in ENGINES
        True
        >>> del ENGINES["toy"]

    Args:
        engine: an ``Engine``, or a sweep driver object with ``name``,
            ``folder`` and ``run(context)`` (the form of earlier releases).
    """
    if not isinstance(engine, Engine):
        if not all(hasattr(engine, attribute) for attribute in ("name", "folder", "run")):
            raise TypeError(
                "`engine` must be an autoinit_nas.engines.Engine, or a driver with `name`, `folder` and "
                f"`run(context)`. Received: {engine!r}"
            )
        engine = Engine(engine.name, folder=engine.folder, driver=lambda driver=engine: driver)
    ENGINES[engine.name] = engine
    records.add_bookkeeping(engine.bookkeeping)
    return engine


def names():
    """Names of the registered engines.

    Example:
        >>> names()[:2]
        ['keras-tuner', 'ray']
    """
    return list(ENGINES)


def _load(target):
    """``target`` itself, or the module / attribute its import path names."""
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded


register_engine(Engine(
    "keras-tuner", folder="keras_tuner", driver="autoinit_nas.engines.keras_tuner.sweep:KerasTunerEngine",
    reader="autoinit_nas.engines.keras_tuner.reader", options="autoinit_nas.engines.keras_tuner.options",
    bookkeeping=("tuner/",),
))
register_engine(Engine(
    "ray", folder="ray", driver="autoinit_nas.engines.ray.sweep:RayEngine",
    reader="autoinit_nas.engines.ray.reader", options="autoinit_nas.engines.ray.options",
))
