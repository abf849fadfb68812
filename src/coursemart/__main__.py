"""``python -m coursemart``."""

from coursemart.cli.main import entry

entry()
