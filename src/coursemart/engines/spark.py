"""The Spark engine: generate and load on Apache Spark, with the same lake and the same warehouse.

Imported only when ``--engine spark`` is chosen. Generation is distributed (``spark.range`` and
column expressions over the same vocabularies as the local engine); loading reads the new committed
batches with Spark, validates them on the executors with the very functions of the local engine
(``mapInArrow``), writes good rows in parallel over JDBC into a staging table, and then merges the
staging table, the dimensions and the manifest in one warehouse transaction from the driver.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from coursemart import generate as local
from coursemart import lake as lakes
from coursemart import model, warehouse
from coursemart.config import mask_url
from coursemart.engines import class_archive
from coursemart.errors import CoursemartError, InputError, LakeError
from coursemart.load import manifest
from coursemart.load.backends import COURSE_COLUMNS, Backend, LockBusyError, backend_for
from coursemart.load.loader import (
    LoadResult,
    RejectedRows,
    abandon,
    as_utc,
    dimension_rows,
    record_load,
    record_merged_batch,
)
from coursemart.load.validate import Counts, Rules, count_reasons, reject_all, schema_problems

SparkSession = Any  # pyspark has no type hints mypy can use here
DataFrame = Any
STAGE_PREFIX: Final = "coursemart_stage_"
ROWS_PER_PARTITION: Final = 1_000_000


class SparkUnavailableError(InputError):
    """PySpark (or Java) is missing."""


# ---------------------------------------------------------------------------------------------
# Session


def session(
    master: str = "local[*]",
    conf: dict[str, str] | None = None,
    jars: Sequence[str] = (),
    app_name: str = "coursemart",
    jvm_cache: Path | None = None,
) -> SparkSession:
    """A Spark session in UTC, writing Parquet as coursemart's lake expects.

    ``jars`` that exist are handed to Spark (the JDBC drivers); ``conf`` passes anything else
    (``spark.driver.extraJavaOptions`` is added to coursemart's own driver options). With
    ``jvm_cache``, the driver JVM records or maps its class archive there
    (:mod:`coursemart.engines.class_archive`); end such a session with :func:`stop`.
    """
    global _recording
    try:
        from pyspark.sql import SparkSession as Session
    except ImportError as exc:
        raise SparkUnavailableError(
            "the Spark engine needs PySpark: pip install 'coursemart[spark]' (and Java 17+)"
        ) from exc
    conf = dict(conf or {})
    driver_options = " ".join(
        ["-Duser.timezone=UTC", conf.pop("spark.driver.extraJavaOptions", "")]
    ).strip()
    archive = _archive_plan(jvm_cache, driver_options, conf) if jvm_cache else None
    if archive is not None:
        driver_options = f"{driver_options} {archive.java_options}"
    builder = (
        Session.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", driver_options)
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.parquet.compression.codec", "zstd")
        .config("spark.ui.showConsoleProgress", "false")
        # Executors validate and COPY whole Arrow batches: fewer, larger ones cost less.
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "131072")
        .config("spark.ui.enabled", "false")
    )
    if master.startswith("local"):  # workers run this interpreter, which has coursemart
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.pyspark.python", sys.executable)
        # 200 shuffle partitions are for clusters; on one machine they are mostly overhead.
        builder = builder.config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 2)))
    present = [jar for jar in jars if jar and os.path.exists(jar)]
    if present:
        builder = builder.config("spark.jars", ",".join(present))
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - Java missing or the master unreachable
        raise SparkUnavailableError(
            f"cannot start Spark ({master}): {exc}".splitlines()[0]
        ) from exc
    if archive is not None and archive.record:
        _recording = archive
    elif archive is not None:
        pid = _driver_pid(spark)
        if pid is not None:
            class_archive.discard_if_unused(archive, pid)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _driver_pid(spark: SparkSession) -> int | None:
    """The process id of the driver JVM, when this process talks to it directly."""
    try:
        jvm = spark.sparkContext._jvm
        return int(jvm.java.lang.ProcessHandle.current().pid()) if jvm is not None else None
    except Exception:  # noqa: BLE001 - Spark Connect sessions have no SparkContext
        return None


#: The class archive the running driver JVM records at its exit, if it does.
_recording: class_archive.Plan | None = None

#: Driver settings that shape the JVM, so a class archive recorded under one value may not fit
#: another: they are part of the archive's name.
ARCHIVE_CONTEXT: Final = (
    "spark.driver.memory",
    "spark.driver.extraClassPath",
    "spark.driver.defaultJavaOptions",
)


def recording() -> class_archive.Plan | None:
    """The class archive this process's driver JVM will record when :func:`stop` ends it."""
    return _recording


def _archive_plan(
    folder: Path, driver_options: str, conf: dict[str, str]
) -> class_archive.Plan | None:
    """The class archive for a driver JVM this process is about to launch, if it launches one."""
    from pyspark import SparkContext
    from pyspark.find_spark_home import _find_spark_home

    if SparkContext._gateway is not None:
        return None  # the JVM runs already: this process started it before
    if "spark.remote" in conf or any(
        variable in os.environ
        for variable in ("PYSPARK_GATEWAY_PORT", "PYSPARK_SUBMIT_ARGS", "SPARK_REMOTE")
    ):
        return None  # spark-submit, Databricks or Spark Connect provide the driver, or its flags
    context = [f"{key}={conf.get(key, '')}" for key in ARCHIVE_CONTEXT]
    context += [
        f"{name}={os.environ.get(name, '')}" for name in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS")
    ]
    return class_archive.plan(folder, Path(_find_spark_home()), driver_options, *context)


def stop(spark: SparkSession, *, keep_archive: bool = True, timeout: float = 300.0) -> None:
    """Stop the session. When its JVM records a class archive, end the JVM: with
    ``keep_archive`` it writes the archive, which is then put in place; without (a failed or
    interrupted run), it is killed and records nothing. Otherwise the JVM stays up, as PySpark
    leaves it."""
    global _recording
    archive, _recording = _recording, None
    try:
        spark.stop()
    finally:
        if archive is not None:
            _end_recording_jvm(archive, keep_archive, timeout)


def _end_recording_jvm(archive: class_archive.Plan, keep: bool, timeout: float) -> None:
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    process = getattr(gateway, "proc", None)
    if gateway is None or process is None or process.stdin is None:
        return
    gateway.shutdown()
    if keep:
        process.stdin.close()  # the JVM exits when its stdin closes, writing the archive first
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            keep = False
    if not keep:
        process.kill()  # a half-written archive is never put in place
        process.wait()
    SparkContext._gateway = None
    SparkContext._jvm = None
    if keep:
        class_archive.finish(archive)
    else:
        archive.unfinished.unlink(missing_ok=True)


def hadoop_path(lake: lakes.Lake, path: str) -> str:
    """The path as Spark's Hadoop filesystems name it.

    Local lakes become ``file://``; Azure lakes (``abfs://container/prefix``, ``az://``) become
    ``abfss://container@<account>.dfs.core.windows.net/prefix`` with the account fsspec knows;
    ``s3://`` becomes ``s3a://``; other schemes are kept.
    """
    if lake.is_local:
        return f"file://{path}"
    scheme = lake.url.split("://", 1)[0].lower()
    account = _azure_account(lake.fs)
    if scheme in ("abfs", "abfss", "az") and account:
        container, _, rest = path.lstrip("/").partition("/")
        return f"abfss://{container}@{account}.dfs.core.windows.net/{rest}"
    if scheme in ("s3", "s3a"):
        return f"s3a://{path.lstrip('/')}"
    return f"{scheme}://{path.lstrip('/')}"


def _azure_account(fs: Any) -> str | None:
    """The storage account of an adlfs filesystem, given directly or in its connection string."""
    account = getattr(fs, "account_name", None)
    if account:
        return str(account)
    for part in str(getattr(fs, "connection_string", "") or "").split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "accountname" and value:
            return value.strip()
    return None


# ---------------------------------------------------------------------------------------------
# Generate


def write_new_courses(
    spark: SparkSession,
    lake: lakes.Lake,
    batch_id: str,
    *,
    seed: int,
    first_id: int,
    count: int,
    window: local.Window,
    chunk_rows: int = local.CHUNK_ROWS,
) -> tuple[int, int]:
    """Write ``count`` new courses into the batch's folder from the executors, a chunk per task.

    Each task runs the local engine's vectorised :func:`coursemart.generate.course_chunk` and
    writes its chunk as ``part-<chunk>.parquet`` through the lake module, so both engines write the
    same files for the same seed, ids and window, and nothing is built on the driver. A retried
    task rewrites the same file. Returns (rows, bytes); the batch is not committed here.
    """
    chunks = math.ceil(count / chunk_rows)
    where = _executor_lake(lake)

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from coursemart import lake as lakes
        from coursemart import model
        from coursemart.generate import course_chunk

        writer = lakes.BatchWriter(lakes.open_lake(where), batch_id, model.COURSES_SCHEMA)
        for record_batch in batches:
            for index in record_batch.column(0).to_pylist():
                offset = index * chunk_rows
                size = min(chunk_rows, count - offset)
                writer.write_part(course_chunk(seed, first_id + offset, size, window), part=index)
        yield pa.RecordBatch.from_pydict({"rows": [writer.rows], "bytes": [writer.bytes]})

    tasks = spark.range(0, chunks, numPartitions=chunks).mapInArrow(write, "rows long, bytes long")
    written = tasks.collect()
    return sum(row["rows"] for row in written), sum(row["bytes"] for row in written)


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


def committed_frame(spark: SparkSession, lake: lakes.Lake, batch_ids: Sequence[str]) -> DataFrame:
    paths = [hadoop_path(lake, p) for b in batch_ids for p in lakes.batch_files(lake, b)]
    return spark.read.parquet(*paths)


def generate(
    spark: SparkSession,
    lake_url: str,
    *,
    courses: int = local.DEFAULT_COURSES,
    seed: int = 0,
    window: local.Window | None = None,
    reschedule: float = 0.0,
) -> local.GenerateResult:
    """One committed batch in the lake layout, its part files written by Spark's executors."""
    from pyspark.sql import functions as F

    if courses < 1:
        raise InputError(f"--courses must be at least 1, got {courses}")
    if not 0.0 <= reschedule <= 1.0:
        raise InputError(f"--reschedule must be a fraction between 0 and 1, got {reschedule}")
    window = window or local.default_window()
    began = time.perf_counter()
    lake = lakes.open_lake(lake_url, create=True)
    lakes.write_dimension(lake, "categories", model.categories_table())
    lakes.write_dimension(lake, "levels", model.levels_table())
    with lakes.generate_lock(lake):
        existing = lakes.committed_batches(lake)
        first_id = lakes.max_course_id(lake) + 1
        batch_id = lakes.new_id()
        writer = lakes.BatchWriter(lake, batch_id, model.COURSES_SCHEMA)
        rows, _ = write_new_courses(
            spark, lake, batch_id, seed=seed, first_id=first_id, count=courses, window=window
        )
        moved = 0
        if reschedule > 0 and existing:
            known = (
                committed_frame(spark, lake, existing)
                .select(*COURSE_COLUMNS[:4])
                .dropDuplicates(["course_id"])
            )
            moved = round(reschedule * known.count())
        if moved:  # an empty Spark write would still leave a part file with no rows
            chosen = known.orderBy(F.rand(seed * 1_000 + 11)).limit(moved)
            (
                chosen.withColumn("start_date", start_dates(seed + 1, window))
                .sortWithinPartitions("start_date", "course_id")
                .write.mode("append")
                .option("compression", lakes.PARQUET_COMPRESSION)
                .parquet(hadoop_path(lake, lake.batch_dir(batch_id)))
            )
        writer.rows = rows + moved
        writer.parts = lakes.batch_files(lake, batch_id)
        writer.commit()  # _SUCCESS last, once every part file is in place
    size = sum(lake.fs.size(p) for p in writer.parts)
    return local.GenerateResult(
        batch_id=batch_id,
        rows=courses + moved,
        new_courses=courses,
        rescheduled=moved,
        first_id=first_id,
        last_id=first_id + courses - 1,
        bytes=size,
        seconds=time.perf_counter() - began,
    )


# ---------------------------------------------------------------------------------------------
# Load


def jdbc_target(warehouse_url: str) -> tuple[str, dict[str, str]]:
    """The JDBC URL and connection properties for a warehouse's SQLAlchemy URL."""
    url = warehouse.normalize_url(warehouse_url)
    backend = url.get_backend_name()
    host = url.host or "127.0.0.1"
    properties = {"user": url.username or "", "password": url.password or ""}
    if backend == "postgresql":
        jdbc = f"jdbc:postgresql://{host}:{url.port or 5432}/{url.database}"
        properties["driver"] = "org.postgresql.Driver"
        properties["reWriteBatchedInserts"] = "true"
        options = " ".join(str(v) for v in _as_list(url.query.get("options")))
        for option in options.split():
            if option.startswith("-csearch_path="):
                properties["currentSchema"] = option.split("=", 1)[1]
    elif backend in ("mysql", "mariadb"):
        # jdbc:mysql: gets Spark's MySQL dialect (backticks); permitMysqlScheme lets MariaDB's
        # driver accept that scheme
        jdbc = f"jdbc:mysql://{host}:{url.port or 3306}/{url.database}?permitMysqlScheme"
        properties["driver"] = "org.mariadb.jdbc.Driver"
        properties["rewriteBatchedStatements"] = "true"
        properties["sessionVariables"] = "time_zone='+00:00'"
    elif backend == "mssql":
        jdbc = (
            f"jdbc:sqlserver://{host}:{url.port or 1433};databaseName={url.database};encrypt=true"
        )
        properties["driver"] = "com.microsoft.sqlserver.jdbc.SQLServerDriver"
    else:
        raise InputError(
            f"the Spark engine loads into PostgreSQL, MariaDB/MySQL or SQL Server, not {backend}: "
            "use --engine local"
        )
    return jdbc, properties


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, tuple | list) else [value]


def stage_table(load_id: str, *, unlogged: bool = False) -> sa.Table:
    """A staging table for one load: the course columns, no keys, and the batch's position.

    ``unlogged`` (PostgreSQL): no write-ahead log for a scratch table that is dropped anyway.
    """
    name = STAGE_PREFIX + "".join(ch if ch.isalnum() else "_" for ch in load_id.lower())
    columns = [sa.Column(c.name, c.type, nullable=False) for c in warehouse.courses.columns]
    return sa.Table(
        name,
        sa.MetaData(),
        *columns,
        sa.Column("batch_seq", sa.Integer, nullable=False),
        prefixes=["UNLOGGED"] if unlogged else [],
    )


#: What the executors return: course columns (nullable), the reason (null for good rows), the file.
CHECKED_ARROW: Final = pa.schema(
    [pa.field(f.name, f.type, nullable=True) for f in model.COURSES_SCHEMA]
    + [pa.field("reason", pa.string()), pa.field("source_file", pa.string())]
)
CHECKED_SCHEMA: Final = (
    "course_id long, course_name string, category_id int, level_id int, start_date timestamp, "
    "reason string, source_file string"
)


def _checker(
    where: str,
    paths: list[str],
    since: datetime | None,
    rules: Rules,
    duplicates: list[int],
    copy_to: tuple[str, str, int] | None = None,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The local engine's reading and validation, run on the executors, one task per file.

    Each task gets file numbers (indexes into ``paths``), reads those files through the lake
    module (``since`` pushed down, as locally) and checks their rows with the local rules. With
    ``copy_to`` (PostgreSQL conninfo, staging table, batch position) it COPYs its good rows into
    the staging table itself, in one transaction per task, and returns only the refused rows;
    otherwise it returns every row with its reason (null for good ones).
    """

    def check_files(tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from coursemart import lake as lakes
        from coursemart.load.backends import copy_rows
        from coursemart.load.validate import check, conform

        lake = lakes.open_lake(where)
        known = pa.array(duplicates, pa.int64())
        connection = None
        try:
            for task in tasks:
                for index in task.column(0).to_pylist():
                    path = paths[index]
                    for record_batch in lakes.read_file_batches(lake, path, since=since):
                        checked = check(
                            conform(pa.Table.from_batches([record_batch])), rules, known
                        )
                        source = pa.array([path] * checked.rejected.num_rows, pa.string())
                        rejected = checked.rejected.append_column("source_file", source)
                        rejected = rejected.select(CHECKED_ARROW.names).cast(CHECKED_ARROW)
                        if copy_to is not None:
                            if checked.good.num_rows:
                                if connection is None:
                                    import psycopg

                                    connection = psycopg.connect(copy_to[0])
                                    connection.execute("SET TIME ZONE 'UTC'")
                                seq = pa.array([copy_to[2]] * checked.good.num_rows, pa.int32())
                                good = checked.good.append_column("batch_seq", seq)
                                copy_rows(connection, copy_to[1], good)
                            yield from rejected.to_batches()
                            continue
                        nothing = pa.nulls(checked.good.num_rows, pa.string())
                        good = checked.good.append_column("reason", nothing)
                        good = good.append_column("source_file", nothing).cast(CHECKED_ARROW)
                        yield from good.to_batches()
                        yield from rejected.to_batches()
            if connection is not None:
                connection.commit()
        finally:
            if connection is not None:
                connection.close()

    return check_files


def _file_tasks(spark: SparkSession, files: int) -> DataFrame:
    """One Spark task per file: a frame of the file numbers ``0 … files-1``, one per partition."""
    return spark.range(0, files, numPartitions=files)


def _executor_lake(lake: lakes.Lake) -> str:
    """The lake as executors open it: an absolute folder or the URL."""
    return lake.root if lake.is_local else lake.url


def copy_conninfo(warehouse_url: str) -> str | None:
    """A libpq URI for executors to COPY with, when the warehouse is PostgreSQL."""
    url = warehouse.normalize_url(warehouse_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _drop_stale_stages(connection: sa.engine.Connection) -> None:
    """Remove staging tables left by Spark loads that died before their commit."""
    for name in sa.inspect(connection).get_table_names():
        if name.startswith(STAGE_PREFIX):
            connection.exec_driver_sql(f"DROP TABLE {name}")


def load(
    spark: SparkSession,
    lake_url: str,
    warehouse_url: str,
    *,
    since: datetime | None = None,
    wait: float = 30.0,
    checkpoint: Callable[[str], None] | None = None,
) -> LoadResult:
    """Load new committed batches with Spark: the manifest, rules and merge of the local loader.

    Good rows go from the executors over JDBC to a staging table; the driver then merges the
    staging table, the dimensions and the manifest in one transaction and drops the staging table.
    """

    began, started_at = time.perf_counter(), datetime.now(UTC)
    since = as_utc(since)
    fire = checkpoint or (lambda name: None)
    jdbc, properties = jdbc_target(warehouse_url)
    lake = lakes.open_lake(lake_url)
    if not lake.fs.exists(lake.root):
        raise LakeError(f"no lake at {lake_url!r}: run `coursemart generate` first, or fix --lake")
    engine = warehouse.create_engine(warehouse_url, lock_timeout=wait)
    load_id = lakes.new_id()
    rejected = RejectedRows(lake, load_id)
    stage = stage_table(load_id, unlogged=copy_conninfo(warehouse_url) is not None)
    try:
        with engine.connect() as connection:
            backend = backend_for(connection, mask_url(warehouse_url))
            backend.lock(wait)
            try:
                backend.begin()
                warehouse.ensure_schema(connection)
                _drop_stale_stages(connection)
                done = manifest.loaded_batch_ids(connection)
                categories, levels = manifest.dimension_keys(connection)
                connection.commit()
                pending = [b for b in lakes.committed_batches(lake) if b not in done]
                snapshots = _snapshots(lake) if pending else {}
                rules = Rules(
                    categories | {r["category_id"] for r in snapshots.get("categories", [])},  # type: ignore[misc]
                    levels | {r["level_id"] for r in snapshots.get("levels", [])},  # type: ignore[misc]
                )
                counts: dict[str, Counts] = {}
                restaged: dict[str, bool] = {}
                if pending:
                    with engine.begin() as ddl:
                        stage.create(ddl)
                for seq, batch_id in enumerate(pending):
                    counts[batch_id], restaged[batch_id] = _stage_batch(
                        spark,
                        engine,
                        warehouse_url,
                        lake,
                        batch_id,
                        seq,
                        since,
                        rules,
                        stage,
                        jdbc,
                        properties,
                        rejected,
                    )
                fire("after_staging")
                skipped = sum(lakes.batch_row_count(lake, b) - counts[b].read for b in pending)
                backend.begin()
                result = _merge(
                    connection,
                    backend,
                    load_id,
                    started_at,
                    since,
                    pending,
                    counts,
                    restaged,
                    skipped,
                    snapshots,
                    stage,
                    rejected,
                    fire,
                )
            finally:
                if connection.in_transaction():
                    connection.rollback()
                with engine.begin() as cleanup:
                    stage.drop(cleanup, checkfirst=True)
                backend.unlock()
    except BaseException as exc:
        abandon(rejected, engine, load_id, started_at, since, exc)
        raise
    finally:
        engine.dispose()
    return LoadResult(**{**result.__dict__, "seconds": time.perf_counter() - began})


def _snapshots(lake: lakes.Lake) -> dict[str, list[dict[str, object]]]:
    """The lake's dimension rows, checked like the local loader checks them."""
    return {
        name: dimension_rows(
            lakes.read_dimension(lake, name, schema), schema, lake.dimension_path(name)
        )
        for name, schema in (
            ("categories", model.CATEGORIES_SCHEMA),
            ("levels", model.LEVELS_SCHEMA),
        )
    }


def _stage_batch(
    spark: SparkSession,
    engine: sa.engine.Engine,
    warehouse_url: str,
    lake: lakes.Lake,
    batch_id: str,
    seq: int,
    since: datetime | None,
    rules: Rules,
    stage: sa.Table,
    jdbc: str,
    properties: dict[str, str],
    rejected: RejectedRows,
) -> tuple[Counts, bool]:
    """Validate one batch on the executors and append its good rows to the staging table.

    Returns the batch's counts, and whether some rows were staged twice (a task that Spark
    retried after it had written)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    counts = Counts()
    restaged = False
    paths = lakes.batch_files(lake, batch_id)
    problems = {path: schema_problems(lakes.file_schema(lake, path)) for path in paths}
    for path in paths:  # files whose columns cannot be courses: refused whole, as locally
        if problems[path]:
            table = pa.Table.from_batches(list(lakes.read_file_batches(lake, path)))
            checked = reject_all(table, "schema: " + "; ".join(problems[path]))
            rejected.add(checked.rejected, batch_id, path)
            counts.add(checked)
    readable = [path for path in paths if not problems[path]]
    if readable:
        where = _executor_lake(lake)
        duplicates = repeated_ids(spark, lake, readable, since)
        conninfo = copy_conninfo(warehouse_url)
        tasks = _file_tasks(spark, len(readable))
        if conninfo is not None:  # executors COPY their good rows; only refused rows come back
            copy_to = (conninfo, stage.name, seq)
            checker = _checker(where, readable, since, rules, duplicates, copy_to)
            bad = tasks.mapInArrow(checker, CHECKED_SCHEMA).toArrow()
            good_rows, restaged = _staged_ids(engine, stage, seq)
        else:  # JDBC from the executors
            checker = _checker(where, readable, since, rules, duplicates)
            checked = tasks.mapInArrow(checker, CHECKED_SCHEMA)
            checked = checked.persist(StorageLevel.MEMORY_AND_DISK)
            try:
                good = checked.filter(F.col("reason").isNull()).select(*COURSE_COLUMNS)
                good = good.withColumn("batch_seq", F.lit(seq))
                good.write.jdbc(jdbc, stage.name, mode="append", properties=properties)
                bad = checked.filter(F.col("reason").isNotNull()).toArrow()
            finally:
                checked.unpersist()
            good_rows, restaged = _staged_ids(engine, stage, seq)
        if bad.num_rows:
            for source in sorted(set(bad["source_file"].to_pylist())):
                rows = bad.filter(pc.equal(bad["source_file"], source))
                rejected.add(rows.drop_columns(["source_file"]), batch_id, source)
            count_reasons(bad, counts.reasons)
        counts.read += good_rows + bad.num_rows
        counts.loaded += good_rows
        counts.rejected += bad.num_rows
    rejected.flush()
    return counts, restaged


#: Up to this many rows in a batch, its ids are checked for repeats on the driver (one column
#: read through the lake module, a bitmap over the id range); above it, by a Spark shuffle.
DRIVER_ID_SCAN_ROWS: Final = 50_000_000


def repeated_ids(
    spark: SparkSession, lake: lakes.Lake, paths: list[str], since: datetime | None
) -> list[int]:
    """Ids that occur more than once in the batch's files ``paths`` (rows from ``since`` on)."""
    from coursemart.load.validate import duplicate_ids

    rows = sum(lakes.file_rows(lake, path) for path in paths)
    if rows <= DRIVER_ID_SCAN_ROWS:
        ids = (
            record_batch.column(0)
            for path in paths
            for record_batch in lakes.read_file_batches(
                lake, path, since=since, columns=["course_id"]
            )
        )
        found: list[int] = duplicate_ids(ids, lakes.id_range(lake, paths)).to_pylist()
        return found
    where = _executor_lake(lake)

    def read_ids(tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from coursemart import lake as lakes

        opened = lakes.open_lake(where)
        for task in tasks:
            for index in task.column(0).to_pylist():
                for batch in lakes.read_file_batches(
                    opened, paths[index], since=since, columns=["course_id"]
                ):
                    ids = pc.drop_null(batch.column(0)).to_numpy(zero_copy_only=False)
                    yield pa.record_batch(
                        [pa.array(np.asarray(ids, dtype=np.int64))], ["course_id"]
                    )

    ids_frame = _file_tasks(spark, len(paths)).mapInArrow(read_ids, "course_id long")
    twice = ids_frame.groupBy("course_id").count().filter("count > 1 AND course_id IS NOT NULL")
    return [row["course_id"] for row in twice.collect()]


def _staged_ids(engine: sa.engine.Engine, stage: sa.Table, seq: int) -> tuple[int, bool]:
    """Distinct course ids staged for batch ``seq``, and whether some were staged twice (a task
    that Spark retried after it had written)."""
    query = sa.select(sa.func.count(sa.distinct(stage.c.course_id)), sa.func.count()).where(
        stage.c.batch_seq == seq
    )
    with engine.connect() as connection:
        distinct, total = connection.execute(query).one()
    return int(distinct), int(total) != int(distinct)


def _merge(
    connection: sa.engine.Connection,
    backend: Backend,
    load_id: str,
    started_at: datetime,
    since: datetime | None,
    pending: list[str],
    counts: dict[str, Counts],
    restaged: dict[str, bool],
    skipped: int,
    snapshots: dict[str, list[dict[str, object]]],
    stage: sa.Table,
    rejected: RejectedRows,
    fire: Callable[[str], None],
) -> LoadResult:
    """The one warehouse transaction: dimensions, staged courses by batch, manifest, record."""
    for name, table in (("categories", warehouse.categories), ("levels", warehouse.levels)):
        if snapshots.get(name):
            backend.upsert_dimension(table, snapshots[name])
    totals = Counts()
    for seq, batch_id in enumerate(pending):
        backend.merge_table(stage.name, f"batch_seq = {seq}", distinct=restaged[batch_id])
        record_merged_batch(connection, batch_id, load_id, counts[batch_id], since)
        if seq == 0:
            fire("during_merge")
        totals.merge(counts[batch_id])
    result = record_load(connection, load_id, started_at, since, pending, totals, skipped, rejected)
    fire("before_commit")
    connection.commit()
    return result


__all__ = ["CoursemartError", "LockBusyError", "generate", "load", "session", "stop"]
