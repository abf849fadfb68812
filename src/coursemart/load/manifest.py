"""The manifest of loaded batches and the history of loads (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from coursemart import warehouse
from coursemart.errors import failure_text
from coursemart.load.backends import LockBusyError
from coursemart.load.validate import Counts
from coursemart.masking import mask_text

#: Longest message kept with a load in ``coursemart_loads``.
MESSAGE_LENGTH: Final = 2000


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


def record_merged_batch(
    connection: Connection, batch_id: str, load_id: str, counts: Counts, since: datetime | None
) -> None:
    """Add a merged batch to the manifest (inside the load's transaction), once: a batch id
    already there (rows of a batch a later commit rewrote) keeps its first entry."""
    if batch_id in loaded_batch_ids(connection, [batch_id]):
        return
    record_batch(
        connection,
        batch_id=batch_id,
        load_id=load_id,
        rows_read=counts.read,
        rows_loaded=counts.loaded,
        rows_rejected=counts.rejected,
        since=since,
    )


def record_failure(
    engine: Engine, load_id: str, started_at: datetime, since: datetime | None, exc: BaseException
) -> None:
    """Best effort: note a failed load in the history, whatever failed (when the warehouse
    itself is what failed, the note may fail too). Not when another load held the lock: this
    one never started."""
    if isinstance(exc, LockBusyError | SystemExit | GeneratorExit):
        return
    record = LoadRecord(
        load_id=load_id,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        status="failed",
        batches=0,
        rows_read=0,
        rows_loaded=0,
        rows_rejected=0,
        since=since,
        message=mask_text(failure_text(exc))[:MESSAGE_LENGTH],
    )
    try:
        with engine.begin() as connection:
            warehouse.ensure_schema(connection)
            record_load(connection, record)
    except Exception:  # noqa: BLE001 - the original error is what the user needs to see
        pass
