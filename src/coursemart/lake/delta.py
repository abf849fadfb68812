"""The courses as a Delta table, read: opening it (reader features checked), its log read
version by version, its live files, batches and largest course id.

delta-rs owns the log: it creates the table, commits (with optimistic concurrency: a commit
that loses a race is retried on the next version), writes deletes with their change data, and
answers which files are live. coursemart reads only the commits a warehouse has not loaded yet,
one JSON file each (``_delta_log/<version>.json``, parsed by ``delta_log``), to learn what they
added and removed; the change data feed is on, so a delete commits the deleted rows
(``_change_data/``) beside the rewritten files. Writes are ``delta_writes``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Final
from urllib.parse import unquote

import pyarrow as pa

from coursemart import model
from coursemart.errors import LakeError
from coursemart.lake.delta_log import (
    LARGEST_AT_KEY,
    LARGEST_ID_KEY,
    LOG_DIR,
    PARTITION,
    WRITING_MARK,
    Commit,
    DataFile,
    parse_commit,
    version_file,
)
from coursemart.lake.parquet import ParquetFiles, ids_as_int64
from coursemart.lake.store import COURSES_DIR

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


def first(exc: BaseException) -> str:
    """An error's first line."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
