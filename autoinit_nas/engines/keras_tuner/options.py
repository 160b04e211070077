"""The keras-tuner engine's sweep options: which search algorithm (``--tuner``).

Light on purpose (no keras-tuner import): the command line and the sweep spec
read it through ``autoinit_nas.engines.ENGINES``.
"""

TUNERS = ("random", "bayesian")
DEFAULTS = {"tuner": "random"}
# Options that must match for a rerun to resume a sweep.
IDENTITY = ("tuner",)


def add_arguments(parser):
    """The ``--tuner`` flag (default None: the spec's, then "random")."""
    parser.add_argument("--tuner", choices=TUNERS, help="keras-tuner search algorithm (default random)")


def validate(options):
    """Raise ``ValueError`` unless ``options["tuner"]`` is one of ``TUNERS``.

    Example:
        >>> validate({"tuner": "bayesian"})
    """
    if options.get("tuner") not in TUNERS:
        raise ValueError(f"`tuner` must be one of {TUNERS}. Received: tuner={options.get('tuner')!r}")
