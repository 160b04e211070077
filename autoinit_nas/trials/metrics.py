"""Per-epoch metric helpers: which epoch was best, and the metrics at an epoch.

A history is ``{metric: [value per epoch]}`` with None where a value is
missing; every engine summarizes its arms through these functions.
"""

import math


def finite(value):
    """False only for a number that is NaN or infinite; True for finite numbers and non-numbers (None, text).

    Example:
        >>> finite(1.0), finite(float("nan")), finite(None)
        (True, False, True)
    """
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def best_epoch(values, better_than):
    """Index of the best finite value in ``values`` (one per epoch; None where missing).

    ``better_than(a, b)`` says whether ``a`` beats ``b``; the earliest of
    equal values wins. Returns the last epoch when no value is finite, and -1
    for no epochs.

    Example:
        >>> best_epoch([0.5, None, 0.7, 0.7], lambda a, b: a > b)
        2
    """
    best, best_value = None, None
    for epoch, value in enumerate(values):
        if value is None or not finite(value):
            continue
        if best is None or better_than(value, best_value):
            best, best_value = epoch, value
    return len(values) - 1 if best is None else best


def better_for(mode):
    """``better_than(a, b)`` for a direction: "max" (higher wins) or "min".

    Example:
        >>> better_for("min")(0.1, 0.2)
        True
    """
    if mode not in ("max", "min"):
        raise ValueError(f"`mode` must be 'max' or 'min'. Received: mode={mode!r}")
    return (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)


def best_history_epoch(history, score, better_than):
    """The epoch of ``history`` whose logs score best; the last epoch when nothing scores.

    ``score(logs)`` gives one epoch's value (None when it has none);
    ``better_than(a, b)`` compares two values. Engines pass their objective
    here: a metric name and direction (Ray), keras-tuner's ``Objective``.

    Example:
        >>> history = {"val_loss": [0.9, 0.4, 0.6]}
        >>> best_history_epoch(history, lambda logs: logs.get("val_loss"), better_for("min"))
        1
    """
    epochs = history_epochs(history)
    if score is None:
        return epochs - 1
    values = []
    for epoch in range(epochs):
        logs = {name: series[epoch] for name, series in history.items() if epoch < len(series)}
        values.append(score(logs))
    if all(value is None for value in values):
        return epochs - 1
    return best_epoch(values, better_than)


def history_epochs(history):
    """Epochs a history covers: the length of its longest series.

    Example:
        >>> history_epochs({"loss": [1.0, 0.5], "val_loss": [1.1]})
        2
    """
    return max((len(values) for values in history.values()), default=0)


def epoch_metrics(history, epoch):
    """{metric: value at ``epoch``} of a ``history``; non-finite values are None.

    A series shorter than ``epoch`` gives its last value; ``epoch`` -1 gives {}.

    Example:
        >>> epoch_metrics({"loss": [0.9, 0.5], "val_loss": [1.0, float("nan")]}, 1)
        {'loss': 0.5, 'val_loss': None}
    """
    if epoch < 0:
        return {}
    metrics = {}
    for name, values in history.items():
        if values:
            value = values[min(epoch, len(values) - 1)]
            metrics[name] = value if value is not None and finite(value) else None
    return metrics


def non_finite_loss(history):
    """Why a history diverged: its first non-finite ``loss`` or ``val_loss``; else None.

    Example:
        >>> non_finite_loss({"loss": [0.9, float("inf")]})
        'non-finite loss (inf) at epoch 1'
    """
    for key in ("loss", "val_loss"):
        for epoch, value in enumerate(history.get(key, [])):
            if value is not None and not finite(value):
                return f"non-finite {key} ({value}) at epoch {epoch}"
    return None


def summarize_history(history, best, divergence=None):
    """The training fields of an arm from its history and best epoch.

    Returns ``epochs``, ``metrics`` (at ``best``), ``final_metrics`` (at the
    last epoch), ``diverged`` and ``divergence`` (the reason given, else the
    first non-finite loss of the history).

    Example:
        >>> fields = summarize_history({"loss": [0.9, float("nan")]}, best=0)
        >>> fields["metrics"], fields["diverged"]
        ({'loss': 0.9}, True)
    """
    epochs = history_epochs(history)
    reason = divergence or non_finite_loss(history)
    return {
        "epochs": epochs,
        "metrics": epoch_metrics(history, best),
        "final_metrics": epoch_metrics(history, epochs - 1),
        "diverged": reason is not None,
        "divergence": reason,
    }
