"""What a HyperModel's ``fit`` returned, as a per-epoch history, and its best epoch by the tuner's objective."""

import keras

from autoinit_nas.trials.metrics import best_history_epoch, epoch_metrics, history_epochs


def objective_epoch(history, objective):
    """The epoch whose logs keras-tuner's ``objective`` likes best (the last one without an objective).

    Example:
        >>> objective_epoch({"loss": [0.5, 0.2]}, None)
        1
    """
    if objective is None:
        return history_epochs(history) - 1

    def score(logs):
        return objective.get_value(logs) if objective.has_value(logs) else None

    return best_history_epoch(history, score, objective.better_than)


def as_history(results, objective):
    """{metric: [value per epoch]} from what a HyperModel's fit returned.

    Example:
        >>> as_history({"val_accuracy": 0.5}, None)
        {'val_accuracy': [0.5]}
    """
    if isinstance(results, keras.callbacks.History):
        return {name: [float(v) for v in values] for name, values in results.history.items()}
    if isinstance(results, dict):
        history = {}
        for name, value in results.items():
            try:
                history[name] = [float(value)]
            except (TypeError, ValueError):
                continue
        return history
    if isinstance(results, (int, float)) and not isinstance(results, bool):
        name = objective.name if objective is not None else "objective"
        return {name: [float(results)]}
    if isinstance(results, list) and results:
        return _averaged(results, objective)
    return {}


def _averaged(results, objective):
    """Several executions inside one fit: average their best values, as keras-tuner does."""
    parts = []
    for item in results:
        history = as_history(item, objective)
        parts.append(epoch_metrics(history, objective_epoch(history, objective)))
    averaged = {}
    for name in sorted({name for part in parts for name in part}):
        values = [part[name] for part in parts if part.get(name) is not None]
        averaged[name] = [sum(values) / len(values) if values else float("nan")]
    return averaged
