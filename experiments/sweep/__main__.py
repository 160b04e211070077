"""``python -m experiments.sweep``: the ``sweep`` command without the ``autoinit-nas`` entry point."""

import sys

from experiments.sweep.command import main

sys.exit(main())
