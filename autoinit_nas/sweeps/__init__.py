"""Sweeps: a search space on an offline dataset, through an engine, AutoInit vs Keras's default init.

``spec`` (what to sweep; engines come from ``autoinit_nas.engines.ENGINES``), ``runner``
(``run_sweep``), ``state`` (``out/sweep.json``, resuming), ``progress`` (one
line per trial) and ``command`` (``autoinit-nas sweep``). Layout of a sweep
directory and resuming: docs/engines.md.

Example:
    >>> from autoinit_nas.sweeps import SweepSpec
    >>> SweepSpec(objective="val_loss").direction
    'min'
"""

from autoinit_nas.engines import ENGINES, Engine, SweepError, register_engine  # noqa: F401
from autoinit_nas.engines import names as engines  # noqa: F401
from autoinit_nas.sweeps.progress import MAX_CONSECUTIVE_ERRORS, SweepContext, TrialReport, format_report  # noqa: F401
from autoinit_nas.sweeps.runner import Sweep, run_sweep  # noqa: F401
from autoinit_nas.sweeps.spec import IDENTITY, INIT_MODES, SweepSpec  # noqa: F401
from autoinit_nas.sweeps.state import SPEC_FILE, read_spec  # noqa: F401
