"""``python -m coursemart``."""

import sys

from coursemart.cli import main

sys.exit(main())
