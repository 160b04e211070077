"""The batch size each searched trial probed its arm at, found by the trial's hyperparameters.

``tuner.get_best_hyperparameters()`` hands back a trial's ``HyperParameters``
and nothing else, so ``AutoInitHyperModel.build(best_hp)`` finds that trial by
its hyperparameter values (``tuner/*`` entries included, which tell a
Hyperband continuation from the trial it continues). Trials this process ran
are remembered as they run; trials of an earlier process are read from their
records (``SearchedBatches.load``, done once per tuner project on the first
trial, or by ``AutoInitHyperModel.remember_trials``).
"""

import json
import os

from autoinit_nas.trials import records


def values_key(values):
    """A hashable key of hyperparameter ``values`` (JSON with sorted keys).

    Example:
        >>> values_key({"b": 1, "a": 2.0})
        '{"a": 2.0, "b": 1}'
    """
    return json.dumps(records.json_safe(dict(values or {})), sort_keys=True, default=str)


class SearchedBatches:
    """Probe batch sizes of searched trials, by hyperparameter values and by trial seed.

    Example:
        >>> searched = SearchedBatches()
        >>> searched.remember({"units": 8}, seed=5, probe_batch=16)
        >>> searched.batch_for({"units": 8}), searched.batch_for({"units": 9}), searched.batch_for_seed(5)
        (16, None, 16)
    """

    def __init__(self):
        self._by_values = {}
        self._by_seed = {}
        self._loaded = set()

    def remember(self, values, seed, probe_batch):
        """Note that the trial with ``values`` and ``seed`` probed its arm at ``probe_batch`` (None: ignored)."""
        if probe_batch is None:
            return
        self._by_values[values_key(values)] = int(probe_batch)
        if seed is not None:
            self._by_seed.setdefault(seed, int(probe_batch))

    def batch_for(self, values):
        """The probe batch of the searched trial with exactly ``values``; None when no such trial is known."""
        return self._by_values.get(values_key(values))

    def batch_for_seed(self, seed):
        """The probe batch of the first known trial with ``seed`` (the trials a Hyperband chain shares it with)."""
        return self._by_seed.get(seed)

    def load(self, directory, arm):
        """Remember every trial recorded under ``directory`` (once per directory); returns how many.

        A continued trial's record inherits the probe batch of the trial it
        continues (``reloaded_from``).
        """
        if not directory or directory in self._loaded or not os.path.isdir(directory):
            return 0
        self._loaded.add(directory)
        found = {record.get("trial_id"): record for record in records.read_records(directory)}
        count = 0
        for record in found.values():
            batch = _recorded_batch(record, arm, found)
            if batch is not None:
                self.remember(record.get("hyperparameters"), record.get("seed"), batch)
                count += 1
        return count


def _recorded_batch(record, arm, found):
    """The ``probe_batch`` ``arm`` recorded in ``record``, following ``reloaded_from`` to the trial that probed."""
    seen = set()
    while record is not None and record.get("trial_id") not in seen:
        seen.add(record.get("trial_id"))
        for execution in reversed(record.get("executions") or []):
            batch = (execution.get("arms", {}).get(arm) or {}).get("probe_batch")
            if batch is not None:
                return batch
        record = found.get(record.get("reloaded_from"))
    return None
