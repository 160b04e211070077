"""``python -m experiments.study``: the ``study`` command without the ``autoinit-nas`` entry point."""

import sys

from experiments.study.command import main

sys.exit(main())
