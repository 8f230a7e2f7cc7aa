"""``python -m refarith``: the command line (see :mod:`refarith.cli`)."""

import sys

from refarith.cli import main

sys.exit(main())
