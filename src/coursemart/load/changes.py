"""What the commits after the last loaded version changed: the batches to merge and the courses
to remove, in version order.

- A commit that appends (adds files, removes none) brings its files as a batch per batch id
  (the partition value; a file without one takes the commit's derived id).
- A commit with change data files (a delete on a table with the change data feed, as every
  ``coursemart cancel`` and every delta-rs delete on coursemart's table writes them) removes the
  rows its ``delete`` changes name; the files it rewrote hold rows that were there already.
- A commit that removes files without change data (a writer that skipped the feed) removes the
  courses of the removed files that none of its added files still holds; its added files merge.
- Actions without ``dataChange`` (OPTIMIZE, compaction) change nothing and are not read.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from coursemart.errors import LakeError
from coursemart.lake import Batch, Commit, DataFile, Lake, batch_id_problem

#: The columns a removal is made of: the course, and the batch its removed row came from.
REMOVAL_SCHEMA = pa.schema([("course_id", pa.int64()), ("batch_id", pa.string())])


@dataclass(frozen=True)
class Removal:
    """Courses a version removed: each with the batch of the removed row, so that a row a
    later batch replaced in the warehouse is not removed with it."""

    version: int
    rows: pa.Table


@dataclass(frozen=True)
class Changes:
    """The batches to merge and the removals to apply, each in version order."""

    batches: tuple[Batch, ...] = ()
    removals: tuple[Removal, ...] = ()
    #: What the user must hear of: changes coursemart does not follow.
    warnings: tuple[str, ...] = ()


def changes(lake: Lake, commits: list[Commit], skip_batches: frozenset[str]) -> Changes:
    """The work ``commits`` hold. ``skip_batches``: batch ids the warehouse loaded before its
    lake became a Delta table (their converted commits are not loaded again)."""
    batches: list[Batch] = []
    removals: list[Removal] = []
    warnings: list[str] = []
    for commit in commits:
        removal: Removal | None
        if commit.changes:
            removal, updated = change_data_removal(lake, commit)
            if updated:
                warnings.append(
                    f"version {commit.version} ({commit.operation}) changed {updated:,} rows in "
                    "place: coursemart follows appends and deletes, not updates; write a change "
                    "as a row of a new batch (a greater batch_id), as `generate --reschedule` does"
                )
        else:
            for batch_id, files in files_by_batch(commit).items():
                if commit.is_append and batch_id in skip_batches:
                    continue
                notes = odd_batch_ids(commit, batch_id, files)
                batches.append(lake.open_batch(batch_id, files, commit.version, notes))
            removal = file_removal(lake, commit) if commit.removed else None
        if removal is not None and removal.rows.num_rows:
            removals.append(removal)
    return Changes(tuple(batches), tuple(removals), tuple(warnings))


def snapshot_changes(lake: Lake, files: list[DataFile], commit: Commit) -> Changes:
    """A first load's work: every live file of the table as of ``commit``, as batches (the
    greatest batch wins in the merge, so their order is that of their ids)."""
    batches = [
        lake.open_batch(batch_id, group, commit.version, odd_batch_ids(commit, batch_id, group))
        for batch_id, group in files_by_batch(commit, files).items()
    ]
    return Changes(tuple(batches), ())


def files_by_batch(
    commit: Commit, files: tuple[DataFile, ...] | list[DataFile] | None = None
) -> dict[str, tuple[DataFile, ...]]:
    """The commit's added files (or ``files``) grouped by batch id, in the order of their
    names."""
    groups: dict[str, list[DataFile]] = {}
    for file in sorted(commit.added if files is None else files, key=lambda file: file.path):
        groups.setdefault(batch_of(commit, file), []).append(file)
    return {batch_id: tuple(files) for batch_id, files in sorted(groups.items())}


def batch_of(commit: Commit, file: DataFile) -> str:
    """The batch a file's rows load as: its partition value, else the batch the commit names,
    else one derived from the commit; a value that is not a batch id (another writer's) is
    passed over, so that the warehouse's lineage column can hold it."""
    for candidate in (file.batch_id, commit.batch_id):
        if candidate and batch_id_problem(candidate) is None:
            return candidate
    return commit.derived_batch_id


def odd_batch_ids(commit: Commit, batch_id: str, files: tuple[DataFile, ...]) -> tuple[str, ...]:
    """A warning for each partition value passed over by :func:`batch_of`, naming it."""
    odd = sorted({file.batch_id for file in files if file.batch_id and file.batch_id != batch_id})
    return tuple(
        f"version {commit.version}: batch_id {value!r} {batch_id_problem(value)}: "
        f"its rows load as batch {batch_id}"
        for value in odd
    )


def _ids(lake: Lake, file: DataFile, where: str) -> pa.Array:
    table = _read(lake, file, ["course_id"], where)
    return pc.drop_null(table["course_id"].combine_chunks().cast(pa.int64()))


def _read(lake: Lake, file: DataFile, columns: list[str], where: str) -> pa.Table:
    try:
        return pa.Table.from_batches(
            list(lake.read_file_batches(file.path, columns=columns)),
            schema=None,
        )
    except LakeError as exc:
        raise LakeError(f"{where}: {exc}") from exc
    except ValueError:  # no batches at all: an empty file
        return pa.table({name: pa.array([], pa.int64()) for name in columns})


def change_data_removal(lake: Lake, commit: Commit) -> tuple[Removal, int]:
    """The rows a commit's change data files record as deleted, and how many rows it updated
    or inserted in place (an UPDATE or MERGE by another writer), which coursemart does not
    follow."""
    pieces = []
    updated = 0
    for file in commit.changes:
        where = f"version {commit.version}'s change data"
        rows = _read(lake, file, ["course_id", "_change_type"], where)
        deleted = rows.filter(pc.equal(rows["_change_type"], "delete"))
        changed = pc.is_in(rows["_change_type"], value_set=pa.array(["update_postimage", "insert"]))
        updated += int(pc.sum(changed).as_py() or 0)
        batch_id = file.batch_id or commit.derived_batch_id
        pieces.append(_removal_rows(deleted["course_id"], batch_id))
    return Removal(commit.version, _concat(pieces)), updated


def file_removal(lake: Lake, commit: Commit) -> Removal:
    """The courses of a commit's removed files that none of its added files holds."""
    where = f"version {commit.version} removed a file and wrote no change data"
    kept = [_ids(lake, file, where) for file in commit.added]
    still = pa.chunked_array(kept, pa.int64()) if kept else pa.chunked_array([], pa.int64())
    pieces = []
    for file in commit.removed:
        ids = _ids(lake, file, where)
        gone = ids.filter(pc.invert(pc.is_in(ids, value_set=still.combine_chunks())))
        pieces.append(_removal_rows(gone, file.batch_id or commit.derived_batch_id))
    return Removal(commit.version, _concat(pieces))


def _removal_rows(ids: pa.Array | pa.ChunkedArray, batch_id: str) -> pa.Table:
    column = pa.array(ids.to_pylist() if isinstance(ids, pa.ChunkedArray) else ids, pa.int64())
    return pa.table(
        {"course_id": column, "batch_id": pa.array([batch_id] * len(column), pa.string())},
        schema=REMOVAL_SCHEMA,
    )


def _concat(pieces: list[pa.Table]) -> pa.Table:
    """The removal rows in ``course_id`` order: a warehouse then walks its key index in order
    (a fifth faster for 100,000 random courses among 10 million on PostgreSQL)."""
    if not pieces:
        return REMOVAL_SCHEMA.empty_table()
    return pa.concat_tables(pieces).sort_by([("course_id", "ascending")])
