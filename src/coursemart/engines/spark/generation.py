"""Generate on Spark: the executors build and write the part files, the driver commits.

The frame (dimensions, the id range, the batch writer, the Delta commit) is the local engine's
:func:`coursemart.generate.generate_batch`; only the writing of rows is distributed. The
executors write ``part-*.parquet`` through coursemart's lake module (never with Spark's own
Parquet writer, whose ``_SUCCESS`` and ``.crc`` files no commit should name); the driver then
counts them from their footers (:meth:`coursemart.lake.BatchWriter.adopt_parts`) and commits
them through delta-rs in one version. Delta's Spark jars are not needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from coursemart import generate as local
from coursemart import model
from coursemart.engines.spark.driver import SparkSession
from coursemart.engines.spark.paths import executor_lake
from coursemart.engines.spark.tasks import (
    WRITTEN,
    FileReader,
    PartWriter,
    file_tasks,
    partitions_for,
    spark_schema,
)
from coursemart.lake import BatchWriter, Lake

DataFrame = Any


def write_new_courses(
    spark: SparkSession,
    lake: Lake,
    batch_id: str,
    request: local.GenerateRequest,
    first_id: int,
    chunk_rows: int = local.CHUNK_ROWS,
) -> None:
    """Write the request's new courses into the batch's folder from the executors, a chunk per
    task.

    Each task runs the local engine's vectorised :func:`coursemart.generate.course_chunk` and
    writes its chunk as ``part-<chunk>.parquet`` through the lake module, so both engines write the
    same files for the same seed, ids and window, and nothing is built on the driver. A retried
    task rewrites the same file. The batch is not committed here.
    """
    count, seed, window = request.courses, request.seed, request.window
    chunks = partitions_for(count, chunk_rows)
    where = executor_lake(lake)

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from coursemart import model
        from coursemart.generate import course_chunk
        from coursemart.lake import open_lake

        writer = open_lake(where).batch_writer(batch_id, model.COURSES_SCHEMA)
        for record_batch in batches:
            for index in record_batch.column(0).to_pylist():
                offset = index * chunk_rows
                size = min(chunk_rows, count - offset)
                writer.write_part(course_chunk(seed, first_id + offset, size, window), part=index)
        yield pa.RecordBatch.from_pydict({"rows": [writer.rows]})

    frame = spark.range(0, chunks, numPartitions=chunks)
    frame.mapInArrow(write, spark_schema(WRITTEN)).collect()


def start_dates(seed: int, window: local.Window, salt: int = 9) -> Any:
    """Quarter hours of office time, uniform over the window's days, as in the local engine."""
    from pyspark.sql import functions as F

    origin = int(
        datetime(window.start.year, window.start.month, window.start.day, tzinfo=UTC).timestamp()
    )
    days = F.floor(F.rand(seed * 1_000 + salt) * window.days)
    slots = local.FIRST_SLOT + F.floor(
        F.rand(seed * 1_000 + salt + 1) * (local.LAST_SLOT - local.FIRST_SLOT)
    )
    return F.timestamp_seconds((origin + days * 86_400 + slots * local.SLOT_SECONDS).cast("long"))


def known_courses(spark: SparkSession, lake: Lake) -> DataFrame:
    """Every course of the lake's committed batches (id, name, category, level), once each,
    read by the executors through the lake module (the files of the table's latest version,
    listed once)."""
    paths = tuple(file.path for file in lake.live_files() if file.batch_id)
    schema = model.COURSES_SCHEMA.remove(model.COURSES_SCHEMA.get_field_index("start_date"))
    reader = FileReader(executor_lake(lake), paths, schema)
    rows = file_tasks(spark, len(paths)).mapInArrow(reader, spark_schema(schema))
    return rows.dropDuplicates(["course_id"])


def write_rescheduled(
    spark: SparkSession, lake: Lake, batch_id: str, request: local.GenerateRequest, first_part: int
) -> int:
    """Write a sample of the request's fraction of the lake's courses, with new start dates, into
    the batch as part files from ``first_part`` on; returns how many courses."""
    from pyspark.sql import functions as F

    if request.reschedule <= 0 or not lake.committed_batches():
        return 0
    known = known_courses(spark, lake)
    moved = int(round(request.reschedule * known.count()))
    if not moved:
        return 0
    chosen = known.orderBy(F.rand(request.seed * 1_000 + 11)).limit(moved)
    chosen = chosen.withColumn("start_date", start_dates(request.seed + 1, request.window))
    chosen = chosen.repartition(partitions_for(moved, local.CHUNK_ROWS))
    writer = PartWriter(executor_lake(lake), batch_id, first_part)
    chosen.mapInArrow(writer, spark_schema(WRITTEN)).collect()
    return moved


def generate(
    spark: SparkSession,
    lake_url: str,
    *,
    courses: int = local.DEFAULT_COURSES,
    seed: int = 0,
    window: local.Window | None = None,
    reschedule: float = 0.0,
) -> local.GenerateResult:
    """One batch committed to the lake's Delta table, its part files written by Spark's
    executors; killed before the commit, it leaves files no reader sees (the next generate or
    ``coursemart lake vacuum`` removes them)."""
    request = local.GenerateRequest(courses, seed, window or local.default_window(), reschedule)

    def write_rows(lake: Lake, writer: BatchWriter, first_id: int) -> int:
        write_new_courses(spark, lake, writer.batch_id, request, first_id)
        first_part = partitions_for(request.courses, local.CHUNK_ROWS)
        moved = write_rescheduled(spark, lake, writer.batch_id, request, first_part)
        writer.adopt_parts()
        return moved

    return local.generate_batch(lake_url, request, write_rows)
