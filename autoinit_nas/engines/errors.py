"""The error every engine's sweep driver raises when a sweep cannot start or go on."""


class SweepError(Exception):
    """A sweep that cannot start or go on; the message says why and what to change.

    Example:
        >>> str(SweepError("3 trials in a row failed"))
        '3 trials in a row failed'
    """
