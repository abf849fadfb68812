"""The Delta log's entries as coursemart reads and writes them: one commit's JSON parsed into
what it added and removed (with each file's statistics), and the statistics coursemart writes
with each file it commits (row count, each column's range: what readers skip files by).

The table is partitioned by ``batch_id``: each generate writes ``batch_id=<id>/part-*.parquet``
and commits them in one version, so the batch id is in every row a reader sees and in the
commit's metadata (``coursemart.batch_id``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc

from coursemart.errors import LakeError
from coursemart.lake.parquet import column_range

PARTITION: Final = "batch_id"
#: A file coursemart's writer keeps in a batch folder until the batch is committed (a killed
#: write is known by it: lake/upkeep.py).
WRITING_MARK: Final = "_coursemart_writing"
LOG_DIR: Final = "_delta_log"
#: The commit metadata key that names the batch a coursemart commit holds.
BATCH_KEY: Final = "coursemart.batch_id"
#: The commit metadata key that names what a coursemart command did (``cancel``), where
#: delta-rs's own operation name (``MERGE``) says how.
OPERATION_KEY: Final = "coursemart.operation"
#: The commit metadata keys of coursemart's commits and deletes: the largest course id of the
#: table's data at the version in ``LARGEST_AT_KEY`` (-1: none) and of the commit's own files,
#: so that no id, a cancelled course's included, is given again (an earlier release's
#: ``coursemart.max_course_id`` was the batch's alone, and is not read).
LARGEST_ID_KEY: Final = "coursemart.largest_course_id"
LARGEST_AT_KEY: Final = "coursemart.largest_course_id_at"


def version_file(version: int) -> str:
    """The name of a version's commit in the log."""
    return f"{version:020d}.json"


@dataclass(frozen=True)
class DataFile:
    """A file a commit names: its full path in the lake's filesystem, bytes, batch (partition
    value; None when the writer gave none), rows and largest ``course_id`` when its statistics
    say."""

    path: str
    size: int
    batch_id: str | None = None
    rows: int | None = None
    max_id: int | None = None


@dataclass(frozen=True)
class Commit:
    """One version of the table as a loader needs it: the data it added and removed (actions
    with ``dataChange``: an OPTIMIZE's rewrite changes nothing), and its change data files."""

    version: int
    timestamp: datetime
    operation: str
    batch_id: str | None = None
    added: tuple[DataFile, ...] = ()
    removed: tuple[DataFile, ...] = ()
    changes: tuple[DataFile, ...] = ()
    schema: str | None = None

    @property
    def derived_batch_id(self) -> str:
        """A batch id for rows committed without one: the commit's time, in the form of
        coursemart's ids (so it sorts among them by time), and its version."""
        return f"{self.timestamp:%Y%m%dT%H%M%S.%fZ}-v{self.version}"

    @property
    def is_append(self) -> bool:
        return not self.removed and not self.changes


def parse_commit(version: int, text: str, folder: str, where: str) -> Commit:
    """The actions of one commit (newline-delimited JSON); ``folder`` is the table's root,
    ``where`` names the file in errors."""
    added: list[DataFile] = []
    removed: list[DataFile] = []
    changes: list[DataFile] = []
    info: dict[str, Any] = {}
    schema = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            action = json.loads(line)
        except ValueError as exc:
            raise LakeError(
                f"{where} line {number} is not valid JSON ({exc}): the table's log is damaged; "
                "restore the file from a copy, nothing was loaded"
            ) from exc
        if not isinstance(action, dict):
            raise LakeError(f"{where} line {number} is not a Delta action: the log is damaged")
        if "commitInfo" in action:
            info = action["commitInfo"] or {}
        elif "metaData" in action:
            schema = (action["metaData"] or {}).get("schemaString")
        elif "add" in action and action["add"].get("dataChange", True):
            added.append(_data_file(folder, action["add"], where))
        elif "remove" in action and action["remove"].get("dataChange", True):
            removed.append(_data_file(folder, action["remove"], where))
        elif "cdc" in action:
            changes.append(_data_file(folder, action["cdc"], where))
    stamp = info.get("timestamp")
    moment = (
        datetime.fromtimestamp(stamp / 1000, UTC) if isinstance(stamp, int) else datetime.now(UTC)
    )
    batch_id = info.get(BATCH_KEY)
    return Commit(
        version=version,
        timestamp=moment,
        operation=str(info.get(OPERATION_KEY) or info.get("operation", "")),
        batch_id=batch_id if isinstance(batch_id, str) else None,
        added=tuple(added),
        removed=tuple(removed),
        changes=tuple(changes),
        schema=schema,
    )


def _data_file(folder: str, action: Mapping[str, Any], where: str) -> DataFile:
    path = unquote(str(action.get("path", "")))
    if "://" in path or path.startswith("/") or ".." in path.split("/"):
        raise LakeError(
            f"{where} names {path}, outside the table's folder: coursemart reads only files "
            "inside it (as delta-rs does); nothing loaded"
        )
    full = f"{folder.rstrip('/')}/{path}"
    partition = (action.get("partitionValues") or {}).get(PARTITION)
    stats = _stats(action.get("stats"))
    rows = stats.get("numRecords")
    largest = (stats.get("maxValues") or {}).get("course_id")
    return DataFile(
        path=full,
        size=int(action.get("size") or 0),
        batch_id=partition if isinstance(partition, str) and partition else None,
        rows=rows if isinstance(rows, int) else None,
        max_id=largest if isinstance(largest, int) else None,
    )


def _stats(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        stats = json.loads(text)
    except ValueError:
        return {}
    return stats if isinstance(stats, dict) else {}


def _instant(value: Any, *, up: bool) -> str:
    """A timestamp as Delta statistics write it (milliseconds, UTC), rounded outwards so the
    range still covers the values."""
    micros = int(value)
    millis = math.ceil(micros / 1000) if up else micros // 1000
    moment = datetime.fromtimestamp(millis / 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


_MICROSECOND: Final = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - datetime(
    1970, 1, 1, tzinfo=UTC
)


def file_statistics(table: pa.Table) -> str:
    """Delta statistics of a data file's rows (counted from the rows, never from a footer):
    rows, nulls per column, and the ranges readers use to skip files."""
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls = {name: int(table[name].null_count) for name in table.column_names}
    for name in table.column_names:
        column = table[name]
        if table.num_rows == column.null_count:
            continue
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_timestamp(kind):
            span = pc.min_max(column.cast(pa.int64()) if pa.types.is_timestamp(kind) else column)
            low, high = span["min"].as_py(), span["max"].as_py()
            if pa.types.is_timestamp(kind):
                low, high = _instant(low, up=False), _instant(high, up=True)
            minimum[name], maximum[name] = low, high
    document = {
        "numRecords": table.num_rows,
        "minValues": minimum,
        "maxValues": maximum,
        "nullCount": nulls,
    }
    return json.dumps(document)


def footer_statistics(metadata: Any) -> str:
    """Delta statistics of a file written elsewhere (Spark's executors, the earlier layout),
    from its footer: rows, and the id and date ranges where every row group records them."""
    document: dict[str, Any] = {"numRecords": int(metadata.num_rows)}
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    span = column_range(metadata, "course_id")
    if span is not None:
        minimum["course_id"], maximum["course_id"] = span
    dates = _date_range(metadata)
    if dates is not None:
        minimum["start_date"] = _instant(dates[0], up=False)
        maximum["start_date"] = _instant(dates[1], up=True)
    if minimum:
        document["minValues"], document["maxValues"] = minimum, maximum
    return json.dumps(document)


def _date_range(metadata: Any) -> tuple[int, int] | None:
    """(min, max) of ``start_date`` in microseconds from the row groups' statistics."""
    names = metadata.schema.names
    if "start_date" not in names or metadata.num_row_groups == 0:
        return None
    index = names.index("start_date")
    lows, highs = [], []
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max or not isinstance(stats.min, datetime):
            return None
        lows.append(stats.min)
        highs.append(stats.max)
    low, high = min(lows), max(highs)
    as_utc = [moment if moment.tzinfo else moment.replace(tzinfo=UTC) for moment in (low, high)]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    micros = [(moment - epoch) // _MICROSECOND for moment in as_utc]
    return micros[0], micros[1]
