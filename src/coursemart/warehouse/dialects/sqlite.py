"""SQLite: a file, WAL so that readers never block the loader, an FTS5 table for search."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from coursemart.warehouse.dialects.base import Dialect

#: Page cache of a SQLite writer, in KiB. SQLite's sorter, which puts a batch's staged rows in id
#: order for the merge, may hold as much again: a load's memory grows by about twice this. With
#: 256 MiB a load of 10^6 courses peaked at 655-671 MiB; with 56 MiB at 398-409 MiB for the same
#: CPU time; with 48 MiB at 377-380 MiB but 9% more CPU time (README, "Loading").
SQLITE_WRITER_CACHE_KIB: Final = 56 * 1024
#: How much of a SQLite warehouse each reading connection maps into memory (address space, not
#: RAM: the pages are the operating system's file cache, shared by every connection and process).
SQLITE_MMAP_BYTES: Final = 1 << 30
#: The FTS5 table over the folded names, with the courses as its content, kept by triggers. The
#: content table's name is double-quoted, as Datasette looks for it (``?_search=`` on
#: ``courses`` then uses this index; single quotes it does not recognise).
FTS_TABLE: Final = "courses_search"
FTS_DDL: Final = (
    f'CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(search_name, content="courses", '
    "content_rowid='course_id', tokenize='unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER {FTS_TABLE}_insert AFTER INSERT ON courses BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, search_name) VALUES (new.course_id, new.search_name); END",
    f"CREATE TRIGGER {FTS_TABLE}_delete AFTER DELETE ON courses BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_name) "
    "VALUES ('delete', old.course_id, old.search_name); END",
    f"CREATE TRIGGER {FTS_TABLE}_update AFTER UPDATE OF search_name ON courses BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_name) "
    "VALUES ('delete', old.course_id, old.search_name); "
    f"INSERT INTO {FTS_TABLE}(rowid, search_name) VALUES (new.course_id, new.search_name); END",
)


class SQLite(Dialect):
    names = ("sqlite",)
    file_database = True
    row_value_keysets = True
    inline_reads = True
    text_index = FTS_TABLE

    def engine(self, url: URL, *, read_only: bool, lock_timeout: float, **kwargs: Any) -> Engine:
        """WAL (readers never block the loader), foreign keys on, and explicit ``BEGIN
        IMMEDIATE`` transactions so that a writer holds the write lock from its first
        statement; with ``read_only``, the file opened with ``mode=ro``."""
        database = url.database or ""
        if database and database != ":memory:":
            folder = os.path.dirname(os.path.abspath(database))
            if not read_only:
                os.makedirs(folder, exist_ok=True)
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", lock_timeout)
        connect_args.setdefault("check_same_thread", False)
        if read_only and database and database != ":memory:":
            url = url.set(
                database=f"file:{os.path.abspath(database)}?mode=ro", query={"uri": "true"}
            )
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

    def reader_options(self) -> dict[str, Any]:
        return {}

    def reader(self, engine: Engine) -> Engine:
        sa.event.listen(engine, "connect", _reader_session)
        return engine

    def has_text_index(self, connection: Connection) -> bool:
        found = connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE name = ?", (FTS_TABLE,)
        ).first()
        return found is not None

    def create_text_index(self, connection: Connection, *, rebuild: bool) -> None:
        for statement in FTS_DDL:
            connection.exec_driver_sql(statement)
        if rebuild:  # index the rows already there
            connection.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")

    def search_text(self, words: tuple[str, ...]) -> str:
        return " AND ".join(f'"{word}"*' for word in words)

    def matching(self, words: int) -> Any:
        return (
            sa.select(sa.column("rowid"))
            .select_from(sa.table(FTS_TABLE))
            .where(sa.text(f"{FTS_TABLE} MATCH :search"))
        )


def _reader_session(dbapi_connection: Any, _: object) -> None:
    """A new reading connection reads the file through a memory map: a quarter less time per
    listing than copying each page out of the file."""
    dbapi_connection.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}").fetchall()


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
