"""The local engine's part of a load: each batch read, validated and written in-process."""

from __future__ import annotations

from typing import Unpack

import pyarrow as pa
from sqlalchemy.engine import Connection

from coursemart.lake import Batch
from coursemart.load.backends import Backend, with_lineage
from coursemart.load.conform import conform
from coursemart.load.stage import LoadJob, LoadOptions, LoadResult, Plan, run_load
from coursemart.load.validate import Counts, check, duplicate_ids, reject_all, schema_problems
from coursemart.warehouse import Warehouse
from coursemart.warehouse.columns import kind


class LocalLoad:
    """Reads every part file with pyarrow, validates its rows and writes the good ones through
    the backend's fast path, inside the frame's transaction. Columns the lake's table gained are
    kept aside per batch and set on the rows the batch won once it is merged."""

    stages_apart = False

    def __init__(self) -> None:
        self.extra_rows: list[pa.Table] = []

    def prepare(self, connection: Connection) -> None:
        """Nothing to prepare."""

    def stage(self, plan: Plan) -> None:
        """Nothing is staged ahead: rows are written batch by batch in the transaction."""

    def write(self, plan: Plan, backend: Backend, batch: Batch, position: int) -> Counts:
        """Validate and write one batch's rows; returns its counts."""
        lake, since = plan.job.lake, plan.job.since
        counts = Counts()
        names = [extra.name for extra in plan.extras]
        problems = {
            path: schema_problems(batch.schema(path)) + extra_problems(batch.schema(path), plan)
            for path in batch.parts
        }
        readable = [path for path in batch.parts if not problems[path]]
        id_arrays = (
            record_batch.column(0)
            for path in readable
            for record_batch in lake.read_file_batches(path, since=since, columns=["course_id"])
        )
        duplicates = duplicate_ids(id_arrays, batch.id_range(readable))
        for path in batch.parts:
            for record_batch in lake.read_file_batches(
                path, since=None if problems[path] else since
            ):
                table = pa.Table.from_batches([record_batch])
                if problems[path]:
                    checked = reject_all(table, "schema: " + "; ".join(problems[path]))
                else:
                    conformed = with_extras(conform(table), table, plan)
                    checked = check(conformed, plan.rules, duplicates, names)
                if checked.good.num_rows:
                    backend.write_courses(with_lineage(checked.good, batch.batch_id))
                    if names:
                        self.extra_rows.append(checked.good.select(["course_id", *names]))
                plan.rejected.add(checked.rejected, batch.batch_id, path)
                counts.add(checked)
                plan.job.progress(checked.read)
        plan.rejected.flush()
        return counts

    def merge(self, plan: Plan, backend: Backend, batch: Batch, position: int) -> None:
        """Move the batch's staged rows into ``courses``, then set the extra columns of the
        rows it won."""
        backend.merge_courses()
        if self.extra_rows:
            backend.update_extras(batch.batch_id, pa.concat_tables(self.extra_rows))
            self.extra_rows = []

    def finish(self) -> None:
        """Nothing to clean up."""


def extra_problems(schema: pa.Schema, plan: Plan) -> list[str]:
    """A file whose extra column is not of the table's type cannot be read as the table."""
    problems = []
    for extra in plan.extras:
        if schema.names.count(extra.name) != 1:
            continue  # absent (null), or repeated (refused by schema_problems)
        if kind(schema.field(extra.name).type) != extra.lake_type:
            found = schema.field(extra.name).type
            problems.append(f"column {extra.name} is {found}, the table says {extra.lake_type}")
    return problems


def with_extras(conformed: pa.Table, table: pa.Table, plan: Plan) -> pa.Table:
    """The conformed rows with the table's extra columns (null where a file predates them)."""
    for extra in plan.extras:
        if extra.name in table.column_names:
            column = table[extra.name]
        else:
            column = pa.nulls(table.num_rows, pa.null())
        conformed = conformed.append_column(extra.name, column)
    return conformed


def load(
    lake_url: str, warehouse_url: str | Warehouse, **options: Unpack[LoadOptions]
) -> LoadResult:
    """Load every committed batch not yet in the warehouse's manifest, in-process."""
    return run_load(LoadJob.create(lake_url, warehouse_url, **options), LocalLoad())
