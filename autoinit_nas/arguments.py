"""Value types for command-line arguments, shared by ``autoinit-nas`` and the experiments' commands."""

import argparse


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
