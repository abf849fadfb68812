"""The courses as a Delta table: its log read version by version, and commits of part files.

delta-rs owns the log: it creates the table, commits (with optimistic concurrency: a commit
that loses a race is retried on the next version), writes deletes with their change data, and
answers which files are live. coursemart reads only the commits a warehouse has not loaded yet,
one JSON file each (``_delta_log/<version>.json``), to learn what they added and removed.

The table is partitioned by ``batch_id``: each generate writes ``batch_id=<id>/part-*.parquet``
and commits them in one version, so the batch id is in every row a reader sees and in the
commit's metadata (``coursemart.batch_id``). The change data feed is on, so a delete commits the
deleted rows (``_change_data/``) beside the rewritten files.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc

from coursemart import model
from coursemart.errors import LakeError
from coursemart.lake.parquet import ParquetFiles, column_range, ids_as_int64
from coursemart.lake.store import COURSES_DIR

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


def largest_record(largest: int, seen: int | None) -> dict[str, str]:
    """The commit metadata recording ``largest`` as read at version ``seen``."""
    return {LARGEST_ID_KEY: str(largest), LARGEST_AT_KEY: str(-1 if seen is None else seen)}


#: Set when the table is made: deletes then commit the rows they removed (the change data
#: feed), so a load reads what a delete took away without reading the files it rewrote.
TABLE_PROPERTIES: Final = {"delta.enableChangeDataFeed": "true"}
#: Reader features that do not change what a data file holds: coursemart reads each file with
#: pyarrow, so any other (deletion vectors, column mapping, …) is refused by name.
READABLE_FEATURES: Final = frozenset({"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"})
#: The table's columns as Delta types, the partition column last.
TABLE_SCHEMA: Final = pa.schema(
    [
        *(field.with_nullable(True) for field in model.COURSES_SCHEMA),
        pa.field(PARTITION, pa.string()),
    ]
)


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


class CourseTable(ParquetFiles):
    """The lake's ``courses`` Delta table: opening, reading the log, committing files."""

    @property
    def table_path(self) -> str:
        return self.path(COURSES_DIR)

    @property
    def table_uri(self) -> str:
        """The table's location as delta-rs names it."""
        if self.is_local:
            return os.path.abspath(self.table_path)
        scheme = self.url.split("://", 1)[0]
        return f"{scheme}://{self.table_path.lstrip('/')}"

    @property
    def storage_options(self) -> dict[str, str] | None:
        """Credentials for delta-rs's object store, from the same environment fsspec reads."""
        from coursemart.lake.cloud import delta_storage_options

        return None if self.is_local else delta_storage_options(self.url, self.fs)

    def is_delta(self) -> bool:
        """Whether ``<lake>/courses`` holds a Delta table (its log has a commit)."""
        self.fs.invalidate_cache(self.path(COURSES_DIR, LOG_DIR))
        try:
            names = self.fs.ls(self.path(COURSES_DIR, LOG_DIR), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return any(str(name).endswith(".json") or ".checkpoint." in str(name) for name in names)

    def delta(self, version: int | None = None) -> Any:
        """The table through delta-rs (at ``version``, else the latest), its reader features
        checked; :class:`LakeError` when there is none."""
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        if not self.is_delta():
            raise self.not_a_table()
        try:
            table = DeltaTable(
                self.table_uri, version=version, storage_options=self.storage_options
            )
        except TableNotFoundError as exc:
            raise self.not_a_table() from exc
        except (DeltaError, OSError, ValueError) as exc:
            if "json" in str(exc).lower():
                self.check_log()  # names the damaged commit file
            raise LakeError(
                f"cannot read the Delta table {self.display}/{COURSES_DIR}: {first(exc)}"
            ) from exc
        check_features(table, f"{self.display}/{COURSES_DIR}")
        return table

    def check_log(self) -> None:
        """Parse every commit file of the log, so that a damaged one is named (delta-rs's own
        error does not say which): :class:`LakeError` for the first that is not valid JSON."""
        log = self.path(COURSES_DIR, LOG_DIR)
        self.fs.invalidate_cache(log)
        try:
            names = sorted(str(name) for name in self.fs.ls(log, detail=False))
            for name in names:
                stem = name.rsplit("/", 1)[-1].removesuffix(".json")
                if name.endswith(".json") and stem.isdigit():
                    self.commits(int(stem), int(stem))
        except OSError:
            return  # the log cannot be read at all: delta-rs's error says so

    def not_a_table(self) -> LakeError:
        """The error for a lake whose ``courses`` is not a Delta table, saying what it is."""
        where = f"{self.display}/{COURSES_DIR}"
        if self.has_batch_folders():
            return LakeError(
                f"{where} holds batch folders (the layout before Delta tables): run "
                f"`coursemart lake convert --lake {self.display}` once, then load"
            )
        courses = self.path(COURSES_DIR)
        self.fs.invalidate_cache(courses)
        if self.fs.isfile(courses):
            return LakeError(
                f"{where} is a file, not a Delta table: point --lake at a coursemart lake"
            )
        if self.fs.exists(courses) and self.foreign_files(courses):
            return LakeError(
                f"{where} holds files but no Delta log ({LOG_DIR}/): it is not a Delta table; "
                "point --lake at a coursemart lake"
            )
        return LakeError(f"{where} is not a Delta table: run `coursemart generate` first")

    def foreign_files(self, courses: str) -> list[str]:
        """Files under ``courses`` other than those of coursemart's uncommitted writes."""
        found = [str(path) for path in self.fs.find(courses, maxdepth=3)]
        marked = {path.rsplit("/", 1)[0] for path in found if path.endswith("/" + WRITING_MARK)}
        return [path for path in found if path.rsplit("/", 1)[0] not in marked]

    def has_batch_folders(self) -> bool:
        """Whether the lake holds committed batches of the earlier layout (``_SUCCESS``)."""
        from coursemart.lake.store import BATCH_PREFIX, SUCCESS

        courses = self.path(COURSES_DIR)
        self.fs.invalidate_cache(courses)
        try:
            found = self.fs.find(courses, maxdepth=2, detail=False)
        except FileNotFoundError:
            return False
        return any(
            str(path).rsplit("/", 2)[-2].startswith(BATCH_PREFIX)
            and str(path).endswith("/" + SUCCESS)
            for path in found
        )

    def latest_version(self) -> int | None:
        """The table's latest version, or None when there is no table."""
        if not self.is_delta():
            return None
        return int(self.delta().version())

    def has_commit(self, version: int) -> bool:
        """Whether the log still holds the commit of ``version``."""
        return bool(self.fs.exists(self.path(COURSES_DIR, LOG_DIR, version_file(version))))

    def commits(self, first_version: int, last_version: int) -> list[Commit]:
        """The commits ``first_version`` … ``last_version``, read from the log."""
        folder = self.path(COURSES_DIR)
        found = []
        for version in range(first_version, last_version + 1):
            name = f"{COURSES_DIR}/{LOG_DIR}/{version_file(version)}"
            try:
                data = self.fs.cat_file(self.path(COURSES_DIR, LOG_DIR, version_file(version)))
            except FileNotFoundError as exc:
                raise LakeError(
                    f"{name} is missing: the table's log no longer holds version {version} "
                    "(its log retention removed it, or it was deleted); this warehouse cannot "
                    "be brought up to date from the log: load it into a new warehouse"
                ) from exc
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise LakeError(f"{name} is not UTF-8 text: the table's log is damaged") from exc
            found.append(parse_commit(version, text, folder, name))
        return found

    # the live snapshot ------------------------------------------------------------------
    def live_files(self, table: Any | None = None) -> list[DataFile]:
        """The data files of the table's latest version."""
        if table is None:
            if not self.is_delta():
                return []
            table = self.delta()
        actions = pa.table(table.get_add_actions(flatten=True))
        folder = self.path(COURSES_DIR)
        names = set(actions.column_names)
        rows = actions.to_pylist()
        files = []
        for row in rows:
            partition = (
                row.get(f"partition.{PARTITION}") if f"partition.{PARTITION}" in names else None
            )
            largest = row.get("max.course_id") if "max.course_id" in names else None
            files.append(
                DataFile(
                    path=f"{folder}/{unquote(str(row['path']))}",
                    size=int(row["size_bytes"]),
                    batch_id=partition if isinstance(partition, str) and partition else None,
                    rows=row.get("num_records"),
                    max_id=largest if isinstance(largest, int) else None,
                )
            )
        return sorted(files, key=lambda file: file.path)

    def committed_batches(self) -> list[str]:
        """Ids of the batches the table's latest version holds rows of, oldest first."""
        return sorted({file.batch_id for file in self.live_files() if file.batch_id})

    def batch_files(self, batch_id: str) -> list[str]:
        """The live data files of a batch, in order."""
        return [file.path for file in self.live_files() if file.batch_id == batch_id]

    def batch_row_count(self, batch_id: str) -> int:
        """Rows in a batch's live files."""
        return sum(self.file_rows(path) for path in self.batch_files(batch_id))

    def read_batches(
        self,
        batch_ids: Sequence[str],
        *,
        since: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        """Stream the live rows of ``batch_ids`` as ``(batch_id, record batch)``, in batch order."""
        files = self.live_files()
        for batch_id in batch_ids:
            for file in files:
                if file.batch_id != batch_id:
                    continue
                for record_batch in self.read_file_batches(file.path, since=since, columns=columns):
                    yield batch_id, record_batch

    def max_course_id(self) -> int:
        """The largest ``course_id`` (a BIGINT holds) the table has held, 0 for none: what the
        next generate starts after (see :meth:`largest_course_id`)."""
        return self.largest_course_id()[0]

    def largest_course_id(self, table: Any | None = None) -> tuple[int, int | None]:
        """The largest ``course_id`` the table (opened, or the lake's) has held, and the version
        it was read at (None without a table).

        Read from the data, never from statistics or a record a writer may have got wrong:
        coursemart's latest commit records the largest id of the data at the version it read
        (``LARGEST_AT_KEY``) and of its own files; the files of every other commit since that
        version (any writer's) are read. Without such a commit, every live file is read once.
        The ids of deleted courses stay taken (a commit's record keeps them).
        """
        if table is None:
            if not self.is_delta():
                return 0, None
            table = self.delta()
        latest = int(table.version())
        recorded = self.recorded_largest(table)
        if recorded is not None:
            version, seen, largest = recorded
            try:
                later = self.commits(seen + 1, latest) if seen < latest else []
            except LakeError:  # those commits expired from the log: read the files instead
                later = None
            if later is not None:
                added = [
                    file.path
                    for commit in later
                    if commit.version != version
                    for file in commit.added
                    if self.fs.exists(file.path)
                ]
                return max([largest, *map(self.largest_id, added)]), latest
        files = self.live_files(table)
        return max((self.largest_id(file.path) for file in files), default=0), latest

    def recorded_largest(self, table: Any) -> tuple[int, int, int] | None:
        """(version, version read at, largest course id) that the latest coursemart commit
        recorded; None when no commit in the log's history did."""
        for limit in (1, 16, None):  # usually the latest commit is coursemart's
            history = table.history(limit=limit)
            for entry in history:
                value, seen = entry.get(LARGEST_ID_KEY), entry.get(LARGEST_AT_KEY)
                version = entry.get("version")
                if (
                    isinstance(version, int)
                    and isinstance(value, str)
                    and value.isdigit()
                    and isinstance(seen, str)
                    and seen.lstrip("-").isdigit()
                ):
                    return version, int(seen), int(value)
            if limit is None or len(history) < limit:
                return None
        return None

    def largest_id(self, path: str) -> int:
        """The largest ``course_id`` a BIGINT holds in one file (0 when none)."""
        metadata = self.footer(path)
        schema = metadata.schema.to_arrow_schema()
        if metadata.num_rows == 0 or "course_id" not in schema.names:
            return 0
        if not pa.types.is_integer(schema.field("course_id").type):
            return 0
        ids = (batch.column(0) for batch in self.read_file_batches(path, columns=["course_id"]))
        found = [int(chunk.max()) for chunk in map(ids_as_int64, ids) if len(chunk)]
        return max(found, default=0)


def check_features(table: Any, where: str) -> None:
    """Refuse a table whose reader features coursemart cannot honour, naming them."""
    protocol = table.protocol()
    features = set(protocol.reader_features or ())
    unknown = sorted(features - READABLE_FEATURES)
    if unknown or protocol.min_reader_version > 3:
        named = ", ".join(unknown) or f"reader version {protocol.min_reader_version}"
        raise LakeError(
            f"the Delta table {where} needs reader features coursemart cannot honour ({named}): "
            "nothing loaded; rewrite the table without them (e.g. disable deletion vectors and "
            "run OPTIMIZE/PURGE) or load it with a reader that supports them"
        )
    mapping = (table.metadata().configuration or {}).get("delta.columnMapping.mode", "none")
    if mapping not in (None, "none"):
        raise LakeError(
            f"the Delta table {where} uses column mapping ({mapping}): nothing loaded; "
            "coursemart reads data files by their column names"
        )


def committed_version(table: Any, batch_id: str) -> int:
    """The version of the commit naming ``batch_id`` that ``table`` just made: delta-rs returns
    none, and retries a commit that lost a race on a later version."""
    table.update_incremental()
    for entry in table.history(10):
        if entry.get(BATCH_KEY) == batch_id:
            return int(entry["version"])
    return int(table.version())


def first(exc: BaseException) -> str:
    """An error's first line."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


#: Delta's primitive types by kind: a column of the kind coursemart writes takes its values.
_KINDS: Final = {
    "byte": "integer",
    "short": "integer",
    "integer": "integer",
    "long": "integer",
    "string": "string",
    "timestamp": "timestamp",
    "timestamp_ntz": "timestamp",
}


def write_problems(table: Any) -> list[str]:
    """Why coursemart's batches cannot be committed to ``table`` (another table stands at the
    lake path): a course column missing or of another kind, or another partitioning."""
    from deltalake import Schema

    found = {
        field.name: getattr(field.type, "type", str(field.type)) for field in table.schema().fields
    }
    problems = []
    for field in Schema.from_arrow(TABLE_SCHEMA).fields:
        kind = found.get(field.name)
        if kind is None:
            problems.append(f"no column {field.name}")
        elif _KINDS.get(kind, kind) != _KINDS[field.type.type]:
            problems.append(f"{field.name} is {kind}, not {field.type.type}")
    partitions = list(table.metadata().partition_columns)
    if partitions != [PARTITION]:
        problems.append(f"partitioned by {', '.join(partitions) or 'nothing'}, not {PARTITION}")
    return problems


class TableWrites(CourseTable):
    """Commits, deletes and clean-up of the table, all through delta-rs."""

    def check_writable(self) -> None:
        """Refuse, before anything is written, a lake whose ``courses`` is another table."""
        if not self.is_delta():
            return
        problems = write_problems(self.delta())
        if problems:
            raise LakeError(
                f"the Delta table {self.display}/{COURSES_DIR} is not a table of courses "
                f"({'; '.join(problems)}): nothing written; point --lake at a coursemart lake"
            )

    def commit_files(
        self,
        batch_id: str,
        actions: list[Any],
        largest: tuple[int, int | None] | None = None,
    ) -> int:
        """Commit data files already in the table's folder as one version naming ``batch_id``;
        the first commit makes the table. Returns the version.

        ``largest`` is (the largest course id of the table at a version and of these files,
        that version) when the writer read both from the data (see
        :meth:`largest_course_id`)."""
        from deltalake import DeltaTable, Schema
        from deltalake.exceptions import DeltaError
        from deltalake.transaction import CommitProperties, create_table_with_add_actions

        metadata = {BATCH_KEY: batch_id, **(largest_record(*largest) if largest else {})}
        properties = CommitProperties(custom_metadata=metadata, max_commit_retries=50)
        try:
            if not self.is_delta():
                try:
                    create_table_with_add_actions(
                        self.table_uri,
                        Schema.from_arrow(TABLE_SCHEMA),
                        actions,
                        mode="error",
                        partition_by=[PARTITION],
                        configuration=TABLE_PROPERTIES,
                        storage_options=self.storage_options,
                        commit_properties=properties,
                    )
                    return 0
                except DeltaError:
                    if not self.is_delta():
                        raise
                    # another writer made the table meanwhile: append to it
            table = DeltaTable(self.table_uri, storage_options=self.storage_options)
            table.create_write_transaction(
                actions,
                "append",
                table.schema(),
                partition_by=[PARTITION],
                commit_properties=properties,
            )
            return committed_version(table, batch_id)
        except (DeltaError, OSError, ValueError) as exc:
            raise LakeError(
                f"cannot commit batch {batch_id} to {self.display}/{COURSES_DIR}: {first(exc)}"
            ) from exc

    def delete_courses(self, ids: Sequence[int]) -> tuple[int, int]:
        """Delete every row of the courses ``ids`` as one commit with its change data (a MERGE
        whose source is the ids: a predicate listing tens of thousands of ids is too much for
        delta-rs's planner). Returns (version, rows deleted)."""
        from deltalake import CommitProperties, WriterProperties
        from deltalake.exceptions import DeltaError

        table = self.delta()
        largest = largest_record(*self.largest_course_id(table))
        source = pa.table({"course_id": pa.array(sorted(set(ids)), pa.int64())})
        try:
            metrics = (
                table.merge(
                    source=source,
                    predicate="target.course_id = source.course_id",
                    source_alias="source",
                    target_alias="target",
                    writer_properties=WriterProperties(compression="ZSTD"),
                    commit_properties=CommitProperties(
                        custom_metadata={OPERATION_KEY: "cancel", **largest}
                    ),
                )
                .when_matched_delete()
                .execute()
            )
        except (DeltaError, OSError, ValueError) as exc:
            raise LakeError(
                f"cannot delete from {self.display}/{COURSES_DIR}: {first(exc)}"
            ) from exc
        return int(table.version()), int(metrics.get("num_target_rows_deleted", 0))
