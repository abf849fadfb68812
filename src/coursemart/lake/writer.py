"""Writing a batch: part files into ``courses/batch_id=<id>/``, then one Delta commit.

Until the commit, no reader sees the files (Delta readers list only what the log names). A
generate killed before it leaves a folder the log never named: ``coursemart lake vacuum`` (or
the next generate on that lake) removes it, never a reader.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from coursemart.errors import LakeError
from coursemart.lake.contents import Batch, is_part_file
from coursemart.lake.delta_log import (
    PARTITION,
    WRITING_MARK,
    DataFile,
    file_statistics,
    footer_statistics,
)
from coursemart.lake.delta_writes import TableWrites
from coursemart.lake.parquet import PARQUET_COMPRESSION, ROW_GROUP_ROWS
from coursemart.lake.store import BATCH_PREFIX


class BatchFiles(TableWrites):
    """Batches as the writer and the loader see them."""

    def batch_writer(self, batch_id: str, schema: pa.Schema) -> BatchWriter:
        """A writer for a new batch; only its :meth:`BatchWriter.commit` makes it visible."""
        return BatchWriter(self, batch_id, schema)

    def open_batch(
        self,
        batch_id: str,
        files: tuple[DataFile, ...],
        version: int | None = None,
        notes: tuple[str, ...] = (),
    ) -> Batch:
        """A batch of committed data files (of table ``version``) as a loader reads it: their
        footers read first, so a file the log names that is missing or damaged fails the load,
        naming it, before any row is written."""
        parts = tuple(file.path for file in files)
        footers = {}
        for path in parts:
            try:
                footers[path] = self.footer(path)
            except LakeError as exc:
                if self.fs.exists(path):
                    raise
                named = "the table's log" if version is None else f"version {version} of the table"
                raise LakeError(
                    f"{path} is missing, though {named} names it: restore the file from a copy; "
                    "nothing was loaded"
                ) from exc
        return Batch(batch_id, parts, footers, version=version, notes=notes)

    def folder_files(self, batch_id: str) -> list[str]:
        """The part files in a batch's folder, committed or not."""
        folder = self.batch_dir(batch_id)
        self.fs.invalidate_cache(folder)
        try:
            names = [str(name).rstrip("/") for name in self.fs.ls(folder, detail=False)]
        except FileNotFoundError:
            return []
        return sorted(name for name in names if is_part_file(name.rsplit("/", 1)[-1]))

    def uncommitted_batches(self) -> list[str]:
        """Ids of batch folders a coursemart writer has not committed (being written, or left
        by a killed generate): invisible to every reader."""
        from coursemart.lake.upkeep import leftover_folders

        folders = leftover_folders(self, grace_seconds=float("inf"))
        return sorted(folder.rsplit("/", 1)[-1][len(BATCH_PREFIX) :] for folder in folders)

    @contextmanager
    def generate_lock(self) -> Iterator[None]:
        """One generate at a time on a local lake, so two runs never take the same course ids.

        A local lake uses an advisory lock on ``<lake>/.generate.lock`` (the second run waits).
        Object stores have no such lock: run one generate at a time per lake there (two commits
        racing are both kept: delta-rs retries the loser on the next version).
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

    Leaving the ``with`` block without committing (an error, a signal) removes what was written;
    a kill leaves files the log never names, which no reader sees.
    """

    def __init__(self, lake: BatchFiles, batch_id: str, schema: pa.Schema) -> None:
        self.lake = lake
        self.batch_id = batch_id
        self.schema = schema
        self.rows = 0
        self.bytes = 0
        self.parts: list[str] = []
        self.statistics: dict[str, str] = {}
        self.max_id: int | None = None
        #: The table's version whose data ``max_id`` includes (see :meth:`continue_after`).
        self.seen_version: int | None = None
        self.version: int | None = None
        self.committed = False
        self._next_part = 0
        self._lock = threading.Lock()
        if not lake.fs.exists(lake.batch_dir(batch_id)):
            lake.check_writable()  # once, by the writer that starts the batch (not each executor)
        lake.fs.makedirs(lake.batch_dir(batch_id), exist_ok=True)
        lake.fs.pipe_file(self.mark, b"")  # a killed write is known by it (lake/upkeep.py)

    @property
    def mark(self) -> str:
        return f"{self.lake.batch_dir(self.batch_id)}/{WRITING_MARK}"

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
        self.add_part(path, table.num_rows, self.lake.fs.size(path), file_statistics(table))
        if table.num_rows:
            self.note_ids(int(pc.max(table["course_id"]).as_py()))
        return path

    def continue_after(self, largest: int, version: int | None) -> None:
        """The batch follows the table's data at ``version``, whose largest course id is
        ``largest``: the commit records the largest of that and of the batch's own ids."""
        self.seen_version = version
        self.note_ids(largest)

    def note_ids(self, largest: int) -> None:
        """Remember the largest course id written so far."""
        with self._lock:
            self.max_id = largest if self.max_id is None else max(self.max_id, largest)

    def add_part(self, path: str, rows: int, size: int, statistics: str) -> None:
        """Count a part file written into the batch's folder (by this writer or elsewhere)."""
        with self._lock:
            self.parts.append(path)
            self.statistics[path] = statistics
            self.rows += rows
            self.bytes += size

    def adopt_parts(self) -> None:
        """Count the part files that other writers (Spark's executors) put in the batch."""
        for path in self.lake.folder_files(self.batch_id):
            if path not in self.parts:
                footer = self.lake.footer(path)
                self.add_part(
                    path, int(footer.num_rows), self.lake.fs.size(path), footer_statistics(footer)
                )
                self.note_ids(self.lake.largest_id(path))

    def commit(self) -> None:
        """Commit every part file to the table in one version: from now on readers see the
        batch. Two commits racing are both kept (delta-rs retries the later one)."""
        from deltalake.transaction import AddAction

        now = int(time.time() * 1000)
        actions = [
            AddAction(
                path=f"{BATCH_PREFIX}{self.batch_id}/{path.rsplit('/', 1)[-1]}",
                size=self.lake.fs.size(path),
                partition_values={PARTITION: self.batch_id},
                modification_time=now,
                data_change=True,
                stats=self.statistics[path],
            )
            for path in sorted(self.parts)
        ]
        known = None if self.max_id is None else (self.max_id, self.seen_version)
        self.version = self.lake.commit_files(self.batch_id, actions, known)
        self.committed = True
        try:
            self.lake.fs.rm(self.mark)
        except OSError:
            pass  # a committed batch's folder is never taken for a leftover

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
