"""The Ray engine's sweep options: where Ray runs (``--address``) and which Tune scheduler decides.

Light on purpose (no Ray import): the command line and the sweep spec read it
through ``autoinit_nas.engines.ENGINES``. The schedulers themselves are built
in ``autoinit_nas.engines.ray.schedulers``.
"""

import numbers

SCHEDULERS = ("fifo", "asha", "hyperband", "pbt")
# Schedulers that pause or clone trials, so each report must carry a checkpoint.
CHECKPOINTING = ("hyperband", "pbt")
CHECKPOINT_CHOICES = ("auto", "on", "off")
# Schedulers that stop trials on partial budgets (successive halving): several arms run as one search each.
# PBT is not one of them: it clones trials into one another and takes one arm only.
SUCCESSIVE_HALVING = ("asha", "hyperband")
DEFAULTS = {
    "address": None,
    "scheduler": "fifo",
    "grace_period": 1,
    "reduction_factor": 3,
    "perturbation_interval": 1,
    "checkpoints": "auto",
    "max_failures": 0,
}
# Options that must match for a rerun to resume a sweep (the cluster may change between reruns).
IDENTITY = ("scheduler", "grace_period", "reduction_factor", "perturbation_interval")


def add_arguments(parser):
    """The Ray flags (default None: the spec's value, then ``DEFAULTS``)."""
    parser.add_argument("--address", metavar="ADDR",
                        help="Ray cluster address for --engine ray (default: RAY_ADDRESS or local)")
    parser.add_argument("--scheduler", choices=SCHEDULERS,
                        help="Ray Tune trial scheduler (default fifo: every trial trains all --epochs)")
    parser.add_argument("--grace-period", type=int, metavar="EPOCHS",
                        help="asha: epochs every trial trains before it can be stopped (default 1)")
    parser.add_argument("--reduction-factor", type=float, metavar="ETA",
                        help="asha/hyperband: keep 1/ETA of the trials at each rung (default 3)")
    parser.add_argument("--perturbation-interval", type=int, metavar="EPOCHS",
                        help="pbt: epochs between exploit/explore steps (default 1)")
    parser.add_argument("--checkpoints", choices=CHECKPOINT_CHOICES,
                        help="save weights and optimizer state with each epoch's report "
                             "(default auto: on for hyperband and pbt)")
    parser.add_argument("--max-failures", type=int, metavar="N",
                        help="retry a failed trial from its last checkpoint up to N times (default 0)")


def checkpointing(options):
    """Whether trials save a checkpoint with each report under these (resolved) options.

    Example:
        >>> checkpointing({"scheduler": "pbt", "checkpoints": "auto"})
        True
    """
    choice = options.get("checkpoints", "auto")
    if choice == "auto":
        return options.get("scheduler") in CHECKPOINTING
    return choice == "on"


def multi_fidelity(options):
    """Whether the scheduler stops trials on partial budgets (ASHA, HyperBand), so several arms run as one search each.

    Example:
        >>> multi_fidelity({"scheduler": "asha"}), multi_fidelity({"scheduler": "pbt"})
        (True, False)
    """
    return options.get("scheduler") in SUCCESSIVE_HALVING


def validate(options):
    """Raise ``ValueError`` naming the option, what it expects and what it received.

    Example:
        >>> validate({"address": "auto", "scheduler": "asha", "grace_period": 1, "reduction_factor": 2})
    """
    address = options.get("address")
    if address is not None and not isinstance(address, str):
        raise ValueError(f"`address` must be a Ray address (text) or None. Received: address={address!r}")
    scheduler = options.get("scheduler", "fifo")
    if scheduler not in SCHEDULERS:
        raise ValueError(f"`scheduler` must be one of {SCHEDULERS}. Received: scheduler={scheduler!r}")
    _check_number(options, "grace_period", 1, 1, integer=True)
    _check_number(options, "perturbation_interval", 1, 1, integer=True)
    _check_number(options, "max_failures", 0, 0, integer=True)
    factor = options.get("reduction_factor", 3)
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not factor > 1:
        raise ValueError(
            f"`reduction_factor` must be a number greater than 1. Received: reduction_factor={factor!r}"
        )
    if options.get("checkpoints", "auto") not in CHECKPOINT_CHOICES:
        raise ValueError(
            f"`checkpoints` must be one of {CHECKPOINT_CHOICES}. Received: checkpoints={options.get('checkpoints')!r}"
        )
    if scheduler in CHECKPOINTING and options.get("checkpoints") == "off":
        raise ValueError(
            f"scheduler={scheduler!r} pauses or clones trials and needs their checkpoints. "
            "Expected checkpoints 'auto' or 'on'. Received: checkpoints='off'"
        )


def _check_number(options, name, default, minimum, integer=False):
    value = options.get(name, default)
    kinds = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        expected = "an integer" if integer else "a number"
        raise ValueError(f"`{name}` must be {expected} >= {minimum}. Received: {name}={value!r}")
