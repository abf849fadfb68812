"""Per-database fast paths for the loader, one file each; every one works inside the load
frame's transaction. The Spark engine's staging merge is an opt-in capability
(:class:`~coursemart.load.backends.staging.MergesStages`)."""

from __future__ import annotations

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
from coursemart.load.backends.mssql import MSSQLBackend
from coursemart.load.backends.mysql import MySQLBackend
from coursemart.load.backends.postgres import PostgresBackend, copy_rows
from coursemart.load.backends.sqlite import SQLiteBackend
from coursemart.load.backends.staging import MergesStages, stage_merger

BACKENDS: Final[tuple[type[Backend], ...]] = (
    SQLiteBackend,
    PostgresBackend,
    MySQLBackend,
    MSSQLBackend,
)


def backend_for(connection: Connection, display_url: str) -> Backend:
    """The fast path for the connection's database."""
    name = connection.dialect.name
    for backend in BACKENDS:
        if name in backend.dialects:
            return backend(connection, display_url)
    raise CoursemartError(
        f"no loader for {name!r} warehouses: use SQLite, PostgreSQL, MariaDB/MySQL or SQL Server"
    )


__all__ = [
    "BACKENDS",
    "COURSE_COLUMNS",
    "STORED_COLUMNS",
    "Backend",
    "LockBusyError",
    "MSSQLBackend",
    "MergesStages",
    "MySQLBackend",
    "PostgresBackend",
    "SQLiteBackend",
    "backend_for",
    "copy_rows",
    "stage_merger",
    "with_lineage",
]
