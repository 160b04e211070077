"""``python -m autoinit_nas.study``: the ``study`` command without the ``autoinit-nas`` entry point."""

import sys

from autoinit_nas.study.command import main

sys.exit(main())
