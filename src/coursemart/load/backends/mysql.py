"""MariaDB/MySQL: ``GET_LOCK`` is the load lock; rows take the server's bulk path,
``LOAD DATA LOCAL INFILE``: each batch's new ids in one statement straight into ``courses``, the
others into a temporary staging table merged by one ``INSERT … SELECT … ON DUPLICATE KEY UPDATE``.

Where the server or the client refuses ``LOCAL INFILE``, rows go in as batched
``INSERT … ON DUPLICATE KEY UPDATE``, after a one-line notice on the ``coursemart.load`` logger.
"""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import suppress
from typing import IO, Any, Final

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection

from coursemart import warehouse
from coursemart.errors import CoursemartError
from coursemart.load.backends.base import (
    COLUMN_LIST,
    FOLLOW_LOCK_NAME,
    FORMATS,
    LOCK_NAME,
    ROWS_PER_STATEMENT,
    UPDATED_COLUMNS,
    Backend,
    busy,
    naive_utc,
    row_tuples,
)
from coursemart.load.backends.staging import MergesStages
from coursemart.warehouse.dialects.mysql import MySQL

logger = logging.getLogger("coursemart.load")

#: Batch ids compared by code point, not by the column's case-insensitive collation.
BATCH_ORDER: Final = MySQL.code_point_format
GREATER_BATCH: Final = (
    f"{BATCH_ORDER.format('VALUES(batch_id)')} > {BATCH_ORDER.format('courses.batch_id')}"
)
#: Each column takes the incoming value only from a greater batch; ``batch_id`` is updated last,
#: since MySQL evaluates the assignments left to right.
UPDATES: Final = ", ".join(
    f"{c} = IF({GREATER_BATCH}, VALUES({c}), courses.{c})" for c in UPDATED_COLUMNS
)
#: The temporary table that rows whose id may exist are loaded into before the merge.
STAGE: Final = "coursemart_stage"
#: The CSV that :class:`RowFile` writes: every string quoted, a quote inside doubled, no
#: backslash escapes, so any text (quotes, tabs, backslashes, line breaks) comes back as it was.
CSV_FORMAT: Final = (
    "CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
    "LINES TERMINATED BY '\\n'"
)


def mysql_merge_sql(stage: str, where: str = "") -> str:
    """Staged rows into ``courses`` with ``ON DUPLICATE KEY UPDATE``."""
    condition = f" WHERE {where}" if where else ""
    return (
        f"INSERT INTO courses ({COLUMN_LIST}) SELECT {COLUMN_LIST} FROM {stage}{condition} "
        f"ON DUPLICATE KEY UPDATE {UPDATES}"
    )


def load_data_sql(table: str) -> str:
    """``LOAD DATA LOCAL INFILE`` of a :class:`RowFile` (its path is the one parameter) into
    ``table``'s stored columns."""
    return f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} {CSV_FORMAT} ({COLUMN_LIST})"


def stage_ddl() -> str:
    """``CREATE TEMPORARY TABLE`` for the staging table: the stored columns and the primary key,
    no other index, no foreign key. Unlike other DDL, creating a TEMPORARY table does not commit
    the load's transaction."""
    stage = sa.Table(
        STAGE,
        sa.MetaData(),
        *(
            sa.Column(c.name, c.type, nullable=False, autoincrement=False)
            for c in warehouse.courses.columns
        ),
        sa.PrimaryKeyConstraint("course_id"),
        prefixes=["TEMPORARY"],
        mysql_charset="utf8mb4",
    )
    return str(sa.schema.CreateTable(stage).compile(dialect=mysql.dialect()))


def bulk_refusal(connection: Connection) -> str | None:
    """Why ``LOAD DATA LOCAL INFILE`` cannot be used on ``connection``; None when it can."""
    driver = connection.dialect.driver
    if driver != "pymysql":
        return f"the {driver} driver is not PyMySQL (use a mysql+pymysql:// URL)"
    from pymysql.constants import CLIENT  # the driver is PyMySQL, so it is installed

    raw = connection.connection.driver_connection
    if not getattr(raw, "client_flag", 0) & CLIENT.LOCAL_FILES:
        return "the client has local_infile off (local_infile=0 in the warehouse URL)"
    if not connection.exec_driver_sql("SELECT @@GLOBAL.local_infile").scalar():
        return "the server has local_infile off (SET GLOBAL local_infile = ON turns it on)"
    return None


class BulkLoadError(CoursemartError):
    """``LOAD DATA`` stored other rows than it was given, or changed some."""


#: Where this process's open files can be opened again by path (Linux).
OPEN_FILES: Final = "/proc/self/fd"


def spool() -> tuple[IO[bytes], str]:
    """A new temporary file and a path that opens it. On Linux the file has no name (it is
    reached through :data:`OPEN_FILES`), so nothing is left behind even when the loader is
    killed; elsewhere it is ``coursemart-load-*.csv`` in the temporary folder until
    :meth:`RowFile.discard`."""
    if os.path.isdir(OPEN_FILES):
        unnamed = tempfile.TemporaryFile()
        return unnamed, f"{OPEN_FILES}/{unnamed.fileno()}"
    named = tempfile.NamedTemporaryFile(prefix="coursemart-load-", suffix=".csv", delete=False)
    return named, named.name


class RowFile:
    """Stored course rows bound for one table, gathered as CSV in a temporary file so that one
    ``LOAD DATA`` takes a whole batch; timestamps as ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC).

    Each chunk is written in ``course_id`` order: the primary key then grows at few places
    instead of at random ones (a sixth less server time for an incremental load here).
    """

    def __init__(self) -> None:
        self.sink: IO[bytes] | None = None
        self.path = ""
        self.rows = 0

    def add(self, rows: pa.Table) -> None:
        if self.sink is None:
            self.sink, self.path = spool()
        rows = rows.set_column(4, "start_date", naive_utc(rows["start_date"])).sort_by("course_id")
        pacsv.write_csv(rows, self.sink, pacsv.WriteOptions(include_header=False))
        self.rows += rows.num_rows

    def ready(self) -> str:
        """The path that opens the file, every row added written to it."""
        assert self.sink is not None
        self.sink.flush()
        return self.path

    def discard(self) -> None:
        if self.sink is not None:
            self.sink.close()
            if not self.path.startswith(OPEN_FILES):
                with suppress(FileNotFoundError):
                    os.unlink(self.path)
        self.sink, self.path, self.rows = None, "", 0


class MySQLBackend(Backend, MergesStages):
    dialects = ("mysql", "mariadb")
    UPSERT: Final = (
        f"INSERT INTO courses ({COLUMN_LIST}) VALUES ({FORMATS}) ON DUPLICATE KEY UPDATE {UPDATES}"
    )

    def __init__(self, connection: Connection, display_url: str) -> None:
        super().__init__(connection, display_url)
        self.bulk: bool | None = None  # decided at the first write
        self.fresh, self.known = RowFile(), RowFile()
        self.staged = False

    @property
    def lock_name(self) -> str:
        database = self.connection.engine.url.database or ""
        return f"{LOCK_NAME}:{database}"[:64]

    def lock(self, wait: float) -> None:
        got = self.connection.execute(
            sa.select(sa.func.get_lock(self.lock_name, max(int(wait), 0)))
        ).scalar()
        self.connection.commit()
        if got != 1:
            raise busy(self.display_url, wait)

    def hold_follow_lock(self) -> bool:
        database = self.connection.engine.url.database or ""
        name = f"{FOLLOW_LOCK_NAME}:{database}"[:64]
        got = self.connection.execute(sa.select(sa.func.get_lock(name, 0))).scalar()
        self.connection.commit()
        return got == 1

    def unlock(self) -> None:
        self.fresh.discard()
        self.known.discard()
        self.connection.rollback()
        self.connection.execute(sa.select(sa.func.release_lock(self.lock_name)))
        self.connection.commit()

    def upsert_dimension(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        statement = mysql.insert(table)
        key = [c.name for c in table.primary_key.columns]
        statement = statement.on_duplicate_key_update(
            {c.name: statement.inserted[c.name] for c in table.columns if c.name not in key}
        )
        self.connection.execute(statement, rows)

    def merge_stage(self, stage: str, where: str, *, distinct: bool = False) -> None:
        # Identical rows staged twice: the second copy's batch id is not greater, it changes
        # nothing.
        self.connection.exec_driver_sql(mysql_merge_sql(stage, where))

    # rows ---------------------------------------------------------------------------------
    def bulk_path(self) -> bool:
        """Whether rows take ``LOAD DATA LOCAL INFILE``; says once why not when they cannot."""
        if self.bulk is None:
            refusal = bulk_refusal(self.connection)
            if refusal:
                logger.warning(
                    "coursemart: %s: %s; loading with batched INSERT … ON DUPLICATE KEY UPDATE "
                    "instead of LOAD DATA LOCAL INFILE (slower)",
                    self.display_url,
                    refusal,
                )
            self.bulk = refusal is None
        return self.bulk

    def write_courses(self, rows: pa.Table) -> None:
        if not self.bulk_path():
            self.upsert_rows(rows)
            return
        # Ids above the largest in the warehouse cannot conflict (duplicates inside a batch are
        # refused beforehand), so they are loaded straight in; the others go through staging.
        fresh, known = self.split_fresh(rows)
        if fresh.num_rows:
            self.fresh.add(fresh)
        if known.num_rows:
            self.known.add(known)

    def merge_courses(self) -> None:
        if self.fresh.rows:
            self.load_fresh()
        if self.known.rows:
            if not self.staged:
                self.connection.exec_driver_sql(f"DROP TEMPORARY TABLE IF EXISTS {STAGE}")
                self.connection.exec_driver_sql(stage_ddl())
                self.staged = True
            self.load_data(STAGE, self.known)
            self.connection.exec_driver_sql(mysql_merge_sql(STAGE))
            # DELETE, not TRUNCATE: TRUNCATE commits, even on a temporary table.
            self.connection.exec_driver_sql(f"DELETE FROM {STAGE}")
        super().merge_courses()

    def load_fresh(self) -> None:
        """The batch's new ids into ``courses``, in one ``LOAD DATA``, without the per-row
        foreign-key lookups; into an empty ``courses`` without unique checks either.

        The rows need neither check: their ids are new and distinct (repeats are refused
        beforehand), and their categories and levels were checked against the dimension
        tables, which stay share-locked until the commit so that no referenced row can go.
        With both checks off, MariaDB fills an empty table with its bulk insert: the indexes
        built by sorting, one undo record for the table (a rollback empties it again).
        """
        run = self.connection.exec_driver_sql
        run("SELECT COUNT(*) FROM categories LOCK IN SHARE MODE")
        run("SELECT COUNT(*) FROM levels LOCK IN SHARE MODE")
        unique = 1 if run("SELECT EXISTS (SELECT 1 FROM courses)").scalar() else 0
        checks = run("SELECT @@unique_checks, @@foreign_key_checks").one()
        run("SET unique_checks = %s, foreign_key_checks = 0", (unique,))
        try:
            self.load_data("courses", self.fresh)
        finally:
            run("SET unique_checks = %s, foreign_key_checks = %s", tuple(checks))

    def load_data(self, table: str, rows: RowFile) -> None:
        """``LOAD DATA LOCAL INFILE`` of ``rows`` into ``table``; the file is then removed.

        With ``LOCAL``, the server turns a row it cannot store into a warning (it cannot stop
        the client sending): any warning, or a count that differs, fails the load.
        """
        with self.raw().cursor() as cursor:
            stored = cursor.execute(load_data_sql(table), (rows.ready(),))
            warnings = cursor.warning_count
            if stored != rows.rows or warnings:
                cursor.execute("SHOW WARNINGS LIMIT 3")
                shown = "; ".join(str(row[2]) for row in cursor.fetchall())
                raise BulkLoadError(
                    f"LOAD DATA into {table} stored {stored:,} of {rows.rows:,} checked rows, "
                    f"with {warnings:,} warning(s): {shown or 'none shown'}; nothing was loaded. "
                    "Do the table's columns still match coursemart's? (SHOW CREATE TABLE courses)"
                )
        rows.discard()

    def upsert_rows(self, rows: pa.Table) -> None:
        """Batched ``INSERT … ON DUPLICATE KEY UPDATE``: where ``LOCAL INFILE`` is refused."""
        with self.raw().cursor() as cursor:
            for offset in range(0, rows.num_rows, ROWS_PER_STATEMENT):
                cursor.executemany(self.UPSERT, row_tuples(rows.slice(offset, ROWS_PER_STATEMENT)))

    def raw(self) -> Any:
        raw = self.connection.connection.driver_connection
        assert raw is not None
        return raw
