"""The Ray engine's sweep options: where Ray runs (``--address``).

Light on purpose (no Ray import): the command line and the sweep spec read it
through ``autoinit_nas.engines.ENGINES``.
"""

DEFAULTS = {"address": None}
# The cluster a sweep runs on may change between reruns.
IDENTITY = ()


def add_arguments(parser):
    """The ``--address`` flag (default None: ``RAY_ADDRESS`` or a local Ray)."""
    parser.add_argument("--address", metavar="ADDR",
                        help="Ray cluster address for --engine ray (default: RAY_ADDRESS or local)")


def validate(options):
    """Raise ``ValueError`` unless ``options["address"]`` is None or text.

    Example:
        >>> validate({"address": "auto"})
    """
    address = options.get("address")
    if address is not None and not isinstance(address, str):
        raise ValueError(f"`address` must be a Ray address (text) or None. Received: address={address!r}")
