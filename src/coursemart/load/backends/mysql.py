"""MariaDB/MySQL: ``GET_LOCK`` is the load lock; rows go in as batched
``INSERT … ON DUPLICATE KEY UPDATE``."""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from coursemart.load.backends.base import (
    COLUMN_LIST,
    FORMATS,
    LOCK_NAME,
    ROWS_PER_STATEMENT,
    UPDATED_COLUMNS,
    Backend,
    busy,
    row_tuples,
)
from coursemart.load.backends.staging import MergesStages

#: Each column takes the incoming value only from a greater batch; ``batch_id`` is updated last,
#: since MySQL evaluates the assignments left to right.
UPDATES: Final = ", ".join(
    f"{c} = IF(VALUES(batch_id) > courses.batch_id, VALUES({c}), courses.{c})"
    for c in UPDATED_COLUMNS
)


def mysql_merge_sql(stage: str, where: str = "") -> str:
    """Staged rows into ``courses`` with ``ON DUPLICATE KEY UPDATE``."""
    condition = f" WHERE {where}" if where else ""
    return (
        f"INSERT INTO courses ({COLUMN_LIST}) SELECT {COLUMN_LIST} FROM {stage}{condition} "
        f"ON DUPLICATE KEY UPDATE {UPDATES}"
    )


class MySQLBackend(Backend, MergesStages):
    dialects = ("mysql", "mariadb")
    UPSERT: Final = (
        f"INSERT INTO courses ({COLUMN_LIST}) VALUES ({FORMATS}) ON DUPLICATE KEY UPDATE {UPDATES}"
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
            raise busy(self.display_url, wait)

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

    def merge_stage(self, stage: str, where: str, *, distinct: bool = False) -> None:
        # Identical rows staged twice: the second copy's batch id is not greater, it changes
        # nothing.
        self.connection.exec_driver_sql(mysql_merge_sql(stage, where))

    def write_courses(self, rows: pa.Table) -> None:
        raw = self.connection.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            for offset in range(0, rows.num_rows, ROWS_PER_STATEMENT):
                cursor.executemany(self.UPSERT, row_tuples(rows.slice(offset, ROWS_PER_STATEMENT)))
