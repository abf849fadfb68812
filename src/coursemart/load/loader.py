"""The load stage: new committed lake batches into the warehouse, exactly once.

1. Take the warehouse's load lock (one loader at a time), create missing tables and the view.
2. In one transaction: find committed batches missing from the manifest; merge the dimension
   snapshots; for each batch, oldest first, validate its rows, write the good ones through the
   backend's fast path, write refused ones to ``_rejected/load_id=<id>/``, merge, and add the batch
   to the manifest; record the load; commit.

A crash at any point before the commit leaves the warehouse as it was; the next run does the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import pyarrow as pa
from sqlalchemy.engine import Connection, Engine

from coursemart import lake as lakes
from coursemart import model, warehouse
from coursemart.config import mask_url
from coursemart.errors import CoursemartError, LakeError
from coursemart.load import manifest
from coursemart.load.backends import Backend, LockBusyError, backend_for
from coursemart.load.validate import (
    Counts,
    Rules,
    check,
    conform,
    duplicate_ids,
    reject_all,
    schema_problems,
)

Progress = Callable[[int], None]
Checkpoint = Callable[[str], None]

#: Named points of a load, for reliability tests that kill the loader there.
CHECKPOINTS: Final = ("after_staging", "during_merge", "before_commit")
REJECTED_FLUSH_ROWS: Final = 100_000


@dataclass(frozen=True)
class LoadResult:
    load_id: str
    status: str
    batches: tuple[str, ...]
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_skipped: int
    reasons: dict[str, int] = field(default_factory=dict)
    rejected_path: str | None = None
    seconds: float = 0.0


class DimensionError(LakeError):
    """A dimension snapshot has a row that cannot be loaded."""


def _nothing(_: object) -> None:
    return None


def as_utc(moment: datetime | None) -> datetime | None:
    """A naive datetime is taken as UTC; an aware one is converted to UTC."""
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def load(
    lake_url: str,
    warehouse_url: str,
    *,
    since: datetime | None = None,
    wait: float = 30.0,
    progress: Progress | None = None,
    checkpoint: Checkpoint | None = None,
) -> LoadResult:
    """Load every committed batch not yet in the warehouse's manifest.

    ``since`` keeps only courses starting at or after it (pushed down to the Parquet reader);
    ``wait`` is how long to wait for another loader; ``checkpoint`` is called at the names in
    :data:`CHECKPOINTS`.
    """
    began, started_at = time.perf_counter(), datetime.now(UTC)
    since = as_utc(since)
    lake = lakes.open_lake(lake_url)
    if not lake.fs.exists(lake.root):
        raise LakeError(f"no lake at {lake_url!r}: run `coursemart generate` first, or fix --lake")
    engine = warehouse.create_engine(warehouse_url, lock_timeout=wait)
    display = mask_url(warehouse_url)
    load_id = lakes.new_id()
    rejected = RejectedRows(lake, load_id)
    job = _Job(lake, load_id, since, rejected, progress or _nothing, checkpoint or _nothing)
    try:
        with engine.connect() as connection:
            backend = backend_for(connection, display)
            backend.lock(wait)
            try:
                backend.begin()
                warehouse.ensure_schema(connection)
                connection.commit()
                backend.begin()
                try:
                    result = job.run(connection, backend, started_at)
                except BaseException:
                    connection.rollback()
                    raise
            finally:
                backend.unlock()
    except BaseException as exc:
        abandon(rejected, engine, load_id, started_at, since, exc)
        raise
    finally:
        engine.dispose()
    return LoadResult(**{**result.__dict__, "seconds": time.perf_counter() - began})


@dataclass
class _Job:
    lake: lakes.Lake
    load_id: str
    since: datetime | None
    rejected: RejectedRows
    progress: Progress
    checkpoint: Checkpoint

    def run(self, connection: Connection, backend: Backend, started_at: datetime) -> LoadResult:
        done = manifest.loaded_batch_ids(connection)
        pending = [b for b in lakes.committed_batches(self.lake) if b not in done]
        totals = Counts()
        skipped = 0
        if pending:
            merge_dimensions(self.lake, backend)
            rules = Rules(*manifest.dimension_keys(connection))
            for position, batch_id in enumerate(pending):
                counts = self.load_batch(backend, batch_id, rules)
                if position == 0:
                    self.checkpoint("after_staging")
                backend.merge_courses()
                record_merged_batch(connection, batch_id, self.load_id, counts, self.since)
                if position == 0:
                    self.checkpoint("during_merge")
                totals.merge(counts)
                skipped += lakes.batch_row_count(self.lake, batch_id) - counts.read
        result = record_load(
            connection,
            self.load_id,
            started_at,
            self.since,
            pending,
            totals,
            skipped,
            self.rejected,
        )
        self.checkpoint("before_commit")
        connection.commit()
        return result

    def load_batch(self, backend: Backend, batch_id: str, rules: Rules) -> Counts:
        """Validate and write one batch's rows; returns its counts."""
        counts = Counts()
        paths = lakes.batch_files(self.lake, batch_id)
        problems = {path: schema_problems(lakes.file_schema(self.lake, path)) for path in paths}
        readable = [path for path in paths if not problems[path]]
        id_arrays = (
            record_batch.column(0)
            for path in readable
            for record_batch in lakes.read_file_batches(
                self.lake, path, since=self.since, columns=["course_id"]
            )
        )
        duplicates = duplicate_ids(id_arrays, lakes.id_range(self.lake, readable))
        for path in paths:
            since = None if problems[path] else self.since
            for record_batch in lakes.read_file_batches(self.lake, path, since=since):
                table = pa.Table.from_batches([record_batch])
                if problems[path]:
                    checked = reject_all(table, "schema: " + "; ".join(problems[path]))
                else:
                    checked = check(conform(table), rules, duplicates)
                if checked.good.num_rows:
                    backend.write_courses(checked.good)
                self.rejected.add(checked.rejected, batch_id, path)
                counts.add(checked)
                self.progress(checked.read)
        self.rejected.flush()
        return counts


def record_merged_batch(
    connection: Connection, batch_id: str, load_id: str, counts: Counts, since: datetime | None
) -> None:
    """Add a merged batch to the manifest (inside the load's transaction)."""
    manifest.record_batch(
        connection,
        batch_id=batch_id,
        load_id=load_id,
        rows_read=counts.read,
        rows_loaded=counts.loaded,
        rows_rejected=counts.rejected,
        since=since,
    )


def record_load(
    connection: Connection,
    load_id: str,
    started_at: datetime,
    since: datetime | None,
    batches: Sequence[str],
    totals: Counts,
    skipped: int,
    rejected: RejectedRows,
) -> LoadResult:
    """Record the load in the history (inside its transaction) and return its result."""
    status = "loaded" if batches else "nothing to do"
    manifest.record_load(
        connection,
        manifest.LoadRecord(
            load_id=load_id,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            status=status,
            batches=len(batches),
            rows_read=totals.read,
            rows_loaded=totals.loaded,
            rows_rejected=totals.rejected,
            since=since,
            message=reasons_text(totals.reasons) or None,
        ),
    )
    return LoadResult(
        load_id=load_id,
        status=status,
        batches=tuple(batches),
        rows_read=totals.read,
        rows_loaded=totals.loaded,
        rows_rejected=totals.rejected,
        rows_skipped=skipped,
        reasons=totals.reasons,
        rejected_path=rejected.folder if rejected.rows else None,
    )


def reasons_text(reasons: dict[str, int]) -> str:
    return ", ".join(f"{reason}: {count:,}" for reason, count in sorted(reasons.items()))


def merge_dimensions(lake: lakes.Lake, backend: Backend) -> None:
    """Upsert the lake's category and level snapshots; rows absent from a snapshot are kept."""
    for name, schema, table in (
        ("categories", model.CATEGORIES_SCHEMA, warehouse.categories),
        ("levels", model.LEVELS_SCHEMA, warehouse.levels),
    ):
        snapshot = lakes.read_dimension(lake, name, schema)
        rows = dimension_rows(snapshot, schema, lake.dimension_path(name))
        if rows:
            backend.upsert_dimension(table, rows)


def dimension_rows(snapshot: pa.Table, schema: pa.Schema, path: str) -> list[dict[str, object]]:
    """The snapshot's rows, checked: both columns present, no nulls, no duplicate id or name."""
    missing = [name for name in schema.names if name not in snapshot.column_names]
    if missing:
        raise DimensionError(
            f"{path}: missing column {', '.join(missing)}; expected {schema.names}"
        )
    rows: list[dict[str, object]] = snapshot.select(schema.names).to_pylist()
    key, label = schema.names
    seen_keys: set[object] = set()
    seen_labels: set[object] = set()
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"{path} line {line}"
        if row[key] is None or row[label] is None or not str(row[label]).strip():
            raise DimensionError(f"{where}: {key} and {label} must both be given; fix the file")
        if row[key] in seen_keys or row[label] in seen_labels:
            raise DimensionError(f"{where}: {key} {row[key]} or {label} {row[label]!r} repeats")
        seen_keys.add(row[key])
        seen_labels.add(row[label])
    return rows


class RejectedRows:
    """Collects refused rows and writes them under ``_rejected/load_id=<id>/``."""

    def __init__(self, lake: lakes.Lake, load_id: str) -> None:
        self.lake = lake
        self.load_id = load_id
        self.folder = lake.path(lakes.REJECTED_DIR, f"load_id={load_id}")
        self.rows = 0
        self.parts = 0
        self.pending: list[pa.Table] = []
        self.pending_rows = 0

    def add(self, rows: pa.Table, batch_id: str, path: str) -> None:
        if rows.num_rows == 0:
            return
        rows = rows.append_column("batch_id", pa.array([batch_id] * rows.num_rows, pa.string()))
        rows = rows.append_column("source_file", pa.array([path] * rows.num_rows, pa.string()))
        self.pending.append(rows)
        self.pending_rows += rows.num_rows
        if self.pending_rows >= REJECTED_FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        by_schema: dict[pa.Schema, list[pa.Table]] = {}
        for table in self.pending:  # a file with a foreign schema gets a part of its own
            by_schema.setdefault(table.schema, []).append(table)
        for tables in by_schema.values():
            table = pa.concat_tables(tables)
            lakes.write_rejected(self.lake, self.load_id, table, part=self.parts)
            self.parts += 1
            self.rows += table.num_rows
        self.pending, self.pending_rows = [], 0

    def discard(self) -> None:
        """Remove what a failed load wrote: its rows were never loaded nor refused for good."""
        self.pending = []
        if self.parts and self.lake.fs.exists(self.folder):
            self.lake.fs.rm(self.folder, recursive=True)


def abandon(
    rejected: RejectedRows,
    engine: Engine,
    load_id: str,
    started_at: datetime,
    since: datetime | None,
    exc: BaseException,
) -> None:
    """After a load's transaction rolled back (error or Ctrl-C): remove its refused rows, and
    record an error in the history."""
    rejected.discard()
    if isinstance(exc, Exception):
        record_failure(engine, load_id, started_at, since, exc)


def record_failure(
    engine: Engine, load_id: str, started_at: datetime, since: datetime | None, exc: Exception
) -> None:
    """Best effort: note a failed load in the history.

    Not when the warehouse itself failed (it would fail again) nor when another load is running.
    """
    if not isinstance(exc, CoursemartError) or isinstance(exc, LockBusyError):
        return
    record = manifest.LoadRecord(
        load_id=load_id,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        status="failed",
        batches=0,
        rows_read=0,
        rows_loaded=0,
        rows_rejected=0,
        since=since,
        message=str(exc)[:2000],
    )
    try:
        with engine.begin() as connection:
            warehouse.ensure_schema(connection)
            manifest.record_load(connection, record)
    except Exception:  # noqa: BLE001 - the original error is what the user needs to see
        pass
