"""One :class:`Dialect` per database coursemart reads and writes (see ``base``): what differs
between them, owned in one place, chosen once by the parsed ``Warehouse``."""

from __future__ import annotations

from typing import Final

from coursemart.warehouse.dialects.base import Dialect
from coursemart.warehouse.dialects.mssql import SQLServer
from coursemart.warehouse.dialects.mysql import MySQL
from coursemart.warehouse.dialects.postgres import PostgreSQL
from coursemart.warehouse.dialects.sqlite import SQLite

DIALECTS: Final[dict[str, Dialect]] = {
    name: dialect
    for dialect in (SQLite(), PostgreSQL(), MySQL(), SQLServer())
    for name in dialect.names
}


def dialect_for(name: str) -> Dialect:
    """The dialect of the database SQLAlchemy calls ``name`` (a generic one for others)."""
    return DIALECTS.get(name) or Dialect()


__all__ = ["DIALECTS", "Dialect", "MySQL", "PostgreSQL", "SQLServer", "SQLite", "dialect_for"]
