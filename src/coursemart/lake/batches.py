"""Course batches: one folder per generate run, written part by part, committed by ``_SUCCESS``.

Folders and files are listed, never globbed, so every name is taken literally.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from coursemart.lake.contents import (
    Batch,
    PartRecord,
    SuccessRecord,
    batch_id_problem,
    file_problems,
    is_part_file,
    row_problems,
)
from coursemart.lake.parquet import (
    INT64_MAX,
    PARQUET_COMPRESSION,
    ROW_GROUP_ROWS,
    ParquetFiles,
    column_range,
    ids_as_int64,
)
from coursemart.lake.store import BATCH_PREFIX, COURSES_DIR, SUCCESS


def below(folder: str, path: str) -> str:
    """``path`` relative to ``folder`` (filesystems differ on a leading ``/``)."""
    base, full = folder.strip("/"), path.strip("/")
    return full[len(base) + 1 :] if full.startswith(base + "/") else ""


@dataclass(frozen=True)
class Listing:
    """The batch folders of a lake: committed ones (valid ids, ``_SUCCESS`` present), folders
    still being written, and folders skipped with the reason."""

    committed: tuple[str, ...] = ()
    uncommitted: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()

    def warnings(self) -> list[str]:
        """One line per skipped folder, naming it."""
        return [f"skipped {COURSES_DIR}/{name}: {why}" for name, why in self.skipped]


def _folder_problem(name: str, info: dict[str, Any]) -> str | None:
    """Why a ``batch_id=`` folder is not read, or None."""
    if info.get("islink"):
        return "is a symbolic link: coursemart does not follow links in the lake; copy the batch in"
    problem = batch_id_problem(name[len(BATCH_PREFIX) :])
    return f"its batch id {problem}; rename the folder" if problem else None


class Batches(ParquetFiles):
    """Listing, checking, reading and writing course batches."""

    def _entries(self, folder: str) -> list[dict[str, Any]]:
        """What ``folder`` holds (name, type, size), listed literally; empty when missing."""
        self.fs.invalidate_cache(folder)  # object stores cache listings: a batch may be new
        try:
            entries: list[dict[str, Any]] = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return []
        return entries

    def listing(self) -> Listing:
        """Every ``batch_id=`` folder, in one listing of ``courses/`` two levels deep.

        A folder whose name is not a valid batch id, or that is a symbolic link, is skipped
        (never half-read); the caller warns about it.
        """
        courses = self.path(COURSES_DIR)
        self.fs.invalidate_cache(courses)
        try:
            found = self.fs.find(courses, maxdepth=2, withdirs=True, detail=True)
        except FileNotFoundError:
            return Listing()
        folders: dict[str, bool] = {}
        skipped: dict[str, str] = {}
        for path, info in found.items():
            folder, _, name = below(courses, str(path)).partition("/")
            if not folder.startswith(BATCH_PREFIX) or folder in skipped:
                continue
            if not name:
                problem = _folder_problem(folder, info)
                if problem:
                    skipped[folder] = problem
                    folders.pop(folder, None)
                    continue
            done = name == SUCCESS and info.get("type") == "file"
            folders[folder] = folders.get(folder, False) or done
        ids = {folder[len(BATCH_PREFIX) :]: done for folder, done in folders.items()}
        return Listing(
            committed=tuple(sorted(batch_id for batch_id, done in ids.items() if done)),
            uncommitted=tuple(sorted(batch_id for batch_id, done in ids.items() if not done)),
            skipped=tuple(sorted(skipped.items())),
        )

    def committed_batches(self) -> list[str]:
        """Ids of the batches that have ``_SUCCESS``, oldest first."""
        return list(self.listing().committed)

    def uncommitted_batches(self) -> list[str]:
        """Ids of batch folders without ``_SUCCESS``: interrupted writes, invisible to readers."""
        return list(self.listing().uncommitted)

    def pending_batches(self, loaded: set[str], listing: Listing | None = None) -> list[str]:
        """Committed batches not in ``loaded``, in the order they must be merged.

        Batch ids sort by time, and for each course the row from the greatest batch id wins:
        merging oldest first lets a later batch overwrite an earlier one within a load, and a
        greater batch id already stored keeps a late older batch from overwriting it.
        """
        committed = (listing or self.listing()).committed
        return [batch_id for batch_id in committed if batch_id not in loaded]

    def batch_files(self, batch_id: str) -> list[str]:
        """The part files of a batch, in order."""
        names = [str(e["name"]).rstrip("/") for e in self._entries(self.batch_dir(batch_id))]
        return sorted(name for name in names if is_part_file(name.rsplit("/", 1)[-1]))

    def success_record(self, batch_id: str) -> SuccessRecord:
        """What the batch's ``_SUCCESS`` says it holds."""
        return SuccessRecord.parse(self.fs.cat_file(f"{self.batch_dir(batch_id)}/{SUCCESS}"))

    def open_batch(self, batch_id: str) -> Batch:
        """A committed batch checked against its ``_SUCCESS`` before any row is read.

        Names and sizes are compared first (an incomplete copy is refused without reading it),
        then the footers' row counts. Files that are not part files are noted, never read.
        """
        folder = self.batch_dir(batch_id)
        files = {
            str(e["name"]).rstrip("/").rsplit("/", 1)[-1]: int(e.get("size") or 0)
            for e in self._entries(folder)
            if e.get("type") == "file"
        }
        record = self.success_record(batch_id)
        sizes = {name: size for name, size in files.items() if is_part_file(name)}
        notes = tuple(
            f"batch {batch_id}: {name} is not a part file (part-*.parquet): not read"
            for name in sorted(set(files) - set(sizes) - {SUCCESS})
        )
        problems = file_problems(record, sizes)
        if problems:
            return Batch(batch_id, problems=tuple(problems), notes=notes)
        parts = tuple(f"{folder}/{name}" for name in sorted(sizes))
        footers = {path: self.footer(path) for path in parts}
        rows = {path.rsplit("/", 1)[-1]: int(footers[path].num_rows) for path in parts}
        problems = row_problems(record, rows)
        return Batch(batch_id, parts, footers, tuple(problems), notes)

    def batch_row_count(self, batch_id: str) -> int:
        """Rows in a committed batch, from the file footers."""
        return sum(self.file_rows(path) for path in self.batch_files(batch_id))

    def read_batches(
        self,
        batch_ids: Sequence[str],
        *,
        since: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        """Stream the rows of ``batch_ids`` as ``(batch_id, record batch)``, in batch order."""
        for batch_id in batch_ids:
            for path in self.batch_files(batch_id):
                for record_batch in self.read_file_batches(path, since=since, columns=columns):
                    yield batch_id, record_batch

    def max_course_id(self) -> int:
        """The largest ``course_id`` a BIGINT holds in committed batches (0 when there is none).

        From each batch's ``_SUCCESS`` record; for a batch written without one, from the part
        files' footer statistics (a file without them is read, its id column only; a file whose
        ids are not integers is passed over, since the loader refuses its rows)."""
        largest = 0
        for batch_id in self.committed_batches():
            recorded = self.success_record(batch_id).max_id
            if recorded is not None:  # what the batch held when it was written
                largest = max(largest, recorded)
                continue
            for path in self.batch_files(batch_id):
                largest = max(largest, self.largest_id(path))
        return largest

    def largest_id(self, path: str) -> int:
        metadata = self.footer(path)
        schema = metadata.schema.to_arrow_schema()
        if metadata.num_rows == 0 or "course_id" not in schema.names:
            return 0
        if not pa.types.is_integer(schema.field("course_id").type):
            return 0
        span = column_range(metadata, "course_id")
        if span is not None and span[1] <= INT64_MAX:
            return span[1]
        ids = (batch.column(0) for batch in self.read_file_batches(path, columns=["course_id"]))
        found = [int(chunk.max()) for chunk in map(ids_as_int64, ids) if len(chunk)]
        return max(found, default=0)

    def batch_writer(self, batch_id: str, schema: pa.Schema) -> BatchWriter:
        """A writer for a new batch; only its :meth:`BatchWriter.commit` makes it visible."""
        return BatchWriter(self, batch_id, schema)

    @contextmanager
    def generate_lock(self) -> Iterator[None]:
        """One generate at a time on a local lake, so two runs never take the same course ids.

        A local lake uses an advisory lock on ``<lake>/.generate.lock`` (the second run waits).
        Object stores have no such lock: run one generate at a time per lake there.
        """
        if not self.is_local:
            yield
            return
        with open(self.path(".generate.lock"), "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class BatchWriter:
    """Writes one batch of part files; only :meth:`commit` makes it visible to readers.

    Leaving the ``with`` block without committing (an error, a signal) leaves no ``_SUCCESS``,
    so readers never see the partial batch.
    """

    def __init__(self, lake: Batches, batch_id: str, schema: pa.Schema) -> None:
        self.lake = lake
        self.batch_id = batch_id
        self.schema = schema
        self.rows = 0
        self.bytes = 0
        self.parts: list[str] = []
        self.records: list[PartRecord] = []
        self.max_id: int | None = None
        self.committed = False
        self._next_part = 0
        self._lock = threading.Lock()
        lake.fs.makedirs(lake.batch_dir(batch_id), exist_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and not self.committed:
            self.abort()

    def write_part(self, table: pa.Table, part: int | None = None) -> str:
        """Write ``table`` as part file number ``part`` (default: the next), sorted by
        ``start_date`` then ``course_id``. Safe to call from several threads with distinct parts.
        """
        table = table.select(self.schema.names).cast(self.schema)
        if not is_sorted_by_start(table):
            table = table.sort_by([("start_date", "ascending"), ("course_id", "ascending")])
        with self._lock:
            if part is None:
                part = self._next_part
            self._next_part = max(self._next_part, part + 1)
        path = f"{self.lake.batch_dir(self.batch_id)}/part-{part:05d}.parquet"
        pq.write_table(
            table,
            path,
            filesystem=self.lake.arrow_fs,
            compression=PARQUET_COMPRESSION,
            row_group_size=ROW_GROUP_ROWS,
            write_statistics=True,
            # Names, categories and levels repeat; ids and dates hardly do: dictionaries only
            # where they pay (smaller files, and a third faster to write).
            use_dictionary=["course_name", "category_id", "level_id"],
        )
        self.add_part(path, table.num_rows, self.lake.fs.size(path))
        if table.num_rows:
            self.note_ids(int(pc.max(table["course_id"]).as_py()))
        return path

    def note_ids(self, largest: int) -> None:
        """Remember the largest course id written so far."""
        with self._lock:
            self.max_id = largest if self.max_id is None else max(self.max_id, largest)

    def add_part(self, path: str, rows: int, size: int) -> None:
        """Count a part file written into the batch's folder (by this writer or elsewhere)."""
        with self._lock:
            self.parts.append(path)
            self.records.append(PartRecord(path.rsplit("/", 1)[-1], rows, size))
            self.rows += rows
            self.bytes += size

    def adopt_parts(self) -> None:
        """Count the part files that other writers (Spark's executors) put in the batch."""
        for path in self.lake.batch_files(self.batch_id):
            if path not in self.parts:
                self.add_part(path, self.lake.file_rows(path), self.lake.fs.size(path))
                self.note_ids(self.lake.largest_id(path))

    def commit(self) -> None:
        """Write ``_SUCCESS`` last, recording every part file with its rows and bytes: from now on
        readers see the batch, and it never changes."""
        parts = tuple(sorted(self.records, key=lambda part: part.file))
        record = SuccessRecord(rows=self.rows, parts=parts, max_id=self.max_id)
        marker = record.to_json(self.batch_id)
        self.lake.fs.pipe_file(f"{self.lake.batch_dir(self.batch_id)}/{SUCCESS}", marker)
        self.committed = True

    def abort(self) -> None:
        """Remove what was written; best effort, since an uncommitted batch is invisible anyway."""
        try:
            self.lake.fs.rm(self.lake.batch_dir(self.batch_id), recursive=True)
        except OSError:
            pass


def is_sorted_by_start(table: pa.Table) -> bool:
    """Whether rows are ordered by ``start_date`` then ``course_id`` (checked without sorting)."""
    dates = table["start_date"].cast(pa.int64()).to_numpy()
    ids = table["course_id"].to_numpy()
    date_step, id_step = np.diff(dates), np.diff(ids)
    return bool(np.all((date_step > 0) | ((date_step == 0) & (id_step > 0))))
