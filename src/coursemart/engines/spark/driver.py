"""The Spark session and its driver JVM: UTC everywhere, coursemart's Parquet settings, the JDBC
jars, and the driver's class archive (recorded once, mapped on later starts)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from coursemart.engines import class_archive
from coursemart.errors import InputError

SparkSession = Any  # pyspark has no type hints mypy can use here


class SparkUnavailableError(InputError):
    """PySpark (or Java) is missing."""


def session(
    master: str = "local[*]",
    conf: dict[str, str] | None = None,
    jars: Sequence[str] = (),
    app_name: str = "coursemart",
    jvm_cache: Path | None = None,
    record_missing: bool = True,
) -> SparkSession:
    """A Spark session in UTC, writing Parquet as coursemart's lake expects.

    ``jars`` that exist are handed to Spark (the JDBC drivers); ``conf`` passes anything else
    (``spark.driver.extraJavaOptions`` is added to coursemart's own driver options). With
    ``jvm_cache``, the driver JVM maps its class archive there, or records it when there is none
    (:mod:`coursemart.engines.class_archive`); end such a session with :func:`stop`. Without
    ``record_missing``, a missing archive is not recorded by this JVM (recording costs its run
    the seconds the JVM takes to write it): :func:`missing_archive` then names it, for a
    warm-up off the user's path (:mod:`coursemart.engines.spark.warmup`).
    """
    global _recording, _missing
    try:
        from pyspark.sql import SparkSession as Session
    except ImportError as exc:
        raise SparkUnavailableError(
            "the Spark engine needs PySpark: pip install 'coursemart[spark]' (and Java 17+)"
        ) from exc
    conf = dict(conf or {})
    driver_options = driver_java_options(
        master,
        conf.pop("spark.driver.extraJavaOptions", ""),
        conf.get("spark.driver.defaultJavaOptions", ""),
    )
    archive = _archive_plan(jvm_cache, driver_options, conf) if jvm_cache else None
    _missing = archive if archive is not None and archive.record and not record_missing else None
    if _missing is not None:
        archive = None  # this JVM starts as it would without an archive
    if archive is not None:
        driver_options = f"{driver_options} {archive.java_options}"
    settings = {**coursemart_settings(master, driver_options, jars), **conf}
    builder = Session.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    if master.startswith("local"):  # workers run this interpreter, which has coursemart
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
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


#: Driver JVM options for a local master, where one JVM does a whole run that lasts seconds or
#: minutes: only the client compiler (the optimising one costs more CPU than it repays in such
#: a run, even with a million rows through JDBC) and the serial collector (no collector
#: threads to start on a small machine). The user's own options come after them and win.
LOCAL_DRIVER_OPTIONS: Final = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
#: A JVM option that chooses the garbage collector: with one, coursemart chooses none (the
#: JVM refuses two).
CHOOSES_COLLECTOR: Final = re.compile(r"-XX:\+Use\w+GC\b")


def driver_java_options(master: str, extra: str = "", default: str = "") -> str:
    """The driver JVM's options: UTC, coursemart's options for a local master, then ``extra``
    (the user's ``spark.driver.extraJavaOptions``; ``default`` is their
    ``spark.driver.defaultJavaOptions``, which Spark puts first)."""
    options = ["-Duser.timezone=UTC"]
    if master.startswith("local"):
        options += [
            option
            for option in LOCAL_DRIVER_OPTIONS
            if not (CHOOSES_COLLECTOR.match(option) and CHOOSES_COLLECTOR.search(extra + default))
        ]
    return " ".join([*options, extra.strip()]).strip()


def coursemart_settings(master: str, driver_options: str, jars: Sequence[str]) -> dict[str, str]:
    """The Spark configuration coursemart asks for (the caller's own ``conf`` comes on top)."""
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": driver_options,
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.parquet.compression.codec": "zstd",
        "spark.ui.showConsoleProgress": "false",
        # Executors validate and COPY whole Arrow batches: fewer, larger ones cost less.
        "spark.sql.execution.arrow.maxRecordsPerBatch": "131072",
        "spark.ui.enabled": "false",
    }
    if master.startswith("local"):  # workers run this interpreter, which has coursemart
        settings["spark.pyspark.python"] = sys.executable
        # 200 shuffle partitions are for clusters; on one machine they are mostly overhead.
        settings["spark.sql.shuffle.partitions"] = str(2 * (os.cpu_count() or 2))
    present = [jar for jar in jars if jar and os.path.exists(jar)]
    if present:
        settings["spark.jars"] = ",".join(present)
    return settings


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


#: The class archive the running driver JVM could have used but which is not recorded yet.
_missing: class_archive.Plan | None = None


def missing_archive() -> class_archive.Plan | None:
    """The archive a session started with ``record_missing=False`` found missing, if it did."""
    return _missing


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
