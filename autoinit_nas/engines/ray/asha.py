"""``ResumableASHAScheduler``: Tune's ASHA, with its rungs rebuilt when an experiment is restored.

Tune saves trials, searcher and callbacks with the experiment state, but not
the scheduler: ``Tuner.restore`` unpickles the scheduler as the ``Tuner`` was
built (``tuner.pkl``: empty rungs) and adds every trial to it again. Plain
ASHA then judges the trials still to come against the rung scores of the
trials that ran after the restore only, and a resumed trial records its later
(better) epochs in the rungs it had already passed, so an interrupted sweep
prunes differently from an uninterrupted one. This subclass replays each
restored trial's reported results (Tune's ``result.json`` in the trial's
folder) into its bracket as it is added, which gives back the rung scores the
interrupted run had recorded.
"""

import json
import logging

from ray.air.constants import EXPR_RESULT_FILE
from ray.tune.schedulers import ASHAScheduler

logger = logging.getLogger(__name__)


class ResumableASHAScheduler(ASHAScheduler):
    """``ASHAScheduler`` that rebuilds its rungs from the results of the trials a restore adds back.

    A trial added with results (``trial.run_metadata.last_result``: only a
    restored one has them) has each result it reported replayed into its
    bracket, in order, recording only: ASHA records a trial's score at a rung
    the first time it reports at or past it, whatever it decides, so the
    rungs come back exactly as the interrupted run left them. A trial that
    resumes (from a checkpoint or from scratch) does not record again at the
    rungs it had passed, and the trials still to come meet the same cutoffs
    as in an uninterrupted run. Needs Tune's default JSON logger (it writes
    ``result.json``; off with ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``).

    Example:
        >>> scheduler = ResumableASHAScheduler(time_attr="epochs_completed", max_t=4, grace_period=1,
        ...                                    reduction_factor=2)
        >>> print(scheduler.debug_string())  # the rungs' cutoffs: none recorded yet
        Using AsyncHyperBand: num_stopped=0
        Bracket: Iter 4.000: None | Iter 2.000: None | Iter 1.000: None
    """

    def on_trial_add(self, tune_controller, trial):
        super().on_trial_add(tune_controller, trial)
        if not trial.run_metadata.last_result:
            return  # a new trial: nothing to replay
        bracket = self._trial_info[trial.trial_id]
        replayed = 0
        for result in reported_results(trial):
            if self._time_attr in result and result.get(self._metric) is not None:
                bracket.on_result(trial, result[self._time_attr], self._metric_op * result[self._metric])
                replayed += 1
        logger.debug("Replayed %d results of restored trial %s into ASHA's rungs", replayed, trial.trial_id)


def reported_results(trial):
    """The results ``trial`` reported, in order, from Tune's ``result.json`` in its folder; [] if none.

    Read from the experiment's storage (where a restore finds it), else from
    the driver's staging copy. A line cut short (a driver killed while
    writing it) is skipped.

    Example:
        >>> class NoFolder:
        ...     path = local_path = "/nonexistent"
        ...     storage = None
        >>> reported_results(NoFolder())
        []
    """
    text = _read_storage(trial)
    if text is None:
        text = _read_local(getattr(trial, "local_path", None))
    results = []
    for line in (text or "").splitlines():
        try:
            result = json.loads(line)
        except ValueError:
            continue
        if isinstance(result, dict):
            results.append(result)
    return results


def _read_storage(trial):
    storage = getattr(trial, "storage", None)
    if storage is None or not getattr(trial, "path", None):
        return None
    try:
        with storage.storage_filesystem.open_input_stream(f"{trial.path}/{EXPR_RESULT_FILE}") as stream:
            return stream.read().decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return None


def _read_local(folder):
    if not folder:
        return None
    try:
        with open(f"{folder}/{EXPR_RESULT_FILE}", encoding="utf-8", errors="replace") as stream:
            return stream.read()
    except OSError:
        return None
