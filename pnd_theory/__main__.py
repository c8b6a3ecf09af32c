"""``python -m pnd_theory`` is the ``pnd-theory`` command."""

import sys

from .cli import main

sys.exit(main())
