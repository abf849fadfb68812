"""Writing the courses' Delta table: commits of part files already in its folder (one version
per batch, naming it) and deletes (with their change data), each through delta-rs, whose
optimistic concurrency retries a commit that loses a race on the next version. Each commit
records the largest course id so far, so that no id, a cancelled course's included, is given
again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import pyarrow as pa

from coursemart.errors import LakeError
from coursemart.lake.delta import TABLE_SCHEMA, CourseTable, first
from coursemart.lake.delta_log import (
    BATCH_KEY,
    LARGEST_AT_KEY,
    LARGEST_ID_KEY,
    OPERATION_KEY,
    PARTITION,
)
from coursemart.lake.store import COURSES_DIR

#: Set when the table is made: deletes then commit the rows they removed (the change data
#: feed), so a load reads what a delete took away without reading the files it rewrote.
TABLE_PROPERTIES: Final = {"delta.enableChangeDataFeed": "true"}


def largest_record(largest: int, seen: int | None) -> dict[str, str]:
    """The commit metadata recording ``largest`` as read at version ``seen``."""
    return {LARGEST_ID_KEY: str(largest), LARGEST_AT_KEY: str(-1 if seen is None else seen)}


def committed_version(table: Any, batch_id: str) -> int:
    """The version of the commit naming ``batch_id`` that ``table`` just made: delta-rs returns
    none, and retries a commit that lost a race on a later version."""
    table.update_incremental()
    for entry in table.history(10):
        if entry.get(BATCH_KEY) == batch_id:
            return int(entry["version"])
    return int(table.version())


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
