"""PostgreSQL: ``pg_try_advisory_lock`` is the load lock; rows are COPYed (into an empty table
straight into ``courses``, whose indexes are built after the rows; otherwise into a temp staging
table, from which new ids are inserted in the listing index's order and the others merged by
``INSERT … ON CONFLICT … WHERE`` a greater batch id)."""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any, Final

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from coursemart.load.backends.base import (
    COLUMN_LIST,
    FOLLOW_LOCK_NAME,
    LOCK_NAME,
    UPDATED_COLUMNS,
    Backend,
    busy,
    naive_utc,
)
from coursemart.load.backends.staging import MergesStages
from coursemart.warehouse.dialects.postgres import PostgreSQL, check_client_connection
from coursemart.warehouse.schema import LISTING_INDEX

#: Batch ids compared by code point, whatever the database's collation (warehouse/ordering.py).
BATCH_ORDER: Final = PostgreSQL.code_point_format

#: A load of at least this many rows refreshes the planner's statistics after it commits.
ANALYZE_ROWS: Final = 1_000_000
#: Seconds a load into an empty ``courses`` waits for readers before keeping its indexes.
INDEX_LOCK_WAIT: Final = 5


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


class PostgresBackend(Backend, MergesStages):
    dialects = ("postgresql",)
    STAGE: Final = "coursemart_stage"

    def __init__(self, connection: Connection, display_url: str) -> None:
        super().__init__(connection, display_url)
        self.staged = False
        self.triggers_checked = False
        self.in_index_order = False
        self.deferred: list[str] = []

    def lock(self, wait: float) -> None:
        # A loader killed in the middle of a statement (a merge, a wait for a table lock) would
        # keep the lock until that statement ended: its backend ends it within a second.
        check_client_connection(self.connection.exec_driver_sql)
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
                raise busy(self.display_url, wait)
            time.sleep(0.1)

    def hold_follow_lock(self) -> bool:
        where = self.connection.exec_driver_sql("SELECT current_schema()").scalar_one()
        name = f"{FOLLOW_LOCK_NAME}:{where}"
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        got = self.connection.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar()
        self.connection.commit()
        return bool(got)

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
            self.in_index_order = self.listing_outgrew_memory()

    def listing_outgrew_memory(self) -> bool:
        """Whether the listing index is larger than the server's shared buffers: new rows then
        go into ``courses`` in that index's order (see :meth:`merge_stage`); below, a COPY
        straight into the table is quicker (1M new courses into 10^6: 11.5 s instead of 12.7 s).
        """
        outgrew = self.connection.exec_driver_sql(
            "SELECT pg_relation_size(to_regclass(%s)) "
            "> pg_size_bytes(current_setting('shared_buffers'))",
            (LISTING_INDEX,),
        ).scalar()
        return bool(outgrew)

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
        """New ids are copied straight into ``courses``: ids above the largest cannot conflict
        (duplicates inside a batch are refused beforehand). The others go through the stage, and
        so do all rows once the listing index has outgrown the server's memory: the batch's new
        ids are then inserted from the stage in that index's order (see :meth:`merge_stage`)."""
        self.before_bulk_write()
        if self.deferred or not self.in_index_order:
            fresh, rows = self.split_fresh(rows)
            self._copy("courses", fresh)
        if rows.num_rows:
            if not self.staged:
                self.connection.exec_driver_sql(
                    f"CREATE TEMP TABLE IF NOT EXISTS {self.STAGE} "
                    "(LIKE courses INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                self.staged = True
            self._copy(self.STAGE, rows)

    def remove_courses(self, rows: pa.Table) -> int:
        """COPY the removals into a temporary table, then one ``DELETE … USING`` it."""
        if rows.num_rows == 0:
            return 0
        raw = self.connection.connection.driver_connection
        assert raw is not None
        buffer = io.BytesIO()
        pacsv.write_csv(rows, buffer, pacsv.WriteOptions(include_header=False))
        with raw.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS coursemart_removed "
                "(course_id bigint, batch_id text) ON COMMIT DROP"
            )
            cursor.execute("TRUNCATE coursemart_removed")
            with cursor.copy("COPY coursemart_removed FROM STDIN (FORMAT csv)") as copy:
                copy.write(buffer.getbuffer())
            cursor.execute(
                "DELETE FROM courses USING coursemart_removed AS removed "
                "WHERE courses.course_id = removed.course_id "
                f"AND {BATCH_ORDER.format('courses.batch_id')} <= "
                f"{BATCH_ORDER.format('removed.batch_id')}"
            )
            return max(int(cursor.rowcount), 0)

    def after_commit(self, rows_loaded: int) -> None:
        """Refresh the planner's statistics when the load changed a good part of ``courses``:
        its choices for searches (the text index, or a walk in date order) follow them, and
        autovacuum would come later."""
        if rows_loaded <= 0:
            return
        try:
            estimate = self.connection.exec_driver_sql(
                "SELECT GREATEST(reltuples, 0) FROM pg_class WHERE oid = 'courses'::regclass"
            ).scalar_one()
            self.connection.commit()
            if rows_loaded * 10 >= float(estimate) or rows_loaded >= ANALYZE_ROWS:
                self.connection.exec_driver_sql("ANALYZE courses")
                self.connection.commit()
        except sa.exc.DBAPIError:  # upkeep only: the load itself has committed
            self.connection.rollback()

    def merge_courses(self) -> None:
        self.restore_indexes()
        if self.staged:
            self.merge_stage(self.STAGE, "TRUE")
            self.connection.exec_driver_sql(f"TRUNCATE {self.STAGE}")
        super().merge_courses()

    def merge_stage(self, stage: str, where: str, *, distinct: bool = False) -> None:
        """Move the stage's rows matching ``where`` into ``courses``: the new ids by one insert
        in the listing index's order, the others by one upsert.

        Inserted in that order, the new rows visit each page of the listing index once, in
        turn, instead of at random: among 10^8 courses, whose indexes no longer fit in the
        server's memory, PostgreSQL inserted 1M new courses in 12.9 and 13.8 s this way, against
        15.7 and 23.1 s in the lake's order (alternate runs), and wrote less WAL.

        A Spark task that is retried may have staged its rows twice: identical rows,
        since ids repeated inside a batch are refused beforehand; with ``distinct``, one of each
        is kept.
        """
        self.before_bulk_write()
        largest = self.largest_course_id()
        columns = COLUMN_LIST
        source = f"{stage} WHERE {where} AND course_id > {int(largest)}"
        if distinct:
            source = (
                f"(SELECT DISTINCT ON (course_id) {columns} FROM {source} ORDER BY course_id) "
                "AS picked"
            )
        self.connection.exec_driver_sql(
            f"INSERT INTO courses ({columns}) SELECT {columns} FROM {source} "
            "ORDER BY start_date DESC, course_id DESC"
        )
        self.restore_indexes()
        self.connection.exec_driver_sql(
            postgres_merge_sql(stage, f"{where} AND course_id <= {int(largest)}", distinct=distinct)
        )


def postgres_merge_sql(stage: str, where: str, *, distinct: bool = False) -> str:
    """The stage's rows matching ``where`` into ``courses``: insert new ids, update a course only
    from a greater batch.

    With ``distinct``, one row per ``course_id`` is taken from the stage.
    """
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in UPDATED_COLUMNS)
    pick = "DISTINCT ON (course_id) " if distinct else ""
    order = " ORDER BY course_id" if distinct else ""
    source = f"SELECT {pick}{COLUMN_LIST} FROM {stage} WHERE {where}{order}"
    return (
        f"INSERT INTO courses AS c ({COLUMN_LIST}) {source} "
        f"ON CONFLICT (course_id) DO UPDATE SET {updates} "
        f"WHERE {BATCH_ORDER.format('EXCLUDED.batch_id')} > {BATCH_ORDER.format('c.batch_id')}"
    )
