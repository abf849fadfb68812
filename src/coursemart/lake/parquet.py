"""Reading part files: schemas and row counts from footers, rows streamed with date pushdown."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from coursemart.errors import LakeError
from coursemart.lake.store import Store

PARQUET_COMPRESSION: Final = "zstd"
#: The largest id a BIGINT holds.
INT64_MAX: Final = 2**63 - 1
INT64_MIN: Final = -(2**63)
ROW_GROUP_ROWS: Final = 128 * 1024


def unreadable(path: str, exc: BaseException) -> LakeError:
    """The error for a part file that cannot be read at all: missing, or damaged."""
    if isinstance(exc, FileNotFoundError):
        return LakeError(f"cannot read {path}: the file is missing; restore it from a copy")
    return LakeError(
        f"cannot read {path}: {exc}; the file is damaged or not Parquet: restore it from a copy"
    )


class ParquetFiles(Store):
    """Part files read through the lake's Arrow filesystem."""

    def open_part(self, path: str) -> Any:
        """An Arrow input file for a part file. On a local lake, a path that is not a regular
        file (a FIFO, a device, a folder: whatever it is reached through) is refused naming it:
        opening a FIFO would wait for a writer forever."""
        if self.is_local:
            try:
                mode = os.stat(path).st_mode
            except OSError as exc:
                raise unreadable(path, exc) from exc
            if not stat.S_ISREG(mode):
                raise LakeError(
                    f"cannot read {path}: it is not a regular file (a FIFO, a device or a "
                    "folder): replace it with the Parquet file the table's log names; "
                    "nothing was loaded"
                )
        return self.arrow_fs.open_input_file(path)

    def footer(self, path: str) -> Any:
        """A Parquet file's metadata; :class:`LakeError` names a file that cannot be read."""
        try:
            with self.open_part(path) as handle:
                return pq.ParquetFile(handle).metadata
        except (OSError, pa.ArrowException) as exc:
            raise unreadable(path, exc) from exc

    def file_schema(self, path: str) -> pa.Schema:
        """The Arrow schema of a Parquet file, from its footer."""
        try:
            with self.open_part(path) as handle:
                return pq.read_schema(handle)
        except (OSError, pa.ArrowException) as exc:
            raise unreadable(path, exc) from exc

    def file_rows(self, path: str) -> int:
        """Rows in one part file, from its footer."""
        return int(self.footer(path).num_rows)

    def read_file_batches(
        self,
        path: str,
        *,
        since: datetime | None = None,
        columns: Sequence[str] | None = None,
        batch_rows: int = 64 * 1024,
    ) -> Iterator[pa.RecordBatch]:
        """Stream one part file, one row group after another; with ``since``, row groups whose
        statistics end before it are skipped and the rows before it dropped.

        An unreadable file raises :class:`LakeError` naming the file.
        """
        try:
            with self.open_part(path) as handle:
                parquet = pq.ParquetFile(handle)
                names = list(columns) if columns is not None else parquet.schema_arrow.names
                threshold = None
                if since is not None and "start_date" in parquet.schema_arrow.names:
                    threshold = since_in_unit(since, parquet.schema_arrow.field("start_date").type)
                read = (
                    names if threshold is None or "start_date" in names else [*names, "start_date"]
                )
                groups = [
                    group
                    for group in range(parquet.num_row_groups)
                    if threshold is None or not ends_before(parquet.metadata, group, threshold)
                ]
                for batch in parquet.iter_batches(
                    batch_size=batch_rows, row_groups=groups, columns=read
                ):
                    if threshold is not None:
                        dates = raw_dates(batch.column("start_date"))
                        batch = batch.filter(pc.greater_equal(dates, threshold)).select(names)
                    yield without_views(batch)
        except (OSError, pa.ArrowException) as exc:
            raise unreadable(path, exc) from exc


#: Microseconds per unit of a timestamp or date type's stored values.
_UNIT_MICROS: Final = {"s": 1_000_000, "ms": 1_000, "us": 1, "date32": 86_400_000_000}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _unit(kind: pa.DataType) -> str | None:
    if pa.types.is_timestamp(kind):
        return str(kind.unit)
    if pa.types.is_date32(kind):
        return "date32"
    if pa.types.is_date64(kind):
        return "ms"
    return None


def since_in_unit(since: datetime, kind: pa.DataType) -> int | None:
    """The smallest stored value of a ``start_date`` of type ``kind`` at or after ``since``
    (a naive ``since`` is UTC); None when the type is not a date or timestamp."""
    unit = _unit(kind)
    if unit is None:
        return None
    moment = since if since.tzinfo else since.replace(tzinfo=UTC)
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    if unit == "ns":
        return max(-INT64_MAX - 1, min(INT64_MAX, micros * 1_000))
    return -(-micros // _UNIT_MICROS[unit])  # rounded up: a value below it is before since


def raw_dates(column: pa.Array) -> pa.Array:
    """A date or timestamp column's stored integers (time zones do not change them)."""
    return column.view(pa.int32() if pa.types.is_date32(column.type) else pa.int64())


def ends_before(metadata: Any, group: int, threshold: int) -> bool:
    """Whether a row group's statistics say every ``start_date`` in it is before
    ``threshold`` (in the column's stored unit); False when they say nothing."""
    index = metadata.schema.names.index("start_date")
    stats = metadata.row_group(group).column(index).statistics
    if stats is None or not stats.has_min_max:
        return False
    high = stats.max_raw
    return isinstance(high, int) and high < threshold


#: View types (DataFusion writes them, in the files a delta-rs delete rewrites) and the plain
#: types every other file of the lake holds the same values in.
PLAIN_TYPES: Final = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}


def without_views(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with its view columns as plain strings and binaries, so that rows read from a
    rewritten file combine with rows read from the others."""
    if not any(field.type in PLAIN_TYPES for field in batch.schema):
        return batch
    plain = [field.with_type(PLAIN_TYPES.get(field.type, field.type)) for field in batch.schema]
    return batch.cast(pa.schema(plain))


def column_range(metadata: Any, column: str) -> tuple[int, int] | None:
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


def ids_as_int64(array: Any) -> np.ndarray:
    """The non-null ids of ``array`` that a BIGINT holds, as int64 (others are refused anyway)."""
    values = pc.drop_null(array)
    if pa.types.is_unsigned_integer(values.type):
        values = values.filter(pc.less_equal(values, pa.scalar(INT64_MAX, values.type)))
    ids: np.ndarray = np.asarray(values.to_numpy(zero_copy_only=False)).astype(np.int64)
    return ids
