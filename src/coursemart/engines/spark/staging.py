"""Load on Spark: the executors read and validate each batch with the local engine's functions
and stage the good rows; the load frame (:mod:`coursemart.load.stage`) merges the staging table,
the dimensions and the manifest in one warehouse transaction from the driver."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Unpack

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coursemart import model
from coursemart.engines.spark.driver import SparkSession
from coursemart.engines.spark.jdbc import JdbcTarget, drop_stale_stages, stage_table, staged_ids
from coursemart.engines.spark.paths import executor_lake
from coursemart.engines.spark.tasks import IDS, IdReader, file_tasks, spark_schema
from coursemart.lake import Batch, Lake
from coursemart.load.backends import COURSE_COLUMNS, Backend, stage_merger
from coursemart.load.stage import LoadJob, LoadOptions, LoadResult, Plan, run_load
from coursemart.load.validate import Counts, Rules, count_reasons, reject_all, schema_problems
from coursemart.warehouse import Warehouse

DataFrame = Any

#: What the executors return: course columns (nullable), the name folded for search (good rows),
#: the reason (null for good rows), the file (null for good rows).
CHECKED_ARROW: Final = pa.schema(
    [pa.field(f.name, f.type, nullable=True) for f in model.COURSES_SCHEMA]
    + [
        pa.field("search_name", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("source_file", pa.string()),
    ]
)
#: Up to this many rows in a batch, its ids are checked for repeats on the driver (one column
#: read through the lake module, a bitmap over the id range); above it, by a Spark shuffle.
DRIVER_ID_SCAN_ROWS: Final = 50_000_000


@dataclass(frozen=True)
class StageCopy:
    """Where executors COPY their good rows: PostgreSQL conninfo, staging table, batch position."""

    conninfo: str
    table: str
    seq: int
    batch_id: str


@dataclass(frozen=True)
class FileChecker:
    """The local engine's reading and validation, run on the executors, one task per file.

    Each task gets file numbers (indexes into ``paths``), reads those files through the lake
    module (``since`` pushed down, as locally) and checks their rows with the local rules. With
    ``copy_to`` it COPYs its good rows into the staging table itself, in one transaction per
    task, and returns only the refused rows; otherwise it returns every row with its reason
    (null for good ones).
    """

    where: str
    paths: tuple[str, ...]
    since: datetime | None
    rules: Rules
    duplicates: tuple[int, ...]
    copy_to: StageCopy | None = None

    def __call__(self, tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from coursemart.lake import open_lake
        from coursemart.load.conform import conform
        from coursemart.load.validate import check

        lake = open_lake(self.where)
        known = pa.array(self.duplicates, pa.int64())
        connection = None
        try:
            for task in tasks:
                for path in (self.paths[index] for index in task.column(0).to_pylist()):
                    for record_batch in lake.read_file_batches(path, since=self.since):
                        table = conform(pa.Table.from_batches([record_batch]))
                        checked = check(table, self.rules, known)
                        rejected = _with_source(checked.rejected, path)
                        if self.copy_to is None:
                            yield from _with_source(
                                _with_no_reason(checked.good), None
                            ).to_batches()
                        elif checked.good.num_rows:
                            connection = connection or _copy_connection(self.copy_to)
                            _copy(connection, self.copy_to, checked.good)
                        yield from rejected.to_batches()
            if connection is not None:
                connection.commit()
        finally:
            if connection is not None:
                connection.close()


def _with_no_reason(good: pa.Table) -> pa.Table:
    """Good rows with their name folded for search and no reason."""
    from coursemart.search import search_names

    good = good.append_column("search_name", search_names(good["course_name"]))
    return good.append_column("reason", pa.nulls(good.num_rows, pa.string()))


def _with_source(rows: pa.Table, path: str | None) -> pa.Table:
    """Rows in the executors' answer schema, each naming its file (null for good rows)."""
    source = pa.array([path] * rows.num_rows, pa.string())
    rows = rows.append_column("source_file", source)
    if "search_name" not in rows.column_names:
        rows = rows.append_column("search_name", pa.nulls(rows.num_rows, pa.string()))
    return rows.select(CHECKED_ARROW.names).cast(CHECKED_ARROW)


def _copy_connection(target: StageCopy) -> Any:
    import psycopg

    connection = psycopg.connect(target.conninfo)
    connection.execute("SET TIME ZONE 'UTC'")
    return connection


def _copy(connection: Any, target: StageCopy, good: pa.Table) -> None:
    from coursemart.load.backends import with_lineage
    from coursemart.load.backends.postgres import copy_rows

    seq = pa.array([target.seq] * good.num_rows, pa.int32())
    stored = with_lineage(good, target.batch_id).append_column("batch_seq", seq)
    copy_rows(connection, target.table, stored)


class SparkLoad:
    """The Spark engine's part of a load: each batch validated and staged by the executors
    before the merge; the merge takes the staging table, batch by batch."""

    stages_apart = True

    def __init__(self, spark: SparkSession, target: Warehouse) -> None:
        self.spark = spark
        self.target = JdbcTarget.of(target)  # refuses a database Spark cannot load first
        self.engine = target.engine()
        self.stage_table: sa.Table | None = None
        self.restaged: dict[str, bool] = {}

    def prepare(self, connection: Connection) -> None:
        drop_stale_stages(connection)

    def stage(self, plan: Plan) -> None:
        if not plan.batches:
            return
        self.stage_table = stage_table(plan.load_id, unlogged=self.target.copy_conninfo is not None)
        with self.engine.begin() as ddl:
            self.stage_table.create(ddl)
        for seq, batch in enumerate(plan.batches):
            plan.counts[batch.batch_id] = self.stage_batch(plan, batch, seq)

    def write(self, plan: Plan, backend: Backend, batch: Batch, position: int) -> Counts:
        return plan.counts[batch.batch_id]  # the executors wrote the rows while staging

    def merge(self, plan: Plan, backend: Backend, batch: Batch, position: int) -> None:
        assert self.stage_table is not None
        where = f"batch_seq = {position}"
        stage_merger(backend).merge_stage(
            self.stage_table.name, where, distinct=self.restaged[batch.batch_id]
        )

    def finish(self) -> None:
        try:
            if self.stage_table is not None:
                with self.engine.begin() as cleanup:
                    self.stage_table.drop(cleanup, checkfirst=True)
        finally:
            self.engine.dispose()

    def stage_batch(self, plan: Plan, batch: Batch, seq: int) -> Counts:
        """Validate one batch on the executors and append its good rows to the staging table."""
        lake, counts, batch_id = plan.job.lake, Counts(), batch.batch_id
        problems = {path: schema_problems(batch.schema(path)) for path in batch.parts}
        for path in batch.parts:  # files whose columns cannot be courses: refused whole, as locally
            if problems[path]:
                table = pa.Table.from_batches(list(lake.read_file_batches(path)))
                checked = reject_all(table, "schema: " + "; ".join(problems[path]))
                plan.rejected.add(checked.rejected, batch_id, path)
                counts.add(checked)
        readable = [path for path in batch.parts if not problems[path]]
        self.restaged[batch_id] = False
        if readable:
            bad = self.check_and_stage(plan, batch, readable, seq)
            assert self.stage_table is not None
            good_rows, self.restaged[batch_id] = staged_ids(self.engine, self.stage_table, seq)
            for source in sorted(set(bad["source_file"].to_pylist())):
                rows = bad.filter(pc.equal(bad["source_file"], source))
                plan.rejected.add(
                    rows.drop_columns(["source_file", "search_name"]), batch_id, source
                )
            count_reasons(bad, counts.reasons)
            counts.read += good_rows + bad.num_rows
            counts.loaded += good_rows
            counts.rejected += bad.num_rows
        plan.rejected.flush()
        return counts

    def check_and_stage(self, plan: Plan, batch: Batch, paths: list[str], seq: int) -> pa.Table:
        """Run the checks on the executors, staging the good rows; returns the refused ones."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        assert self.stage_table is not None
        lake, since = plan.job.lake, plan.job.since
        duplicates = tuple(repeated_ids(self.spark, lake, batch, paths, since))
        where = executor_lake(lake)
        tasks = file_tasks(self.spark, len(paths))
        conninfo = self.target.copy_conninfo
        if conninfo is not None:  # executors COPY their good rows; only refused rows come back
            copy_to = StageCopy(conninfo, self.stage_table.name, seq, batch.batch_id)
            checker = FileChecker(where, tuple(paths), since, plan.rules, duplicates, copy_to)
            refused: pa.Table = tasks.mapInArrow(checker, spark_schema(CHECKED_ARROW)).toArrow()
            return refused
        checker = FileChecker(where, tuple(paths), since, plan.rules, duplicates)
        checked = tasks.mapInArrow(checker, spark_schema(CHECKED_ARROW)).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        try:  # JDBC from the executors
            good = checked.filter(F.col("reason").isNull()).select(*COURSE_COLUMNS, "search_name")
            good = good.withColumn("batch_id", F.lit(batch.batch_id))
            good = good.withColumn("batch_seq", F.lit(seq))
            good.write.jdbc(
                self.target.url,
                self.stage_table.name,
                mode="append",
                properties=self.target.properties,
            )
            refused = checked.filter(F.col("reason").isNotNull()).toArrow()
            return refused
        finally:
            checked.unpersist()


def repeated_ids(
    spark: SparkSession, lake: Lake, batch: Batch, paths: list[str], since: datetime | None
) -> list[int]:
    """Ids that occur more than once in the batch's files ``paths`` (rows from ``since`` on)."""
    from coursemart.load.validate import duplicate_ids

    rows = sum(int(batch.footers[path].num_rows) for path in paths)
    if rows <= DRIVER_ID_SCAN_ROWS:
        ids = (
            record_batch.column(0)
            for path in paths
            for record_batch in lake.read_file_batches(path, since=since, columns=["course_id"])
        )
        found: list[int] = duplicate_ids(ids, batch.id_range(paths)).to_pylist()
        return found
    reader = IdReader(executor_lake(lake), tuple(paths), since)
    ids_frame = file_tasks(spark, len(paths)).mapInArrow(reader, spark_schema(IDS))
    twice = ids_frame.groupBy("course_id").count().filter("count > 1 AND course_id IS NOT NULL")
    return [row["course_id"] for row in twice.collect()]


def load(
    spark: SparkSession,
    lake_url: str,
    warehouse_url: str | Warehouse,
    **options: Unpack[LoadOptions],
) -> LoadResult:
    """Load new committed batches with Spark: the frame, manifest, rules and merge of the local
    loader, with validation and staging on the executors."""
    job = LoadJob.create(lake_url, warehouse_url, **options)
    return run_load(job, SparkLoad(spark, job.warehouse))
