"""``python -m websync URL``: the command-line client (see :mod:`websync.cli`)."""

import sys

from .cli import main

sys.exit(main())
