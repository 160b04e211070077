"""``python -m autoinit_nas.sweeps``: the ``sweep`` command without the ``autoinit-nas`` entry point."""

import sys

from autoinit_nas.sweeps.command import main

sys.exit(main())
