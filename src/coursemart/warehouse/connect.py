"""The warehouse as a value: its URL parsed once, the driver chosen once, engines made from it."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from coursemart.errors import InputError
from coursemart.masking import mask_url

#: Drivers coursemart installs, used when a URL names only the database.
DEFAULT_DRIVERS: Final = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "mssql": "mssql+pyodbc",
}


#: The extra that installs each database's driver.
DRIVER_EXTRAS: Final = {
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mssql": "mssql",
}
EXAMPLES: Final = "e.g. sqlite:///data/warehouse.db, postgresql://user@host/db"
#: Page cache of a SQLite writer, in KiB. SQLite's sorter, which puts a batch's staged rows in id
#: order for the merge, may hold as much again: a load's memory grows by about twice this. With
#: 256 MiB a load of 10^6 courses peaked at 655-671 MiB; with 56 MiB at 398-409 MiB for the same
#: CPU time; with 48 MiB at 377-380 MiB but 9% more CPU time (README, "Loading").
SQLITE_WRITER_CACHE_KIB: Final = 56 * 1024
#: What makes a warehouse that was never loaded.
FIRST_LOAD: Final = "run `coursemart load` (or `make run`) to create it"
#: How drivers say that a table does not exist: psycopg's SQLSTATE, MariaDB/MySQL's error
#: number (ER_NO_SUCH_TABLE), SQL Server's SQLSTATE through ODBC.
NO_SUCH_TABLE: Final = frozenset({"42P01", 1146, "42S02"})
#: How often (milliseconds) a PostgreSQL backend checks, while a statement runs, that its client
#: is still connected (PostgreSQL 14+). When a reader or a loader is stopped or killed in the
#: middle of a statement, the server ends that statement within this time instead of running it
#: to its end for nobody, and a killed loader's load lock is released with it.
CLIENT_CHECK_MS: Final = 1000


def check_client_connection(execute: Callable[[str, tuple[str]], object]) -> None:
    """Through ``execute`` (a PostgreSQL cursor's, or a connection's ``exec_driver_sql``): end
    this session's statements once its client is gone (see :data:`CLIENT_CHECK_MS`; older
    servers have no such setting and are left as they are)."""
    execute(
        "SELECT set_config('client_connection_check_interval', %s, false) "
        "WHERE current_setting('server_version_num')::int >= 140000",
        (f"{CLIENT_CHECK_MS}ms",),
    )


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
    if backend not in ("sqlite", *DRIVER_EXTRAS):
        raise InputError(
            f"warehouse URL {shown!r}: coursemart loads SQLite, PostgreSQL, MariaDB/MySQL and "
            f"SQL Server, not {backend!r} ({EXAMPLES})"
        )
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
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
        extra = DRIVER_EXTRAS.get(url.get_backend_name())
        hint = f"pip install 'coursemart[{extra}]'" if extra else "install its Python driver"
        raise InputError(
            f"warehouse URL {shown!r}: its driver is not installed ({exc}): {hint}"
        ) from exc
    charset = url.query.get("charset")
    if url.get_driver_name() == "pymysql" and isinstance(charset, str):
        from pymysql.charset import charset_by_name

        if charset_by_name(charset) is None:
            raise InputError(
                f"warehouse URL {shown!r}: MariaDB and MySQL know no character set {charset!r}: "
                "name one they know, such as utf8mb4, or leave charset out"
            )


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
        if self.backend != "sqlite" or database in ("", ":memory:"):
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
        """An engine for this warehouse.

        SQLite gets WAL (readers never block the loader), foreign keys on, and explicit
        ``BEGIN IMMEDIATE`` transactions so that a writer holds the write lock from its first
        statement. With ``read_only``, SQLite opens with ``mode=ro``.
        """
        check_driver(self.url, self.display)
        if self.backend == "sqlite":
            return _sqlite_engine(
                self.url, read_only=read_only, lock_timeout=lock_timeout, **kwargs
            )
        if self.backend in ("mysql", "mariadb"):
            connect_args = kwargs.pop("connect_args", {})
            connect_args.setdefault("init_command", "SET time_zone = '+00:00'")
            if bulk_loads(self.url, read_only):
                connect_args.setdefault("local_infile", True)
            kwargs["connect_args"] = connect_args
        return sa.create_engine(self.url, pool_pre_ping=True, **kwargs)


def missing_table(error: BaseException) -> bool:
    """Whether a driver's ``error`` says that a table does not exist."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    first = error.args[0] if error.args else None
    if code in NO_SUCH_TABLE or (isinstance(first, int | str) and first in NO_SUCH_TABLE):
        return True
    return isinstance(error, sqlite3.OperationalError) and str(error).startswith("no such table")


def bulk_loads(url: URL, read_only: bool) -> bool:
    """Whether a MariaDB/MySQL engine offers ``LOAD DATA LOCAL INFILE`` (the loader's bulk path).

    Only writers using PyMySQL, and not when the URL itself says ``local_infile=0``; readers
    never, since a server may ask a client with it for any file the client can read.
    """
    return not read_only and url.get_driver_name() == "pymysql" and "local_infile" not in url.query


def create_engine(
    url: str | Warehouse, *, read_only: bool = False, lock_timeout: float = 30.0, **kwargs: Any
) -> Engine:
    """An engine for the warehouse at ``url`` (see :meth:`Warehouse.engine`)."""
    return Warehouse.from_url(url).engine(read_only=read_only, lock_timeout=lock_timeout, **kwargs)


def dialect_name(url: str | Warehouse) -> str:
    """``sqlite``, ``postgresql``, ``mysql``/``mariadb`` or ``mssql``."""
    return Warehouse.from_url(url).backend


def use_wal(cursor: Any, wait: float) -> None:
    """Put a SQLite database in WAL mode (once: it stays so). Two processes creating the same
    new file at once may find it locked, and SQLite does not wait there: retry for ``wait``."""
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_engine(url: URL, *, read_only: bool, lock_timeout: float, **kwargs: Any) -> Engine:
    database = url.database or ""
    if database and database != ":memory:":
        folder = os.path.dirname(os.path.abspath(database))
        if not read_only:
            os.makedirs(folder, exist_ok=True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", lock_timeout)
    connect_args.setdefault("check_same_thread", False)
    if read_only and database and database != ":memory:":
        url = url.set(database=f"file:{os.path.abspath(database)}?mode=ro", query={"uri": "true"})
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # coursemart issues BEGIN itself
        cursor = dbapi_connection.cursor()
        if not read_only:
            use_wal(cursor, lock_timeout)
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_WRITER_CACHE_KIB}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
