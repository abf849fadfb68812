"""Work the executors do through the lake module, so that both engines read and write the lake
the same way (literal paths, the same Parquet settings, part files a Delta commit names)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from coursemart.engines.spark.driver import SparkSession

DataFrame = Any


#: What a writing task answers: how many rows it wrote.
WRITTEN: Final = pa.schema([("rows", pa.int64())])
#: What :class:`IdReader` answers.
IDS: Final = pa.schema([("course_id", pa.int64())])


def spark_schema(schema: pa.Schema) -> Any:
    """The Spark schema of an Arrow schema, every column nullable (files of other writers may
    hold nulls), made in Python: given as a DDL string instead, the driver JVM would start
    Spark's SQL parser for it, seconds of a short run on a cold JVM."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(pa.schema([field.with_nullable(True) for field in schema]))


def file_tasks(spark: SparkSession, files: int) -> DataFrame:
    """One Spark task per file: a frame of the file numbers ``0 … files-1``, one per partition."""
    return spark.range(0, files, numPartitions=files)


@dataclass(frozen=True)
class FileReader:
    """On the executors: the ``columns`` of the part files each task names, as ``schema``."""

    where: str
    paths: tuple[str, ...]
    schema: pa.Schema
    since: datetime | None = None

    def __call__(self, tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from coursemart.lake import open_lake

        lake = open_lake(self.where)
        for task in tasks:
            for index in task.column(0).to_pylist():
                for batch in lake.read_file_batches(
                    self.paths[index], since=self.since, columns=self.schema.names
                ):
                    yield from pa.Table.from_batches([batch]).cast(self.schema).to_batches()


@dataclass(frozen=True)
class IdReader:
    """On the executors: the non-null ``course_id`` values of the files each task names."""

    where: str
    paths: tuple[str, ...]
    since: datetime | None

    def __call__(self, tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from coursemart.lake import open_lake

        lake = open_lake(self.where)
        for task in tasks:
            for index in task.column(0).to_pylist():
                for batch in lake.read_file_batches(
                    self.paths[index], since=self.since, columns=["course_id"]
                ):
                    ids = pc.drop_null(batch.column(0)).to_numpy(zero_copy_only=False)
                    yield pa.record_batch(
                        [pa.array(np.asarray(ids, dtype=np.int64))], ["course_id"]
                    )


@dataclass(frozen=True)
class PartWriter:
    """On the executors: each task writes its rows as one part file of a batch, numbered from
    ``first_part`` by the task's partition; yields how many rows it wrote."""

    where: str
    batch_id: str
    first_part: int

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        from coursemart import model
        from coursemart.lake import open_lake

        received = [batch for batch in batches if batch.num_rows]
        if received:
            context = TaskContext.get()
            part = self.first_part + (context.partitionId() if context is not None else 0)
            writer = open_lake(self.where).batch_writer(self.batch_id, model.COURSES_SCHEMA)
            writer.write_part(pa.Table.from_batches(received), part=part)
        yield pa.RecordBatch.from_pydict({"rows": [sum(batch.num_rows for batch in received)]})


def partitions_for(rows: int, rows_per_part: int) -> int:
    """How many part files ``rows`` rows make, ``rows_per_part`` at most in each."""
    return max(1, math.ceil(rows / rows_per_part))
