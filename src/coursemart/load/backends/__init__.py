"""Per-database fast paths for the loader, one file each; every one works inside the load
frame's transaction. The Spark engine's staging merge is an opt-in capability
(:class:`~coursemart.load.backends.staging.MergesStages`)."""

from __future__ import annotations

import importlib
from typing import Final

from sqlalchemy.engine import Connection

from coursemart.errors import CoursemartError
from coursemart.load.backends.base import (
    COURSE_COLUMNS,
    STORED_COLUMNS,
    Backend,
    LockBusyError,
    with_lineage,
)
from coursemart.load.backends.staging import MergesStages, stage_merger

#: Each dialect's backend (module, class), imported only for the database in use.
BACKENDS: Final = {
    "sqlite": ("sqlite", "SQLiteBackend"),
    "postgresql": ("postgres", "PostgresBackend"),
    "mysql": ("mysql", "MySQLBackend"),
    "mariadb": ("mysql", "MySQLBackend"),
    "mssql": ("mssql", "MSSQLBackend"),
}


def backend_for(connection: Connection, display_url: str) -> Backend:
    """The fast path for the connection's database."""
    name = connection.dialect.name
    if name not in BACKENDS:
        raise CoursemartError(
            f"no loader for {name!r} warehouses: use SQLite, PostgreSQL, MariaDB/MySQL or "
            "SQL Server"
        )
    module, kind = BACKENDS[name]
    backend: type[Backend] = getattr(importlib.import_module(f"{__name__}.{module}"), kind)
    return backend(connection, display_url)


__all__ = [
    "BACKENDS",
    "COURSE_COLUMNS",
    "STORED_COLUMNS",
    "Backend",
    "LockBusyError",
    "MergesStages",
    "backend_for",
    "stage_merger",
    "with_lineage",
]
