"""Running Tune from a driver: Ray started (or reused), Tune's console quiet, each trial's end reported.

The sweep and the init study both run their Tune experiments inside
``tune_session``; ``progress_callback()`` forwards every trial that ends to
the listener of the session running in this driver.
"""

import contextlib
import logging
import os

from autoinit_nas.trials.records import last_line

_LISTENER = None  # called as listener(trial, error) for every trial that ends in this driver


@contextlib.contextmanager
def tune_session(address=None, listener=None):
    """Run Tune experiments inside: Ray started if needed, quiet, trial ends sent to ``listener``.

    A Ray already initialized in this process is used as it is; one this
    session starts (``address`` or ``RAY_ADDRESS``, else a local Ray) is shut
    down at the end. ``listener(trial, error)`` gets each finished trial of a
    Tuner run with ``progress_callback()``; ``error`` is None or the last line
    of its error.

    Example:
        >>> with tune_session(listener=print):  # doctest: +SKIP
        ...     tune.Tuner(train, run_config=tune.RunConfig(callbacks=[progress_callback()])).fit()
    """
    global _LISTENER
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        started = True
    previous = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # Ray's legacy reporter honours verbose=0; the new one prints a header
    logger = logging.getLogger("ray.tune")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "Failed to fetch metrics" for restored trials that had not started
    _LISTENER = listener
    try:
        yield
    finally:
        _LISTENER = None
        logger.setLevel(level)
        if previous is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = previous
        if started:
            ray.shutdown()


def progress_callback():
    """A ``tune.Callback`` sending each completed or failed trial to the running session's listener.

    It holds nothing (Tune pickles its callbacks, and restores them with an
    experiment), so one class serves every session.
    """
    global _ProgressClass
    if _ProgressClass is None:
        _ProgressClass = _progress_class()
        _ProgressClass.__module__ = __name__
        _ProgressClass.__qualname__ = "_ProgressClass"
    return _ProgressClass()


def _progress_class():
    from ray import tune

    class TrialEnds(tune.Callback):
        """Closes the records of trials Tune stopped; forwards each trial that ends to the session's listener."""

        def on_trial_complete(self, iteration, trials, trial, **info):
            directory = getattr(trial, "path", None)
            if directory and os.path.isdir(directory):
                from autoinit_nas.engines.ray.trial import finish_stopped

                finish_stopped(directory)  # a trial the scheduler stopped never closed its record
            if _LISTENER is not None:
                _LISTENER(trial, None)

        def on_trial_error(self, iteration, trials, trial, **info):
            if _LISTENER is not None:
                error = getattr(trial, "error_message", None) or getattr(trial, "error_msg", None)
                _LISTENER(trial, last_line(error) or "trial raised an error")

    return TrialEnds


_ProgressClass = None  # the callback class, made on first use (Ray is imported lazily)
