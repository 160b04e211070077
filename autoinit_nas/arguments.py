"""Value types for command-line arguments, shared by ``autoinit-nas`` and the experiments' commands."""

import argparse

from autoinit_nas.trials.arms import ARMS


def positive_int(text):
    """An argparse ``type``: ``text`` as an int of at least 1.

    Example:
        >>> positive_int("3")
        3
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def arm_list(text):
    """An argparse ``type``: comma-separated init arms, each one of ``trials.arms.ARMS``.

    Example:
        >>> arm_list("he, autoinit")
        ['he', 'autoinit']
    """
    values = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [value for value in values if value not in ARMS]
    if not values or unknown:
        raise argparse.ArgumentTypeError(f"expected arms among {', '.join(ARMS)} separated by commas, "
                                         f"received {text!r}")
    return values
