"""``python -m pnd_theory`` is the ``pnd-theory`` command."""

import sys

from .apps.cli import main

sys.exit(main())
