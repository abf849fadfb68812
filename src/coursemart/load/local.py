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


class LocalLoad:
    """Reads every part file with pyarrow, validates its rows and writes the good ones through
    the backend's fast path, inside the frame's transaction."""

    stages_apart = False

    def prepare(self, connection: Connection) -> None:
        """Nothing to prepare."""

    def stage(self, plan: Plan) -> None:
        """Nothing is staged ahead: rows are written batch by batch in the transaction."""

    def write(self, plan: Plan, backend: Backend, batch: Batch, position: int) -> Counts:
        """Validate and write one batch's rows; returns its counts."""
        lake, since = plan.job.lake, plan.job.since
        counts = Counts()
        problems = {path: schema_problems(batch.schema(path)) for path in batch.parts}
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
                    checked = check(conform(table), plan.rules, duplicates)
                if checked.good.num_rows:
                    backend.write_courses(with_lineage(checked.good, batch.batch_id))
                plan.rejected.add(checked.rejected, batch.batch_id, path)
                counts.add(checked)
                plan.job.progress(checked.read)
        plan.rejected.flush()
        return counts

    def merge(self, plan: Plan, backend: Backend, batch: Batch, position: int) -> None:
        """Move the batch's staged rows into ``courses``."""
        backend.merge_courses()

    def finish(self) -> None:
        """Nothing to clean up."""


def load(
    lake_url: str, warehouse_url: str | Warehouse, **options: Unpack[LoadOptions]
) -> LoadResult:
    """Load every committed batch not yet in the warehouse's manifest, in-process."""
    return run_load(LoadJob.create(lake_url, warehouse_url, **options), LocalLoad())
