"""Ray Tune schedulers for the sweep, all timed in completed epochs.

Every scheduler's ``time_attr`` is ``EPOCHS``, the completed-epochs counter
``RayReportCallback`` reports: it counts from a restored checkpoint's epoch,
so a trial that Tune pauses, retries or resumes keeps its place in the rungs,
where Tune's own ``training_iteration`` would restart at 1. ASHA's rungs
survive an interrupted sweep's restore (``asha.ResumableASHAScheduler``).
"""

from autoinit_nas.engines.ray.options import SCHEDULERS

EPOCHS = "epochs_completed"
# PBT perturbs training hyperparameters only: an exploited trial loads the source's weights,
# so it must keep the source's architecture (PBT copies every other config key from the source).
PBT_MUTABLE = ("learning_rate",)


def make_scheduler(options, epochs, param_space=None):
    """The Tune scheduler ``options["scheduler"]`` names (None for "fifo"), ``max_t`` = ``epochs``.

    Metric and mode come from ``tune.TuneConfig``. ASHA is
    ``asha.ResumableASHAScheduler``, which rebuilds its rungs when
    ``Tuner.restore`` resumes the experiment. PBT mutates ``PBT_MUTABLE``
    keys of ``param_space`` (resampling from their domains).

    Example:
        >>> type(make_scheduler({"scheduler": "asha", "grace_period": 1, "reduction_factor": 2}, 4)).__name__
        'ResumableASHAScheduler'

    Raises:
        ValueError: ``grace_period`` above ``epochs``, or PBT without a
            sampled learning rate in ``param_space``.
    """
    from ray.tune import schedulers

    from autoinit_nas.engines.ray.asha import ResumableASHAScheduler

    name = options.get("scheduler", "fifo")
    if name not in SCHEDULERS:
        raise ValueError(f"`scheduler` must be one of {SCHEDULERS}. Received: scheduler={name!r}")
    if name == "fifo":
        return None
    factor = options.get("reduction_factor", 3)
    if name == "asha":
        grace = options.get("grace_period", 1)
        if grace > epochs:
            raise ValueError(
                f"`grace_period` must be at most the epochs a trial trains ({epochs}). Received: grace_period={grace}"
            )
        return ResumableASHAScheduler(time_attr=EPOCHS, max_t=epochs, grace_period=grace,
                                      reduction_factor=factor)
    if name == "hyperband":
        return schedulers.HyperBandScheduler(time_attr=EPOCHS, max_t=epochs, reduction_factor=factor)
    return schedulers.PopulationBasedTraining(
        time_attr=EPOCHS, perturbation_interval=options.get("perturbation_interval", 1),
        hyperparam_mutations=pbt_mutations(param_space or {}),
    )


def pbt_mutations(param_space):
    """``{name: domain}`` for the ``PBT_MUTABLE`` keys ``param_space`` samples.

    Example:
        >>> from ray import tune
        >>> sorted(pbt_mutations({"learning_rate": tune.loguniform(1e-4, 1e-1), "depth": tune.randint(1, 3)}))
        ['learning_rate']
    """
    from ray.tune.search.sample import Domain

    mutations = {name: param_space[name] for name in PBT_MUTABLE if isinstance(param_space.get(name), Domain)}
    if not mutations:
        found = {name: param_space.get(name) for name in PBT_MUTABLE}
        raise ValueError(
            f"PBT perturbs training hyperparameters only, and needs one of {PBT_MUTABLE} sampled in the search "
            f"space. Received: {found}"
        )
    return mutations
