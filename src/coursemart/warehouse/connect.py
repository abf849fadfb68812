"""The warehouse as a value: its URL parsed once, the driver chosen once, engines made from it."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from coursemart.errors import InputError
from coursemart.masking import mask_url
from coursemart.warehouse.dialects import DIALECTS, Dialect, dialect_for

#: Drivers coursemart installs, used when a URL names only the database.
DEFAULT_DRIVERS: Final = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "mssql": "mssql+pyodbc",
}

EXAMPLES: Final = "e.g. sqlite:///data/warehouse.db, postgresql://user@host/db"
#: What makes a warehouse that was never loaded.
FIRST_LOAD: Final = "run `coursemart load` (or `make run`) to create it"
#: How drivers say that a table does not exist: psycopg's SQLSTATE, MariaDB/MySQL's error
#: number (ER_NO_SUCH_TABLE), SQL Server's SQLSTATE through ODBC.
NO_SUCH_TABLE: Final = frozenset({"42P01", 1146, "42S02"})


def normalize_url(url: str) -> URL:
    """Parse a warehouse URL, choosing coursemart's driver when none is named; an
    :class:`InputError` (exit 2) says what is wrong with one that cannot serve."""
    shown = mask_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise InputError(f"warehouse URL {shown!r} is not a SQLAlchemy URL ({EXAMPLES})") from exc
    if "+" not in parsed.drivername and parsed.drivername in DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=DEFAULT_DRIVERS[parsed.drivername])
    if "@" in (parsed.host or ""):  # the URL's parser ends the password at its first "@"
        raise InputError(
            f"warehouse URL {shown!r}: its password (or user name) holds a raw '@': write it "
            "as %40 (and a '/' as %2F, a ':' as %3A)"
        )
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise InputError(f"warehouse URL {shown!r}: port {parsed.port} is not between 1 and 65535")
    backend = parsed.get_backend_name()
    if backend not in DIALECTS:
        raise InputError(
            f"warehouse URL {shown!r}: coursemart loads SQLite, PostgreSQL, MariaDB/MySQL and "
            f"SQL Server, not {backend!r} ({EXAMPLES})"
        )
    if dialect_for(backend).file_database and parsed.database in (None, "", ":memory:"):
        raise InputError(
            f"warehouse URL {shown!r} names no file: a warehouse in memory is lost when the "
            "command ends (e.g. sqlite:///data/warehouse.db)"
        )
    return parsed


def check_driver(url: URL, shown: str) -> None:
    """Make sure the URL's driver can be imported; an :class:`InputError` says what to install."""
    try:
        url.get_dialect().import_dbapi()
    except (ImportError, NoSuchModuleError) as exc:
        extra = dialect_for(url.get_backend_name()).driver_extra
        hint = f"pip install 'coursemart[{extra}]'" if extra else "install its Python driver"
        raise InputError(
            f"warehouse URL {shown!r}: its driver is not installed ({exc}): {hint}"
        ) from exc
    dialect_for(url.get_backend_name()).check_url(url, shown)


@dataclass(frozen=True)
class Warehouse:
    """A warehouse named by a SQLAlchemy URL, parsed once; :attr:`display` is safe to print."""

    url: URL
    given: str = field(repr=False)

    @classmethod
    def from_url(cls, url: str | Warehouse) -> Warehouse:
        """The warehouse at ``url`` (an :class:`InputError` names a malformed URL)."""
        return url if isinstance(url, Warehouse) else cls(normalize_url(url), url)

    @property
    def backend(self) -> str:
        """``sqlite``, ``postgresql``, ``mysql``/``mariadb`` or ``mssql``."""
        return self.url.get_backend_name()

    @property
    def dialect(self) -> Dialect:
        """What differs on this warehouse's database (see :mod:`coursemart.warehouse.dialects`)."""
        return dialect_for(self.backend)

    @property
    def identity(self) -> str:
        """Which warehouse this is, without its password: its URL's database, host, port and
        options, a SQLite file by its absolute path. Rows a load refuses carry it, so that a
        lake shared by several warehouses keeps each one's refused rows apart."""
        given = self.url
        database = given.database
        if self.sqlite_file is not None:
            database = os.path.realpath(self.sqlite_file)
        url = URL.create(
            given.drivername, given.username, None, given.host, given.port, database, given.query
        )
        return mask_url(url.render_as_string(hide_password=False))  # no secret parameter

    @property
    def display(self) -> str:
        """The URL as given, its password and secret parameters masked."""
        return mask_url(self.given)

    @property
    def sqlite_file(self) -> Path | None:
        """The database file of a SQLite warehouse (None for others and in-memory ones)."""
        database = self.url.database or ""
        if not self.dialect.file_database or database in ("", ":memory:"):
            return None
        return Path(database)

    @property
    def missing_folder(self) -> Path | None:
        """The folder of a SQLite warehouse's file when it does not exist yet: a load (the only
        command that writes a warehouse) creates it; None for other warehouses."""
        if self.sqlite_file is None:
            return None
        folder = self.sqlite_file.absolute().parent
        return None if folder.exists() else folder

    def never_loaded(self, exc: BaseException) -> str | None:
        """When ``exc``, raised by a read, means that this warehouse was never loaded (a SQLite
        file that does not exist, or no coursemart table), what to tell the reader; else None."""
        if self.sqlite_file is not None and not self.sqlite_file.exists():
            return f"the warehouse does not exist yet: {FIRST_LOAD}"
        if missing_table(getattr(exc, "orig", None) or exc):
            return f"the warehouse has no coursemart tables yet: {FIRST_LOAD}"
        return None

    def engine(
        self, *, read_only: bool = False, lock_timeout: float = 30.0, **kwargs: Any
    ) -> Engine:
        """An engine for this warehouse, as its dialect makes one (with ``read_only``, a
        reader's: SQLite opens the file with ``mode=ro``)."""
        check_driver(self.url, self.display)
        return self.dialect.engine(
            self.url, read_only=read_only, lock_timeout=lock_timeout, **kwargs
        )


def missing_table(error: BaseException) -> bool:
    """Whether a driver's ``error`` says that a table does not exist."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    first = error.args[0] if error.args else None
    if code in NO_SUCH_TABLE or (isinstance(first, int | str) and first in NO_SUCH_TABLE):
        return True
    return isinstance(error, sqlite3.OperationalError) and str(error).startswith("no such table")


def create_engine(
    url: str | Warehouse, *, read_only: bool = False, lock_timeout: float = 30.0, **kwargs: Any
) -> Engine:
    """An engine for the warehouse at ``url`` (see :meth:`Warehouse.engine`)."""
    return Warehouse.from_url(url).engine(read_only=read_only, lock_timeout=lock_timeout, **kwargs)
