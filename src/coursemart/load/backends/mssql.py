"""SQL Server / Azure SQL: rows to a ``#stage`` temp table, then one ``MERGE``.

No SQL Server runs in CI: the statements here are covered by compilation tests only.
"""

from __future__ import annotations

import time
from typing import Any, Final

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from coursemart import warehouse
from coursemart.load.backends.base import (
    COLUMN_LIST,
    LOCK_NAME,
    QMARKS,
    ROWS_PER_STATEMENT,
    Backend,
    busy,
    row_tuples,
)
from coursemart.load.backends.staging import MergesStages
from coursemart.warehouse.dialects.mssql import SQLServer

STAGE: Final = "#coursemart_stage"
#: Batch ids compared by code point, whatever the column's collation (warehouse/ordering.py).
BATCH_ORDER: Final = SQLServer.code_point_format


def _quote(name: str) -> str:
    quoted: str = mssql.dialect().identifier_preparer.quote(name)  # type: ignore[no-untyped-call]
    return quoted


def staging_ddl() -> str:
    """The temp table the rows are bulk-inserted into (``fast_executemany``)."""
    dialect = mssql.dialect()  # type: ignore[no-untyped-call]
    columns = sa.schema.CreateTable(warehouse.courses).compile(dialect=dialect)
    body = str(columns).split("(", 1)[1].rsplit("PRIMARY KEY", 1)[0].rstrip().rstrip(",")
    return f"CREATE TABLE {STAGE} ({body})"


def merge_sql(table: sa.Table, source: str) -> str:
    """``MERGE`` of ``source`` (aliased ``s``) into ``table`` by key.

    A table with row lineage (``batch_id``) takes a row only from a greater batch; others update
    only rows that changed.
    """
    key = [c.name for c in table.primary_key.columns]
    others = [c.name for c in table.columns if c.name not in key]
    on = " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in key)
    changed = (
        f"{BATCH_ORDER.format('s.batch_id')} > {BATCH_ORDER.format('t.batch_id')}"
        if "batch_id" in others
        else " OR ".join(
            f"EXISTS (SELECT s.{_quote(c)} EXCEPT SELECT t.{_quote(c)})" for c in others
        )
    )
    sets = ", ".join(f"t.{_quote(c)} = s.{_quote(c)}" for c in others)
    columns = ", ".join(_quote(c.name) for c in table.columns)
    values = ", ".join(f"s.{_quote(c.name)}" for c in table.columns)
    return (
        f"MERGE INTO {_quote(table.name)} WITH (HOLDLOCK) AS t USING {source} ON {on} "
        f"WHEN MATCHED AND ({changed}) THEN UPDATE SET {sets} "
        f"WHEN NOT MATCHED BY TARGET THEN INSERT ({columns}) VALUES ({values});"
    )


def applock_sql(wait: float) -> str:
    """Session-level application lock: one loader at a time."""
    return (
        "DECLARE @r int; EXEC @r = sp_getapplock @Resource = N'" + LOCK_NAME + "', "
        f"@LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = {int(wait * 1000)}; "
        "SELECT @r;"
    )


class MSSQLBackend(Backend, MergesStages):
    dialects = ("mssql",)
    INSERT_STAGE: Final = f"INSERT INTO {STAGE} ({COLUMN_LIST}) VALUES ({QMARKS})"

    def __init__(self, connection: sa.engine.Connection, display_url: str) -> None:
        super().__init__(connection, display_url)
        self.staged = False

    def lock(self, wait: float) -> None:
        began = time.monotonic()
        result = self.connection.exec_driver_sql(applock_sql(wait)).scalar()
        self.connection.commit()
        if result is None or int(result) < 0:
            raise busy(self.display_url, time.monotonic() - began)

    def unlock(self) -> None:
        self.connection.exec_driver_sql(
            f"EXEC sp_releaseapplock @Resource = N'{LOCK_NAME}', @LockOwner = 'Session'"
        )
        self.connection.commit()

    def upsert_dimension(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        values = ", ".join(
            "(" + ", ".join(f":{c.name}_{i}" for c in table.columns) + ")" for i in range(len(rows))
        )
        columns = ", ".join(_quote(c.name) for c in table.columns)
        params = {f"{k}_{i}": v for i, row in enumerate(rows) for k, v in row.items()}
        source = f"(VALUES {values}) AS s ({columns})"
        self.connection.execute(sa.text(merge_sql(table, source)), params)

    def write_courses(self, rows: pa.Table) -> None:
        raw = self.connection.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        if not self.staged:
            cursor.execute(staging_ddl())
            self.staged = True
        cursor.fast_executemany = True
        for offset in range(0, rows.num_rows, ROWS_PER_STATEMENT):
            cursor.executemany(
                self.INSERT_STAGE, row_tuples(rows.slice(offset, ROWS_PER_STATEMENT))
            )

    def merge_courses(self) -> None:
        if self.staged:
            self.connection.exec_driver_sql(merge_sql(warehouse.courses, f"{STAGE} AS s"))
            self.connection.exec_driver_sql(f"TRUNCATE TABLE {STAGE}")
        super().merge_courses()

    def merge_stage(self, stage: str, where: str, *, distinct: bool = False) -> None:
        source = f"(SELECT DISTINCT {COLUMN_LIST} FROM {stage} WHERE {where}) AS s"
        self.connection.exec_driver_sql(merge_sql(warehouse.courses, source))
