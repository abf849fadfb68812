"""The lake: one layout for every engine and every storage.

```
<lake>/categories.csv                        dimension snapshot, replaced atomically
<lake>/levels.csv
<lake>/courses/batch_id=<id>/part-*.parquet  one folder per generate run, never modified
<lake>/courses/batch_id=<id>/_SUCCESS        written last: a batch without it does not exist
<lake>/_rejected/load_id=<id>/part-0.parquet rows the loader refused, with a ``reason`` column
```

Local folders and fsspec URLs (``abfs://``, ``s3://``, ``memory://``) go through the same code.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import secrets
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Self

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from coursemart.errors import LakeError, UnwritableLakeError

COURSES_DIR: Final = "courses"
REJECTED_DIR: Final = "_rejected"
SUCCESS: Final = "_SUCCESS"
BATCH_PREFIX: Final = "batch_id="
PARQUET_COMPRESSION: Final = "zstd"
ROW_GROUP_ROWS: Final = 128 * 1024
DIMENSIONS: Final = ("categories", "levels")


@dataclass(frozen=True)
class Lake:
    """A lake root on some filesystem."""

    url: str
    fs: fsspec.AbstractFileSystem
    root: str
    arrow_fs: pafs.FileSystem = field(repr=False)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str) -> str:
        """Join ``parts`` below the lake root."""
        return "/".join([self.root.rstrip("/"), *parts])

    def batch_dir(self, batch_id: str) -> str:
        return self.path(COURSES_DIR, f"{BATCH_PREFIX}{batch_id}")

    def dimension_path(self, name: str) -> str:
        return self.path(f"{name}.csv")


def open_lake(url: str, *, create: bool = False) -> Lake:
    """Open the lake at ``url`` (folder or fsspec URL); ``create`` makes sure it is writable."""
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise LakeError(f"cannot open lake {url!r}: {exc}") from exc
    arrow_fs: pafs.FileSystem
    if isinstance(fs, LocalFileSystem):
        arrow_fs = pafs.LocalFileSystem()
        if create:
            _prepare_local_root(url, root)
    else:
        arrow_fs = pafs.PyFileSystem(pafs.FSSpecHandler(fs))
        if create:
            fs.makedirs(root, exist_ok=True)
    return Lake(url=url, fs=fs, root=root, arrow_fs=arrow_fs)


def _prepare_local_root(url: str, root: str) -> None:
    if os.path.exists(root) and not os.path.isdir(root):
        raise UnwritableLakeError(f"lake path {url!r} is a file, not a folder: choose a folder")
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise UnwritableLakeError(
            f"cannot create lake folder {url!r}: {exc.strerror}; choose a writable folder"
        ) from exc
    probe = os.path.join(root, f".write-probe-{uuid.uuid4().hex}")
    try:
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise UnwritableLakeError(
            f"lake folder {url!r} is not writable ({exc.strerror}): "
            "fix its permissions or choose another folder"
        ) from exc


@contextmanager
def generate_lock(lake: Lake) -> Iterator[None]:
    """One generate at a time on a local lake, so two runs never take the same course ids.

    A local lake uses an advisory lock on ``<lake>/.generate.lock`` (the second run waits). Object
    stores have no such lock: run one generate at a time per lake there.
    """
    if not lake.is_local:
        yield
        return
    with open(lake.path(".generate.lock"), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def new_id(now: datetime | None = None) -> str:
    """A batch or load id that sorts by time: ``20261127T102455.123456Z-3f2a``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(2)}"


# ---------------------------------------------------------------------------------------------
# Course batches


class BatchWriter:
    """Writes one batch of part files; only :meth:`commit` makes it visible to readers.

    Leaving the ``with`` block without committing (an error, a signal) leaves no ``_SUCCESS``,
    so readers never see the partial batch.
    """

    def __init__(self, lake: Lake, batch_id: str, schema: pa.Schema) -> None:
        self.lake = lake
        self.batch_id = batch_id
        self.schema = schema
        self.rows = 0
        self.bytes = 0
        self.parts: list[str] = []
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
        size = self.lake.fs.size(path)
        with self._lock:
            self.parts.append(path)
            self.rows += table.num_rows
            self.bytes += size
        return path

    def commit(self) -> None:
        """Write ``_SUCCESS`` last: from now on readers see the batch, and it never changes."""
        marker = json.dumps(
            {"batch_id": self.batch_id, "rows": self.rows, "parts": len(self.parts)}
        )
        self.lake.fs.pipe_file(f"{self.lake.batch_dir(self.batch_id)}/{SUCCESS}", marker.encode())
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


def committed_batches(lake: Lake) -> list[str]:
    """Ids of the batches that have ``_SUCCESS``, oldest first."""
    pattern = lake.path(COURSES_DIR, f"{BATCH_PREFIX}*", SUCCESS)
    ids = [path.rstrip("/").split("/")[-2][len(BATCH_PREFIX) :] for path in lake.fs.glob(pattern)]
    return sorted(ids)


def uncommitted_batches(lake: Lake) -> list[str]:
    """Ids of batch folders without ``_SUCCESS``: interrupted writes, invisible to readers."""
    pattern = lake.path(COURSES_DIR, f"{BATCH_PREFIX}*")
    every = {path.rstrip("/").split("/")[-1][len(BATCH_PREFIX) :] for path in lake.fs.glob(pattern)}
    return sorted(every - set(committed_batches(lake)))


def batch_files(lake: Lake, batch_id: str) -> list[str]:
    """The part files of a batch, in order."""
    return sorted(lake.fs.glob(f"{lake.batch_dir(batch_id)}/part-*.parquet"))


def file_schema(lake: Lake, path: str) -> pa.Schema:
    """The Arrow schema of a Parquet file, from its footer; :class:`LakeError` names a bad file."""
    try:
        with lake.arrow_fs.open_input_file(path) as handle:
            return pq.read_schema(handle)
    except (OSError, pa.ArrowException) as exc:
        raise LakeError(f"cannot read {path}: {exc}; the file is damaged or not Parquet") from exc


def read_file_batches(
    lake: Lake,
    path: str,
    *,
    since: datetime | None = None,
    columns: Sequence[str] | None = None,
    batch_rows: int = 64 * 1024,
) -> Iterator[pa.RecordBatch]:
    """Stream one part file; ``since`` is pushed down so row groups before it are skipped.

    An unreadable file raises :class:`LakeError` naming the file.
    """
    try:
        dataset = ds.dataset(path, format="parquet", filesystem=lake.arrow_fs)
        expression = (
            ds.field("start_date") >= pa.scalar(since, pa.timestamp("us", "UTC")) if since else None
        )
        yield from dataset.to_batches(
            columns=list(columns) if columns is not None else None,
            filter=expression,
            batch_size=batch_rows,
        )
    except (OSError, pa.ArrowException) as exc:
        raise LakeError(f"cannot read {path}: {exc}; the file is damaged or not Parquet") from exc


def read_batches(
    lake: Lake,
    batch_ids: Sequence[str],
    *,
    since: datetime | None = None,
    columns: Sequence[str] | None = None,
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Stream the rows of ``batch_ids`` as ``(batch_id, record batch)``, in batch order."""
    for batch_id in batch_ids:
        for path in batch_files(lake, batch_id):
            for record_batch in read_file_batches(lake, path, since=since, columns=columns):
                yield batch_id, record_batch


def max_course_id(lake: Lake) -> int:
    """The largest ``course_id`` in committed batches (0 when there is none), from file footers."""
    largest = 0
    for batch_id in committed_batches(lake):
        for path in batch_files(lake, batch_id):
            metadata = _footer(lake, path)
            if metadata.num_rows == 0:
                continue
            span = _column_range(metadata, "course_id")
            if span is None:
                raise LakeError(f"{path}: no statistics for course_id; rewrite it with statistics")
            largest = max(largest, span[1])
    return largest


def _footer(lake: Lake, path: str) -> Any:
    """A Parquet file's metadata; :class:`LakeError` names a file that cannot be read."""
    try:
        with lake.arrow_fs.open_input_file(path) as handle:
            return pq.ParquetFile(handle).metadata
    except (OSError, pa.ArrowException) as exc:
        raise LakeError(f"cannot read {path}: {exc}; the file is damaged or not Parquet") from exc


def _column_range(metadata: Any, column: str) -> tuple[int, int] | None:
    """(min, max) of an integer column from the row-group statistics; None if any is missing."""
    if column not in metadata.schema.names or metadata.num_row_groups == 0:
        return None
    index = metadata.schema.names.index(column)
    lows, highs = [], []
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max or not isinstance(stats.max, int):
            return None
        lows.append(int(stats.min))
        highs.append(int(stats.max))
    return min(lows), max(highs)


def id_range(lake: Lake, paths: Sequence[str]) -> tuple[int, int] | None:
    """(smallest, largest) ``course_id`` in ``paths`` from their footers; None if unknown."""
    footers = [_footer(lake, path) for path in paths]
    spans = [_column_range(metadata, "course_id") for metadata in footers if metadata.num_rows]
    if not spans or any(span is None for span in spans):
        return None
    return min(s[0] for s in spans if s), max(s[1] for s in spans if s)


def file_rows(lake: Lake, path: str) -> int:
    """Rows in one part file, from its footer."""
    return int(_footer(lake, path).num_rows)


def batch_row_count(lake: Lake, batch_id: str) -> int:
    """Rows in a committed batch, from the file footers."""
    return sum(file_rows(lake, path) for path in batch_files(lake, batch_id))


# ---------------------------------------------------------------------------------------------
# Dimensions


def write_dimension(lake: Lake, name: str, table: pa.Table) -> None:
    """Replace ``<name>.csv`` atomically: readers see the old file or the new one, never a mix."""
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)
    _atomic_put(lake, lake.dimension_path(name), buffer.getvalue())


def read_dimension(lake: Lake, name: str, schema: pa.Schema | None = None) -> pa.Table:
    """Read ``<name>.csv`` (with ``schema``'s column types, when given)."""
    path = lake.dimension_path(name)
    try:
        data = lake.fs.cat_file(path)
    except FileNotFoundError as exc:
        raise LakeError(f"{path} is missing: run `coursemart generate` first") from exc
    convert = pacsv.ConvertOptions(column_types=schema) if schema is not None else None
    try:
        return pacsv.read_csv(io.BytesIO(data), convert_options=convert)
    except pa.ArrowException as exc:
        raise LakeError(f"cannot read {path}: {exc}") from exc


def _atomic_put(lake: Lake, path: str, data: bytes) -> None:
    if lake.is_local:
        temporary = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    else:
        # One PUT of a whole object is atomic on blob stores.
        lake.fs.pipe_file(path, data)


# ---------------------------------------------------------------------------------------------
# Rejected rows


def write_rejected(lake: Lake, load_id: str, table: pa.Table, part: int = 0) -> str:
    """Write rows the loader refused (with their ``reason`` column); returns the file's path."""
    folder = lake.path(REJECTED_DIR, f"load_id={load_id}")
    lake.fs.makedirs(folder, exist_ok=True)
    path = f"{folder}/part-{part:05d}.parquet"
    pq.write_table(table, path, filesystem=lake.arrow_fs, compression=PARQUET_COMPRESSION)
    return path


def read_rejected(lake: Lake, load_id: str) -> list[dict[str, Any]]:
    """All rows rejected by ``load_id``, part by part (parts may differ in their columns)."""
    folder = lake.path(REJECTED_DIR, f"load_id={load_id}")
    paths = sorted(lake.fs.glob(f"{folder}/part-*.parquet"))
    return [row for p in paths for row in pq.read_table(p, filesystem=lake.arrow_fs).to_pylist()]
