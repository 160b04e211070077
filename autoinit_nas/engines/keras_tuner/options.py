"""The keras-tuner engine's sweep options: the search algorithm (``--tuner``) and Hyperband's ``--hyperband-factor``.

Light on purpose (no keras-tuner import): the command line and the sweep spec
read it through ``autoinit_nas.engines.ENGINES``.
"""

TUNERS = ("random", "bayesian", "hyperband")
DEFAULTS = {"tuner": "random", "hyperband_factor": 3}
# Options that must match for a rerun to resume a sweep (the factor shapes Hyperband's brackets).
IDENTITY = ("tuner", "hyperband_factor")


def add_arguments(parser):
    """The ``--tuner`` and ``--hyperband-factor`` flags (default None: the spec's, then ``DEFAULTS``)."""
    parser.add_argument("--tuner", choices=TUNERS,
                        help="keras-tuner search algorithm (default random). hyperband: max_epochs = --epochs, "
                             "--trials caps the trials, continuations included")
    parser.add_argument("--hyperband-factor", type=int, metavar="N",
                        help="--tuner hyperband: keep 1/N of each round's candidates and train them N times "
                             "longer (default 3, at least 2)")


def multi_fidelity(options):
    """Whether the search decides on partial budgets (Hyperband), so several arms run as one search each.

    Example:
        >>> multi_fidelity({"tuner": "hyperband"}), multi_fidelity({"tuner": "random"})
        (True, False)
    """
    return options.get("tuner") == "hyperband"


def validate(options):
    """Raise ``ValueError`` unless ``tuner`` is one of ``TUNERS`` and ``hyperband_factor`` an int of at least 2.

    Example:
        >>> validate({"tuner": "hyperband", "hyperband_factor": 2})
        >>> validate({"tuner": "hyperband", "hyperband_factor": 1})
        Traceback (most recent call last):
        ...
        ValueError: `hyperband_factor` must be an int of at least 2. Received: hyperband_factor=1
    """
    if options.get("tuner") not in TUNERS:
        raise ValueError(f"`tuner` must be one of {TUNERS}. Received: tuner={options.get('tuner')!r}")
    factor = options.get("hyperband_factor", DEFAULTS["hyperband_factor"])
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ValueError(f"`hyperband_factor` must be an int of at least 2. Received: hyperband_factor={factor!r}")
