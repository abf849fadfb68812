"""The one load frame: both engines plug into it, so exactly-once and one transaction each have
a single owner.

1. Take the warehouse's load lock (one loader at a time) and open the load's transaction.
2. Create what is missing of the schema; read the lake table's commits after the last version
   the manifest holds: the batches they add and the courses they remove, in version order;
   read and check the dimension snapshots.
3. The engine stages the batches (Spark validates and writes them from its executors; the local
   engine does nothing yet).
4. Merge the dimensions; for each batch, the engine writes and merges its rows, and the batch
   enters the manifest; each version's removals are applied in turn; every version read enters
   the manifest.
5. Record the load and commit. On any failure: roll back, remove the refused rows written so far,
   record the failure; always release the lock.

A crash at any point before the commit leaves the warehouse as it was; the next run does the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypedDict, Unpack

import pyarrow as pa
from sqlalchemy.engine import Connection, Engine

from coursemart import warehouse
from coursemart.errors import LakeError, missing_lake
from coursemart.lake import Batch, Commit, Lake, new_id, open_lake
from coursemart.lake.delta import TABLE_SCHEMA
from coursemart.load import manifest
from coursemart.load.backends import Backend, backend_for
from coursemart.load.changes import Removal, changes, snapshot_changes
from coursemart.load.dimensions import merge_snapshots, read_snapshots
from coursemart.load.rejected import RejectedRows
from coursemart.load.validate import Counts, Rules
from coursemart.masking import mask_text
from coursemart.warehouse import Warehouse
from coursemart.warehouse.columns import Extra, add_extras, check_extras, lake_extras

Progress = Callable[[int], None]
Checkpoint = Callable[[str], None]

#: Named points of a load, for reliability tests that kill the loader there (at the first one
#: reached) and for progress bars: after each batch's rows are written, after each batch is
#: merged, and before the commit.
CHECKPOINTS: Final = ("after_staging", "during_merge", "before_commit")


def _nothing(_: object) -> None:
    return None


def as_utc(moment: datetime | None) -> datetime | None:
    """A naive datetime is taken as UTC; an aware one is converted to UTC."""
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class LoadOptions(TypedDict, total=False):
    """How a load is asked to run: ``since`` keeps only courses starting at or after it (pushed
    down to the Parquet reader); ``wait`` is how long to wait for another loader; ``progress``
    hears of rows read; ``checkpoint`` is called at the names in :data:`CHECKPOINTS`."""

    since: datetime | None
    wait: float
    progress: Progress | None
    checkpoint: Checkpoint | None


@dataclass(frozen=True)
class LoadJob:
    """What a load is asked to do, whatever the engine."""

    lake: Lake
    warehouse: Warehouse
    since: datetime | None = None
    wait: float = 30.0
    progress: Progress = _nothing
    checkpoint: Checkpoint = _nothing

    @classmethod
    def create(
        cls, lake_url: str, warehouse_url: str | Warehouse, **options: Unpack[LoadOptions]
    ) -> LoadJob:
        """A job for the lake and warehouse named by their URLs; the lake must exist."""
        lake = open_lake(lake_url)
        if not lake.exists():
            raise missing_lake(lake.display)
        return cls(
            lake=lake,
            warehouse=Warehouse.from_url(warehouse_url),
            since=as_utc(options.get("since")),
            wait=options.get("wait", 30.0),
            progress=options.get("progress") or _nothing,
            checkpoint=options.get("checkpoint") or _nothing,
        )


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
    #: Batches not loaded because they do not match their ``_SUCCESS`` (loaded once whole).
    refused: tuple[str, ...] = ()
    #: What the user must hear of.
    warnings: tuple[str, ...] = ()
    #: The table versions this load read, oldest first.
    versions: tuple[int, ...] = ()
    #: Courses removed because the lake deleted them.
    cancelled: int = 0


@dataclass
class Plan:
    """One load under way: its id, the batches it merges (in order), the rules rows must meet."""

    job: LoadJob
    load_id: str
    batches: list[Batch]
    rules: Rules
    rejected: RejectedRows
    counts: dict[str, Counts] = field(default_factory=dict)
    refused: list[Batch] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The lake's dimension rows, checked, by table name (read when there is a batch to load).
    snapshots: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    #: The lake table's id, and the commits this load reads (after the last loaded version).
    table_id: str = ""
    commits: list[Commit] = field(default_factory=list)
    removals: list[Removal] = field(default_factory=list)
    cancelled: int = 0
    #: Columns of the lake's table beyond the catalog's own (added to the warehouse).
    extras: list[Extra] = field(default_factory=list)


class EnginePart(Protocol):
    """What an engine supplies to the frame: the middle of a load."""

    #: Whether :meth:`stage` writes through connections of its own (Spark's executors): the
    #: merge then starts a new transaction, so that it sees what they committed.
    stages_apart: bool

    def prepare(self, connection: Connection) -> None:
        """Inside the transaction, before anything is read (e.g. remove leftovers)."""

    def stage(self, plan: Plan) -> None:
        """Before the merge: validate and stage every batch where the engine stages."""

    def write(self, plan: Plan, backend: Backend, batch: Batch, position: int) -> Counts:
        """Inside the transaction: write one batch's rows; returns its counts."""

    def merge(self, plan: Plan, backend: Backend, batch: Batch, position: int) -> None:
        """Inside the transaction: merge the batch's written rows into ``courses``."""

    def finish(self) -> None:
        """Always, after the transaction ended (committed or not)."""


def run_load(job: LoadJob, part: EnginePart) -> LoadResult:
    """Load every committed batch of ``job.lake`` not yet in the warehouse, with ``part``."""
    began, started_at = time.perf_counter(), datetime.now(UTC)
    load_id = new_id()
    rejected = RejectedRows(job.lake, load_id, job.warehouse.identity)
    engine = job.warehouse.engine(lock_timeout=job.wait)
    try:
        with engine.connect() as connection:
            backend = backend_for(connection, job.warehouse.display)
            backend.lock(job.wait)
            try:
                backend.begin()
                result = _load(job, part, connection, backend, load_id, rejected, started_at)
            finally:
                if connection.in_transaction():
                    connection.rollback()
                backend.unlock()
    except BaseException as exc:
        abandon(rejected, engine, load_id, started_at, job.since, exc)
        raise
    finally:
        part.finish()
        engine.dispose()
    return LoadResult(**{**result.__dict__, "seconds": time.perf_counter() - began})


def _load(
    job: LoadJob,
    part: EnginePart,
    connection: Connection,
    backend: Backend,
    load_id: str,
    rejected: RejectedRows,
    started_at: datetime,
) -> LoadResult:
    """The load's transaction, from the schema to the commit."""
    warehouse.ensure_schema(connection)
    job.lake.settle_rejected(
        lambda load_ids: manifest.committed_loads(connection, load_ids), job.warehouse.identity
    )
    part.prepare(connection)
    plan = plan_load(job, connection, load_id, rejected)
    add_extras(connection, plan.extras)
    part.stage(plan)
    if part.stages_apart:
        connection.commit()  # the load lock is still held: nobody else loaded meanwhile
        backend.begin()
    merge_snapshots(connection, backend, job.lake, plan.snapshots)
    totals, skipped = Counts(), 0
    by_version: dict[int, Counts] = {}
    removed: dict[int, int] = {}
    pending = list(plan.removals)
    for position, batch in enumerate(plan.batches):
        while pending and pending[0].version < (batch.version or 0):
            removal = pending.pop(0)
            removed[removal.version] = backend.remove_courses(removal.rows)
        counts = part.write(plan, backend, batch, position)
        job.checkpoint("after_staging")  # for each batch: a progress bar shows its merge
        part.merge(plan, backend, batch, position)
        manifest.record_merged_batch(connection, batch.batch_id, load_id, counts, job.since)
        job.checkpoint("during_merge")
        totals.merge(counts)
        by_version.setdefault(batch.version or 0, Counts()).merge(counts)
        skipped += batch.rows - counts.read
    for removal in pending:
        removed[removal.version] = backend.remove_courses(removal.rows)
    record_versions(connection, plan, by_version, removed)
    plan.cancelled = sum(removed.values())
    result = record_load(connection, plan, started_at, totals, skipped)
    job.checkpoint("before_commit")
    connection.commit()
    backend.after_commit(totals.loaded)
    if rejected.parts:
        job.lake.publish_rejected(load_id)  # a crash before this: the next load publishes them
    return result


def plan_load(job: LoadJob, connection: Connection, load_id: str, rejected: RejectedRows) -> Plan:
    """The batches and removals this load applies: the commits of the lake's table after the
    last version this warehouse loaded, in version order. A table other than the one loaded
    before is refused, naming both."""
    table = job.lake.delta()
    table_id, latest = str(table.metadata().id), int(table.version())
    schema = check_table_schema(table, job.lake.display)
    extras = lake_extras(schema, set(TABLE_SCHEMA.names))
    check_extras(connection, extras)
    position = manifest.lake_position(connection)
    if position is not None and position.table_id != table_id:
        raise LakeError(
            f"the lake {job.lake.display} holds another Delta table (id {table_id}) than the one "
            f"this warehouse loaded (id {position.table_id}, up to version {position.version}): "
            "nothing loaded; point --lake at that table's lake, or load into a new warehouse"
        )
    if position is not None and position.version > latest:
        raise LakeError(
            f"this warehouse loaded version {position.version} of the lake's table, which is "
            f"only at version {latest}: the table was restored to an earlier state; nothing "
            "loaded (load into a new warehouse)"
        )
    legacy = manifest.loaded_batch_ids(connection) if position is None else set()
    if position is None and not legacy and not job.lake.has_commit(0):
        # A warehouse that never loaded, and a log whose oldest entries expired (delta-rs
        # removes them after a checkpoint, 30 days by default): the table as it is now.
        commits = [latest_commit(table, latest)]
        found = snapshot_changes(job.lake, job.lake.live_files(table), commits[0])
    else:
        first = 0 if position is None else position.version + 1
        commits = job.lake.commits(first, latest) if first <= latest else []
        found = changes(job.lake, commits, frozenset(legacy))
    snapshots = read_snapshots(job.lake) if found.batches else {}
    plan = Plan(job, load_id, list(found.batches), rules_for(connection, snapshots), rejected)
    plan.snapshots = snapshots
    plan.warnings = [*(note for batch in found.batches for note in batch.notes), *found.warnings]
    plan.table_id, plan.commits, plan.removals = table_id, commits, list(found.removals)
    plan.extras = extras
    return plan


def latest_commit(table: Any, version: int) -> Commit:
    """The table's latest version as a commit record (its time and operation, from history)."""
    entries = table.history(1)
    info = entries[0] if entries else {}
    stamp = info.get("timestamp")
    moment = (
        datetime.fromtimestamp(stamp / 1000, UTC) if isinstance(stamp, int) else datetime.now(UTC)
    )
    return Commit(version=version, timestamp=moment, operation="SNAPSHOT")


def check_table_schema(table: Any, display: str) -> pa.Schema:
    """The table's schema; a table at the lake path that is not a table of courses is refused,
    naming what differs."""
    schema = pa.schema(table.schema().to_arrow())
    fields = {field.name: field.type for field in schema}
    problems = []
    for expected in TABLE_SCHEMA:
        found = fields.get(expected.name)
        if found is None:
            problems.append(f"no column {expected.name}")
        elif not _same_kind(found, expected.type):
            problems.append(f"{expected.name} is {found}, not {expected.type}")
    if problems:
        raise LakeError(
            f"the Delta table {display}/courses is not a table of courses ({'; '.join(problems)}):"
            " nothing loaded; point --lake at a coursemart lake"
        )
    return schema


def _same_kind(found: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_integer(expected):
        return bool(pa.types.is_integer(found))
    if pa.types.is_timestamp(expected):
        return bool(pa.types.is_timestamp(found))
    if pa.types.is_string(expected):
        return bool(pa.types.is_string(found) or pa.types.is_large_string(found))
    return bool(found == expected)


def record_versions(
    connection: Connection, plan: Plan, by_version: dict[int, Counts], removed: dict[int, int]
) -> None:
    """Every version this load read enters the manifest, with what it brought."""
    for commit in plan.commits:
        counts = by_version.get(commit.version, Counts())
        manifest.record_version(
            connection,
            table_id=plan.table_id,
            version=commit.version,
            load_id=plan.load_id,
            operation=commit.operation,
            counts=(counts.read, counts.loaded, counts.rejected, removed.get(commit.version, 0)),
            committed_at=commit.timestamp,
        )


def rules_for(connection: Connection, snapshots: dict[str, list[dict[str, object]]]) -> Rules:
    """The rules for this load: known categories and levels are the warehouse's and the
    snapshots' (rows absent from a snapshot are kept, so they stay valid)."""
    categories, levels = manifest.dimension_keys(connection)
    return Rules(
        categories | {int(str(r["category_id"])) for r in snapshots.get("categories", [])},
        levels | {int(str(r["level_id"])) for r in snapshots.get("levels", [])},
    )


def record_load(
    connection: Connection, plan: Plan, started_at: datetime, totals: Counts, skipped: int
) -> LoadResult:
    """Record the load in the history (inside its transaction) and return its result."""
    status = "loaded" if plan.commits else "nothing to do"
    message = "; ".join(filter(None, [reasons_text(totals.reasons), *plan.warnings]))
    manifest.record_load(
        connection,
        manifest.LoadRecord(
            load_id=plan.load_id,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            status=status,
            batches=len(plan.batches),
            rows_read=totals.read,
            rows_loaded=totals.loaded,
            rows_rejected=totals.rejected,
            since=plan.job.since,
            message=mask_text(message)[: manifest.MESSAGE_LENGTH] or None,
        ),
    )
    return LoadResult(
        load_id=plan.load_id,
        status=status,
        batches=tuple(batch.batch_id for batch in plan.batches),
        rows_read=totals.read,
        rows_loaded=totals.loaded,
        rows_rejected=totals.rejected,
        rows_skipped=skipped,
        reasons=totals.reasons,
        rejected_path=plan.rejected.folder if plan.rejected.rows else None,
        refused=tuple(batch.batch_id for batch in plan.refused),
        warnings=tuple(plan.warnings),
        versions=tuple(commit.version for commit in plan.commits),
        cancelled=plan.cancelled,
    )


def reasons_text(reasons: dict[str, int]) -> str:
    return ", ".join(f"{reason}: {count:,}" for reason, count in sorted(reasons.items()))


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
    manifest.record_failure(engine, load_id, started_at, since, exc)
