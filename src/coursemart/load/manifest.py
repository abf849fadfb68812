"""The manifest of loaded batches and the history of loads (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coursemart import warehouse


@dataclass(frozen=True)
class LoadRecord:
    """One row of ``coursemart_loads``."""

    load_id: str
    started_at: datetime
    finished_at: datetime
    status: str
    batches: int
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    since: datetime | None = None
    message: str | None = None


def loaded_batch_ids(connection: Connection, among: list[str] | None = None) -> set[str]:
    """Ids of the batches already in the warehouse (of ``among``, when given)."""
    query = sa.select(warehouse.loaded_batches.c.batch_id)
    if among is not None:
        query = query.where(warehouse.loaded_batches.c.batch_id.in_(among))
    return set(connection.execute(query).scalars())


@dataclass(frozen=True)
class Position:
    """How far a warehouse has loaded the lake's table: its id and the last version loaded."""

    table_id: str
    version: int


def lake_position(connection: Connection) -> Position | None:
    """The table and last version this warehouse loaded (None before its first Delta load)."""
    table = warehouse.loaded_versions
    latest = connection.execute(
        sa.select(table.c.table_id).order_by(table.c.loaded_at.desc(), table.c.version.desc())
    ).first()
    if latest is None:
        return None
    version = connection.execute(
        sa.select(sa.func.max(table.c.version)).where(table.c.table_id == latest[0])
    ).scalar_one()
    return Position(str(latest[0]), int(version))


def record_version(
    connection: Connection,
    *,
    table_id: str,
    version: int,
    load_id: str,
    operation: str,
    counts: tuple[int, int, int, int],
    committed_at: datetime,
) -> None:
    """Add a loaded version to the manifest (in the load's transaction, beside its rows);
    ``counts`` are rows read, loaded, rejected and courses removed."""
    read, loaded, rejected, cancelled = counts
    connection.execute(
        warehouse.loaded_versions.insert().values(
            table_id=table_id,
            version=version,
            load_id=load_id,
            operation=operation[:40] or "unknown",
            rows_read=read,
            rows_loaded=loaded,
            rows_rejected=rejected,
            rows_cancelled=cancelled,
            committed_at=committed_at,
            loaded_at=datetime.now(UTC),
        )
    )


def cancelled_courses(connection: Connection) -> int:
    """Courses removed from the warehouse because the lake deleted them."""
    total = sa.select(sa.func.coalesce(sa.func.sum(warehouse.loaded_versions.c.rows_cancelled), 0))
    return int(connection.execute(total).scalar_one())


def committed_loads(connection: Connection, load_ids: list[str]) -> set[str]:
    """Which of ``load_ids`` committed (recorded as loaded or with nothing to do)."""
    table = warehouse.loads
    query = sa.select(table.c.load_id).where(
        table.c.load_id.in_(load_ids), table.c.status.in_(("loaded", "nothing to do"))
    )
    return set(connection.execute(query).scalars())


def record_batch(
    connection: Connection,
    *,
    batch_id: str,
    load_id: str,
    rows_read: int,
    rows_loaded: int,
    rows_rejected: int,
    since: datetime | None,
) -> None:
    """Add a batch to the manifest (in the load's transaction, beside its rows)."""
    connection.execute(
        warehouse.loaded_batches.insert().values(
            batch_id=batch_id,
            load_id=load_id,
            rows_read=rows_read,
            rows_loaded=rows_loaded,
            rows_rejected=rows_rejected,
            since=since,
            loaded_at=datetime.now(UTC),
        )
    )


def record_load(connection: Connection, record: LoadRecord) -> None:
    """Add a load to the history."""
    connection.execute(warehouse.loads.insert().values(**record.__dict__))


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def latest_loads(connection: Connection, limit: int = 10) -> list[LoadRecord]:
    """The most recent loads, newest first."""
    rows = connection.execute(
        sa.select(warehouse.loads).order_by(warehouse.loads.c.load_id.desc()).limit(limit)
    ).mappings()
    return [LoadRecord(**{key: _utc(value) for key, value in row.items()}) for row in rows]


def row_counts(connection: Connection) -> dict[str, int]:
    """Rows per warehouse table."""
    tables = (warehouse.categories, warehouse.levels, warehouse.courses, warehouse.loaded_batches)
    return {
        table.name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        for table in tables
    }


def dimension_keys(connection: Connection) -> tuple[frozenset[int], frozenset[int]]:
    """Category ids and level ids present in the warehouse."""
    categories = connection.execute(sa.select(warehouse.categories.c.category_id)).scalars()
    levels = connection.execute(sa.select(warehouse.levels.c.level_id)).scalars()
    return frozenset(categories), frozenset(levels)
