"""Per-database fast paths for the loader; each works inside the caller's open transaction.

- SQLite: the write lock (``BEGIN IMMEDIATE``) is the load lock; rows go in as prepared
  ``INSERT … ON CONFLICT DO UPDATE`` batches.
- PostgreSQL: ``pg_try_advisory_lock``; rows are COPYed (new ids straight into ``courses``, the
  others into a temp staging table merged by ``INSERT … ON CONFLICT … WHERE IS DISTINCT FROM``).
- MariaDB/MySQL: ``GET_LOCK``; batched ``INSERT … ON DUPLICATE KEY UPDATE``.
- SQL Server: see :mod:`coursemart.load.mssql`.
"""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any, ClassVar, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection

from coursemart import warehouse
from coursemart.errors import CoursemartError

COURSE_COLUMNS: Final = ("course_id", "course_name", "category_id", "level_id", "start_date")
UPDATED_COLUMNS: Final = COURSE_COLUMNS[1:]
LOCK_NAME: Final = "coursemart-load"
ROWS_PER_STATEMENT: Final = 10_000
#: Seconds a load into an empty ``courses`` waits for readers before keeping its indexes.
INDEX_LOCK_WAIT: Final = 5


class LockBusyError(CoursemartError):
    """Another load holds the warehouse's load lock."""

    exit_code = 3


def _busy(url: str, waited: float) -> LockBusyError:
    return LockBusyError(
        f"another coursemart load is running on {url} (waited {waited:.0f} s): "
        "try again when it has finished, or raise --wait"
    )


def naive_utc(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """UTC timestamps without their zone: they format 30x faster than zoned ones."""
    return column.cast(pa.timestamp("us"))


def text_timestamps(column: pa.ChunkedArray | pa.Array) -> list[str]:
    """UTC timestamps as ``YYYY-MM-DD HH:MM:SS.ffffff``, SQLAlchemy's own text format."""
    texts: list[str] = naive_utc(column).cast(pa.string()).to_pylist()
    return texts


def row_tuples(table: pa.Table) -> list[tuple[Any, ...]]:
    """The course rows as DB-API parameter tuples, timestamps as text."""
    columns = [table[name].to_pylist() for name in COURSE_COLUMNS[:-1]]
    columns.append(text_timestamps(table["start_date"]))
    return list(zip(*columns, strict=True))


class Backend:
    """The generic path, through SQLAlchemy; subclasses replace what they do faster."""

    dialects: ClassVar[tuple[str, ...]] = ()

    def __init__(self, connection: Connection, display_url: str) -> None:
        self.connection = connection
        self.display_url = display_url
        self.max_id: int | None = None

    def split_fresh(self, rows: pa.Table) -> tuple[pa.Table, pa.Table]:
        """(rows whose id is above every id in ``courses``, the others).

        Fresh rows cannot conflict (duplicates inside a batch are refused beforehand), so they
        can take a plain insert or COPY instead of an upsert.
        """
        if self.max_id is None:
            self.max_id = int(
                self.connection.execute(
                    sa.select(sa.func.coalesce(sa.func.max(warehouse.courses.c.course_id), 0))
                ).scalar_one()
            )
        fresh = pc.greater(rows["course_id"], pa.scalar(self.max_id, pa.int64()))
        return rows.filter(fresh), rows.filter(pc.invert(fresh))

    # locking ------------------------------------------------------------------------------
    def lock(self, wait: float) -> None:
        """Take the one-loader-at-a-time lock, waiting up to ``wait`` seconds."""

    def unlock(self) -> None:
        """Release the lock taken by :meth:`lock`."""

    def begin(self) -> None:
        """Open the load's transaction."""
        self.connection.begin()

    # rows ---------------------------------------------------------------------------------
    def upsert_dimension(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Merge dimension rows on their primary key; the table is never emptied or dropped."""
        key = table.primary_key.columns.values()[0]
        for row in rows:
            updated = self.connection.execute(
                table.update().where(key == row[key.name]).values(**row)
            ).rowcount
            if not updated:
                self.connection.execute(table.insert().values(**row))

    def before_bulk_write(self) -> None:
        """Called once before the first course rows are written in the load's transaction."""

    def write_courses(self, rows: pa.Table) -> None:
        """Write validated course rows of the current batch (later rows win over earlier)."""
        raise NotImplementedError

    def merge_courses(self) -> None:
        """Finish the current batch: move staged rows into ``courses``."""
        self.max_id = None  # the next batch may start above the ids this one added

    def merge_table(self, stage: str, where: str, *, distinct: bool = False) -> None:
        """Merge the rows of a staging table written by someone else (Spark) into ``courses``.

        ``distinct``: some rows were staged twice (identical copies), keep one of each.
        """
        raise CoursemartError(
            f"the Spark engine cannot load into {self.connection.dialect.name} warehouses: "
            "use PostgreSQL, MariaDB/MySQL or SQL Server, or --engine local"
        )


class SQLiteBackend(Backend):
    dialects = ("sqlite",)
    UPSERT: Final = (
        f"INSERT INTO courses ({', '.join(COURSE_COLUMNS)}) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (course_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in UPDATED_COLUMNS)
        + " WHERE "
        + " OR ".join(f"courses.{c} IS NOT excluded.{c}" for c in UPDATED_COLUMNS)
    )

    def begin(self) -> None:
        # The engine's "begin" hook issues BEGIN IMMEDIATE: the write lock is the load lock.
        # While it is held nobody else can write, and every category and level id has been
        # checked against the dimension tables: the per-row foreign-key lookups add nothing.
        self._raw().execute("PRAGMA foreign_keys = OFF")
        began = time.monotonic()
        try:
            self.connection.begin()
        except sa.exc.OperationalError as exc:
            if "locked" in str(exc.orig):
                raise _busy(self.display_url, time.monotonic() - began) from exc
            raise

    def upsert_dimension(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        statement = sqlite.insert(table)
        key = [c.name for c in table.primary_key.columns]
        statement = statement.on_conflict_do_update(
            index_elements=key,
            set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in key},
        )
        self.connection.execute(statement, rows)

    INSERT: Final = f"INSERT INTO courses ({', '.join(COURSE_COLUMNS)}) VALUES (?, ?, ?, ?, ?)"

    def _raw(self) -> Any:
        raw = self.connection.connection.driver_connection
        assert raw is not None
        return raw

    def unlock(self) -> None:
        self._raw().execute("PRAGMA foreign_keys = ON")

    def write_courses(self, rows: pa.Table) -> None:
        raw = self._raw()
        fresh, known = self.split_fresh(rows)
        for statement, table in ((self.INSERT, fresh), (self.UPSERT, known)):
            for offset in range(0, table.num_rows, ROWS_PER_STATEMENT * 5):
                chunk = table.slice(offset, ROWS_PER_STATEMENT * 5)
                raw.executemany(statement, row_tuples(chunk))


def copy_rows(raw: Any, table_name: str, rows: pa.Table) -> None:
    """COPY ``rows`` (their columns, in order) into ``table_name`` over a psycopg connection
    whose session time zone is UTC, as CSV written by Arrow."""
    if rows.num_rows == 0:
        return
    buffer = io.BytesIO()
    rows = rows.set_column(4, "start_date", naive_utc(rows["start_date"]))
    pacsv.write_csv(rows, buffer, pacsv.WriteOptions(include_header=False))
    columns = ", ".join(rows.column_names)
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {table_name} ({columns}) FROM STDIN (FORMAT csv)") as copy,
    ):
        copy.write(buffer.getbuffer())


class _NotEmpty(Exception):
    """``courses`` gained rows between the first look and the lock."""


class PostgresBackend(Backend):
    dialects = ("postgresql",)
    STAGE: Final = "coursemart_stage"

    def __init__(self, connection: Connection, display_url: str) -> None:
        super().__init__(connection, display_url)
        self.staged = False
        self.triggers_checked = False
        self.deferred: list[str] = []

    def lock(self, wait: float) -> None:
        # Advisory locks are per database: the schema is part of the key, so that warehouses in
        # two schemas of one database do not wait for each other.
        where = self.connection.exec_driver_sql("SELECT current_schema()").scalar_one()
        name = f"{LOCK_NAME}:{where}"
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        began = time.monotonic()
        while True:
            got = self.connection.execute(
                sa.select(sa.func.pg_try_advisory_lock(self.key))
            ).scalar()
            self.connection.commit()
            if got:
                return
            if time.monotonic() - began >= wait:
                raise _busy(self.display_url, wait)
            time.sleep(0.1)

    def unlock(self) -> None:
        self.connection.rollback()  # a failed transaction would refuse the unlock
        self.connection.execute(sa.select(sa.func.pg_advisory_unlock(self.key)))
        self.connection.commit()

    def begin(self) -> None:
        super().begin()
        self.connection.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")

    def before_bulk_write(self) -> None:
        if not self.triggers_checked:
            self.skip_row_triggers()
            self.triggers_checked = True
            self.defer_indexes()

    def defer_indexes(self) -> bool:
        """When ``courses`` is empty, drop its indexes until the first batch is in.

        PostgreSQL's own advice for populating a table: building an index over rows already in
        place (one sort) costs a fraction of updating it row by row. Everything happens inside
        the load's transaction, so a failed load leaves the indexes as they were. The drop takes
        an exclusive lock on ``courses`` until the commit: readers of the (empty) table wait for
        the first load. The indexes stay, and rows update them one by one, when a reader holds
        the table for more than :data:`INDEX_LOCK_WAIT`, when something depends on the key, or
        when an index carries what ``pg_get_indexdef`` cannot recreate (a tablespace, the
        CLUSTER mark, the replica identity, a comment).
        """
        run = self.connection.exec_driver_sql
        if run("SELECT EXISTS (SELECT 1 FROM courses)").scalar_one():
            return False
        special = run(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'courses'::regclass AND (i.indisclustered OR i.indisreplident "
            "OR c.reltablespace <> 0 OR obj_description(c.oid, 'pg_class') IS NOT NULL))"
        ).scalar_one()
        if special:
            return False
        keys = run(
            "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'courses'::regclass AND contype IN ('p', 'u')"
        ).all()
        indexes = run(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = 'courses'::regclass AND indexrelid NOT IN "
            "(SELECT conindid FROM pg_constraint WHERE conrelid = 'courses'::regclass)"
        ).all()
        waited = run("SELECT current_setting('lock_timeout')").scalar_one()
        savepoint = self.connection.begin_nested()
        try:
            run(f"SET LOCAL lock_timeout = '{INDEX_LOCK_WAIT}s'")
            run("LOCK TABLE courses IN ACCESS EXCLUSIVE MODE")
            run("SELECT set_config('lock_timeout', %s, true)", (waited,))
            if run("SELECT EXISTS (SELECT 1 FROM courses)").scalar_one():
                raise _NotEmpty  # someone wrote rows before the lock
            for name, _ in indexes:
                run(f"DROP INDEX {name}")
            for name, _ in keys:
                run(f"ALTER TABLE courses DROP CONSTRAINT {name}")
        except (sa.exc.DBAPIError, _NotEmpty):
            savepoint.rollback()  # the lock and the lock wait go with it
            run("SELECT set_config('lock_timeout', %s, true)", (waited,))
            return False
        savepoint.commit()
        self.deferred = [
            *(
                f"ALTER TABLE courses ADD CONSTRAINT {name} {definition}"
                for name, definition in keys
            ),
            *(definition for _, definition in indexes),
        ]
        return True

    def restore_indexes(self) -> None:
        """Build the indexes :meth:`defer_indexes` dropped, over the rows now in ``courses``."""
        for statement in self.deferred:
            self.connection.exec_driver_sql(statement)
        self.deferred = []

    def skip_row_triggers(self) -> bool:
        """Skip per-row foreign-key triggers for this transaction, when the role may.

        The loader has already checked every category and level id against the dimension
        tables, and share-locks them until commit so that nobody can remove a referenced row:
        the foreign keys hold without a trigger per row (the bulk-load technique of
        ``pg_restore --disable-triggers``). Needs superuser or, on PostgreSQL 15+,
        ``GRANT SET ON PARAMETER session_replication_role``; otherwise the triggers run.
        """
        self.connection.exec_driver_sql("LOCK TABLE categories, levels IN SHARE MODE")
        savepoint = self.connection.begin_nested()
        try:
            self.connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        except sa.exc.DBAPIError:
            savepoint.rollback()
            return False
        savepoint.commit()
        return True

    def upsert_dimension(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        statement = postgresql.insert(table)
        key = [c.name for c in table.primary_key.columns]
        others = [c.name for c in table.columns if c.name not in key]
        statement = statement.on_conflict_do_update(
            index_elements=key,
            set_={name: statement.excluded[name] for name in others},
            where=sa.tuple_(*[table.c[n] for n in others]).is_distinct_from(
                sa.tuple_(*[statement.excluded[n] for n in others])
            ),
        )
        self.connection.execute(statement, rows)

    def _copy(self, table_name: str, rows: pa.Table) -> None:
        copy_rows(self.connection.connection.driver_connection, table_name, rows)

    def write_courses(self, rows: pa.Table) -> None:
        # Ids above the largest in the warehouse cannot conflict (duplicates inside a batch are
        # refused beforehand), so they are copied straight in; the others go through staging.
        self.before_bulk_write()
        fresh, known = self.split_fresh(rows)
        self._copy("courses", fresh)
        if known.num_rows:
            if not self.staged:
                self.connection.exec_driver_sql(
                    f"CREATE TEMP TABLE IF NOT EXISTS {self.STAGE} "
                    "(LIKE courses INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                self.staged = True
            self._copy(self.STAGE, known)

    def merge_courses(self) -> None:
        self.restore_indexes()
        if self.staged:
            self.connection.exec_driver_sql(postgres_merge_sql(self.STAGE))
            self.connection.exec_driver_sql(f"TRUNCATE {self.STAGE}")
        super().merge_courses()

    def merge_table(self, stage: str, where: str, *, distinct: bool = False) -> None:
        # A Spark task that is retried may have staged its rows twice: identical rows, since
        # ids repeated inside a batch are refused beforehand, so one of each is kept.
        self.before_bulk_write()
        largest = self.connection.execute(
            sa.select(sa.func.coalesce(sa.func.max(warehouse.courses.c.course_id), 0))
        ).scalar_one()
        columns = ", ".join(COURSE_COLUMNS)
        pick, order = ("DISTINCT ON (course_id) ", " ORDER BY course_id") if distinct else ("", "")
        self.connection.exec_driver_sql(
            f"INSERT INTO courses ({columns}) SELECT {pick}{columns} "
            f"FROM {stage} WHERE {where} AND course_id > {int(largest)}{order}"
        )
        self.restore_indexes()
        self.connection.exec_driver_sql(
            postgres_merge_sql(stage, f"{where} AND course_id <= {int(largest)}", distinct=distinct)
        )


def postgres_merge_sql(stage: str, where: str = "", *, distinct: bool = False) -> str:
    """Staged rows into ``courses``: insert new ids, update only rows that really changed.

    With ``distinct``, one row per ``course_id`` is taken from the stage.
    """
    columns = ", ".join(COURSE_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in UPDATED_COLUMNS)
    current = ", ".join(f"c.{c}" for c in UPDATED_COLUMNS)
    incoming = ", ".join(f"EXCLUDED.{c}" for c in UPDATED_COLUMNS)
    condition = f" WHERE {where}" if where else ""
    pick = "DISTINCT ON (course_id) " if distinct else ""
    order = " ORDER BY course_id" if distinct else ""
    source = f"SELECT {pick}{columns} FROM {stage}{condition}{order}"
    return (
        f"INSERT INTO courses AS c ({columns}) {source} "
        f"ON CONFLICT (course_id) DO UPDATE SET {updates} "
        f"WHERE ({current}) IS DISTINCT FROM ({incoming})"
    )


def mysql_merge_sql(stage: str, where: str = "") -> str:
    """Staged rows into ``courses`` with ``ON DUPLICATE KEY UPDATE``."""
    columns = ", ".join(COURSE_COLUMNS)
    updates = ", ".join(f"{c} = VALUES({c})" for c in UPDATED_COLUMNS)
    condition = f" WHERE {where}" if where else ""
    return (
        f"INSERT INTO courses ({columns}) SELECT {columns} FROM {stage}{condition} "
        f"ON DUPLICATE KEY UPDATE {updates}"
    )


class MySQLBackend(Backend):
    dialects = ("mysql", "mariadb")
    UPSERT: Final = (
        f"INSERT INTO courses ({', '.join(COURSE_COLUMNS)}) VALUES (%s, %s, %s, %s, %s) "
        "ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in UPDATED_COLUMNS)
    )

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
            raise _busy(self.display_url, wait)

    def unlock(self) -> None:
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

    def merge_table(self, stage: str, where: str, *, distinct: bool = False) -> None:
        # Identical rows staged twice just update a row to itself: nothing to collapse.
        self.connection.exec_driver_sql(mysql_merge_sql(stage, where))

    def write_courses(self, rows: pa.Table) -> None:
        raw = self.connection.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            for offset in range(0, rows.num_rows, ROWS_PER_STATEMENT):
                cursor.executemany(self.UPSERT, row_tuples(rows.slice(offset, ROWS_PER_STATEMENT)))


BACKENDS: Final[tuple[type[Backend], ...]] = (SQLiteBackend, PostgresBackend, MySQLBackend)


def backend_for(connection: Connection, display_url: str) -> Backend:
    """The fast path for the connection's database."""
    name = connection.dialect.name
    for backend in BACKENDS:
        if name in backend.dialects:
            return backend(connection, display_url)
    if name == "mssql":
        from coursemart.load.mssql import MSSQLBackend

        return MSSQLBackend(connection, display_url)
    raise CoursemartError(
        f"no loader for {name!r} warehouses: use SQLite, PostgreSQL, MariaDB/MySQL or SQL Server"
    )
