"""The init study: does AutoInit make NAS evaluate and choose better than other initializations?

Trains sampled candidates of one or more search spaces on offline datasets
under several init arms (``autoinit_nas.init_methods``) on Ray Tune, then
reports ranking fidelity against independent reference runs, replayed
searches and paired test accuracy, per cell and pooled. Rooms: ``spec``
(config and flags), ``candidates`` (sampling), ``trainable`` (one trial),
``runner`` (Ray, resume, progress), ``table`` (records to tables),
``fidelity``, ``replay``, ``proxies`` and ``pooled`` (the statistics),
``report`` and ``plots``, ``summary`` (the README's tables), ``command``
(``autoinit-nas study``).

Example:
    >>> from autoinit_nas.study import load_spec
    >>> load_spec("study-quick", candidates=2).candidates
    2
"""

from autoinit_nas.study.spec import StudySpec, load_spec  # noqa: F401
