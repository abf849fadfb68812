"""SQLite: the write lock (``BEGIN IMMEDIATE``) is the load lock; rows go in as prepared
batches in one transaction (plain inserts for new ids, upserts for the others)."""

from __future__ import annotations

import time
from typing import Any, Final

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from coursemart.load.backends.base import (
    COLUMN_LIST,
    QMARKS,
    ROWS_PER_STATEMENT,
    UPDATED_COLUMNS,
    Backend,
    busy,
    row_tuples,
)


class SQLiteBackend(Backend):
    dialects = ("sqlite",)
    INSERT: Final = f"INSERT INTO courses ({COLUMN_LIST}) VALUES ({QMARKS})"
    UPSERT: Final = (
        f"{INSERT} ON CONFLICT (course_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in UPDATED_COLUMNS)
        + " WHERE excluded.batch_id > courses.batch_id"
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
                raise busy(self.display_url, time.monotonic() - began) from exc
            raise

    def unlock(self) -> None:
        self._raw().execute("PRAGMA foreign_keys = ON")

    def _raw(self) -> Any:
        raw = self.connection.connection.driver_connection
        assert raw is not None
        return raw

    def upsert_dimension(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        statement = sqlite.insert(table)
        key = [c.name for c in table.primary_key.columns]
        statement = statement.on_conflict_do_update(
            index_elements=key,
            set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in key},
        )
        self.connection.execute(statement, rows)

    def write_courses(self, rows: pa.Table) -> None:
        raw = self._raw()
        fresh, known = self.split_fresh(rows)
        for statement, table in ((self.INSERT, fresh), (self.UPSERT, known)):
            for offset in range(0, table.num_rows, ROWS_PER_STATEMENT * 5):
                chunk = table.slice(offset, ROWS_PER_STATEMENT * 5)
                raw.executemany(statement, row_tuples(chunk))
