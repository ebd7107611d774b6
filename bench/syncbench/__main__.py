"""``python -m bench.syncbench``: see :mod:`bench.syncbench.cli`."""

import sys

from bench.syncbench.cli import main

sys.exit(main())
