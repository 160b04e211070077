"""The life of a trial record, the same for every engine: start, executions and arms, epochs, finish, error.

Each step changes the record dict; the engine writes it where its store is
(``records.write_record`` into its trial directory, or Ray's storage).

Example:
    >>> record = start("toy", "0", "autoinit", seed=1)
    >>> fields = open_arm(record, "autoinit", {"diverged": False, "divergence": None})
    >>> add_epoch(fields, {"loss": 0.5})
    >>> finish(record), record["status"], fields["history"]
    (None, 'completed', {'loss': [0.5]})
"""

from autoinit_nas.trials import records


def start(engine, trial_id, init, seed=None, hyperparameters=None, **fields):
    """A new running record (``records.new_record``) with the trial's hyperparameters made JSON-safe."""
    return records.new_record(engine, trial_id, init, seed=seed,
                              hyperparameters=records.json_safe(dict(hyperparameters or {})), **fields)


def start_execution(record, index=None):
    """Open a new execution (default index: the next) and mark the record running; returns it."""
    execution = {"execution": len(record["executions"]) if index is None else index, "arms": {}}
    record["executions"].append(execution)
    record["status"], record["reason"] = "running", None
    return execution


def open_arm(record, arm, fields):
    """Put ``arm``'s fields into the last execution (opening one if none); returns them."""
    if not record["executions"]:
        start_execution(record)
    record["executions"][-1]["arms"][arm] = fields
    return fields


def add_epoch(fields, values):
    """Append one epoch's ``values`` to an arm's ``history`` (series kept aligned) and count it."""
    history = fields.setdefault("history", {})
    epochs = fields.get("epochs") or 0
    for name, value in values.items():
        history.setdefault(name, [None] * epochs).append(value)
    for series in history.values():
        if len(series) <= epochs:
            series.append(None)
    fields["epochs"] = epochs + 1


def finish(record, arms=None):
    """End the trial: "diverged" when one of ``arms`` (default: all of the last execution) diverged, else
    "completed"; returns the reason ("<arm> arm: <divergence>") or None."""
    executions = record.get("executions") or []
    trained = executions[-1]["arms"] if executions else {}
    reason = None
    for arm in (trained if arms is None else arms):
        divergence = (trained.get(arm) or {}).get("divergence")
        if divergence:
            reason = f"{arm} arm: {divergence}"
            break
    record["status"] = "diverged" if reason else "completed"
    record["reason"] = reason
    return reason


def fail(record, error):
    """Mark the trial failed with ``error`` (an exception or a message); returns the record."""
    record["status"] = "error"
    record["reason"] = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return record
