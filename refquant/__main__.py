"""``python -m refquant`` is the ``refquant`` command."""

import sys

from .cli import main

sys.exit(main())
