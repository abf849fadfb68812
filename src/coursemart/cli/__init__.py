"""The ``coursemart`` command: thin Typer commands that hand off to the library.

Each command module registers on :data:`coursemart.cli.app.app`; :func:`main` runs it.
"""

from coursemart.cli import lake, pipeline, reports, serve, spark
from coursemart.cli.app import app
from coursemart.cli.main import main

__all__ = ["app", "lake", "main", "pipeline", "reports", "serve", "spark"]
