"""Keeping the lake: converting a lake of the earlier layout in place, removing what killed
writes left behind, and deleting courses.

``convert`` commits each whole batch folder (its ``_SUCCESS`` matching what the folder holds)
as one version of a new Delta table partitioned by ``batch_id``, in batch order, without moving
or rewriting a byte: the folder names already are the partition's. Folders without ``_SUCCESS``,
or that do not match it, are left aside and named. A warehouse loaded from the old layout needs
nothing: its manifest holds the batch ids, and a first load after the conversion skips them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from coursemart.errors import InputError, LakeError
from coursemart.lake.delta import CourseTable
from coursemart.lake.delta_log import PARTITION, WRITING_MARK, footer_statistics
from coursemart.lake.store import BATCH_PREFIX, COURSES_DIR

if TYPE_CHECKING:
    from coursemart.lake import Lake

#: How long a batch folder without the mark must sit uncommitted before vacuum takes it for the
#: leftover of another writer (a writer elsewhere may still be busy with a younger one).
FOREIGN_GRACE_SECONDS: Final = 3600.0


@dataclass(frozen=True)
class Conversion:
    """What ``coursemart lake convert`` did."""

    converted: tuple[str, ...] = ()
    already: tuple[str, ...] = ()
    left_aside: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    version: int | None = None


def convert(lake: Lake) -> Conversion:
    """Commit every whole batch folder of the earlier layout into the courses Delta table."""
    from deltalake.transaction import AddAction

    listing = lake.listing()
    if not listing.committed and not lake.is_delta():
        raise LakeError(
            f"{lake.display} has no committed batch folder to convert (nothing under "
            f"{COURSES_DIR}/{BATCH_PREFIX}<id>/ with a _SUCCESS)"
        )
    present = set(lake.committed_batches())
    converted, already, aside = (
        [],
        [],
        [
            (batch_id, "has no _SUCCESS (still being written, or interrupted)")
            for batch_id in listing.uncommitted
        ],
    )
    aside += [(name, why) for name, why in listing.skipped]
    version = None
    for batch_id in listing.committed:
        if batch_id in present:
            already.append(batch_id)
            continue
        batch = lake.open_legacy_batch(batch_id)
        if batch.refused:
            aside.append((batch_id, "does not match its _SUCCESS: " + "; ".join(batch.problems)))
            continue
        now = int(time.time() * 1000)
        actions = [
            AddAction(
                path=f"{BATCH_PREFIX}{batch_id}/{path.rsplit('/', 1)[-1]}",
                size=int(lake.fs.size(path)),
                partition_values={PARTITION: batch_id},
                modification_time=now,
                data_change=True,
                stats=footer_statistics(batch.footers[path]),
            )
            for path in batch.parts
        ]
        version = lake.commit_files(batch_id, actions)
        converted.append(batch_id)
    return Conversion(tuple(converted), tuple(already), tuple(sorted(aside)), version)


@dataclass(frozen=True)
class Vacuum:
    """What ``coursemart lake vacuum`` removed."""

    folders: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


def leftover_folders(lake: CourseTable, grace_seconds: float) -> list[str]:
    """Batch folders no commit names: those coursemart's writer marked (a killed generate),
    and those older than ``grace_seconds`` without the mark (another writer's leftovers)."""
    courses = lake.path(COURSES_DIR)
    lake.fs.invalidate_cache(courses)
    try:
        entries = lake.fs.ls(courses, detail=True)
    except FileNotFoundError:
        return []
    table = lake.is_delta()
    live = {file.batch_id for file in lake.live_files()} if table else set()
    now = time.time()
    found = []
    for entry in entries:
        name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
        if entry.get("type") != "directory" or not name.startswith(BATCH_PREFIX):
            continue
        batch_id = name[len(BATCH_PREFIX) :]
        if batch_id in live:
            continue
        folder = f"{courses}/{name}"
        lake.fs.invalidate_cache(folder)
        inside = lake.fs.ls(folder, detail=True)
        marked = any(str(e["name"]).endswith("/" + WRITING_MARK) for e in inside)
        newest = max((_mtime(e) for e in inside), default=0.0)
        # Without a table, an unmarked folder is no leftover: it may be a batch of the earlier
        # layout (committed by its _SUCCESS), or another tool's data.
        old = table and newest and now - newest >= grace_seconds
        if marked or (old and not _named(lake, batch_id)):
            found.append(folder)
    return found


def _named(lake: CourseTable, batch_id: str) -> bool:
    """Whether any commit of the table's history names the batch (its rows since deleted)."""
    if not lake.is_delta():
        return False
    return any(entry.get("coursemart.batch_id") == batch_id for entry in lake.delta().history())


def _mtime(entry: dict[str, object]) -> float:
    value = entry.get("mtime") or entry.get("last_modified") or entry.get("created") or 0
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)  # type: ignore[arg-type]


def remove_leftovers(lake: CourseTable, grace_seconds: float = FOREIGN_GRACE_SECONDS) -> list[str]:
    """Remove the batch folders no commit names (see :func:`leftover_folders`)."""
    removed = []
    for folder in leftover_folders(lake, grace_seconds):
        try:
            lake.fs.rm(folder, recursive=True)
            removed.append(folder)
        except FileNotFoundError:
            continue
    return removed


def vacuum(lake: Lake, *, retention_hours: int, grace_seconds: float) -> Vacuum:
    """Remove what killed writes left (under the generate lock on a local lake), then the
    files the table stopped naming more than ``retention_hours`` ago (delta-rs's vacuum).
    A lake of the earlier layout is refused: its batch folders are what it holds."""
    if not lake.is_delta() and lake.has_batch_folders():
        raise lake.not_a_table()
    with lake.generate_lock():
        folders = remove_leftovers(lake, grace_seconds)
    files: list[str] = []
    if lake.is_delta():
        files = list(
            lake.delta().vacuum(
                retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False
            )
        )
    return Vacuum(tuple(folders), tuple(files))


@dataclass(frozen=True)
class Cancellation:
    """What ``coursemart cancel`` deleted: the version of the delete and its rows."""

    version: int | None
    rows: int


def check_ids(ids: list[int]) -> None:
    """Course ids are positive integers that a BIGINT holds."""
    bad = [course_id for course_id in ids if not 0 < course_id < 2**63]
    if bad:
        raise InputError(f"course ids are positive integers below 2^63; got {bad[0]}")


def starting_before(lake: Lake, before: datetime) -> list[int]:
    """The courses whose current row (that of the greatest batch) starts before ``before``.

    Read in two passes with pushed-down filters, so memory follows the candidates, not the
    table: the ids with any row before the time, then every row of those ids."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    moment = before.astimezone(UTC) if before.tzinfo else before.replace(tzinfo=UTC)
    rows = lake.delta().to_pyarrow_dataset()
    limit = pa.scalar(moment, pa.timestamp("us", "UTC"))
    early = rows.to_table(columns=["course_id"], filter=ds.field("start_date") < limit)
    candidates = pc.unique(early["course_id"].combine_chunks())
    if len(candidates) == 0:
        return []
    found = rows.to_table(
        columns=["course_id", "batch_id", "start_date"],
        filter=ds.field("course_id").isin(candidates),
    )
    newest = found.group_by("course_id").aggregate([("batch_id", "max")])
    newest = newest.rename_columns(["course_id", "batch_id"])
    current = newest.join(found, keys=["course_id", "batch_id"])
    chosen = current.filter(pc.less(current["start_date"], limit))
    return sorted(int(course_id) for course_id in pc.unique(chosen["course_id"]).to_pylist())


def cancel(lake: Lake, ids: list[int], before: datetime | None) -> Cancellation:
    """Delete the courses from the lake's table, every row of each, as one commit with its
    change data: the next load removes them from each warehouse. ``before`` names the courses
    whose current row starts before that time."""
    if ids and before is not None:
        raise InputError("cancel takes course ids or --before, not both")
    if not ids and before is None:
        raise InputError("name the courses to cancel: course ids, or --before DATE")
    if not lake.is_delta():
        raise lake.not_a_table()
    chosen = ids if before is None else starting_before(lake, before)
    if not chosen:
        return Cancellation(None, 0)
    check_ids(chosen)
    version, rows = lake.delete_courses(chosen)
    return Cancellation(version if rows else None, rows)
