"""Spark benchmark: `coursemart run --engine spark` against the original notebooks, end to end.

Both generate 1,000,000 courses, write them to a lake and load them into a fresh PostgreSQL
database, on Spark in local mode (`local[2]`), each in its own process, timed from the command's
start to its end (JVM start included for both). coursemart runs twice, each time on a fresh lake
and database: first with no JVM class archive (the first Spark run on a machine, which starts the
warm-up that records it in the background once the run has succeeded), then, once that warm-up
has finished, as every later run goes, with the archive mapped; the ratio is the later run's.

The original notebooks' logic: courses built as a per-row Python list into a pandas frame, turned
into a Spark frame; categories and levels written as CSV and courses as Parquet; then the batch
job reads them back, filters courses on their start date, overwrites the dimension tables and
appends the courses over JDBC. Then each load step is run a second time: coursemart's changes
nothing, the original's appends every course again.

    python bench/spark.py [--rows 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from measure import Results, add_run_options, postgres_database, table  # noqa: E402

JDBC_JAR = os.environ.get("COURSEMART_JDBC_POSTGRES", "/usr/share/java/postgresql.jar")

ORIGINAL_GENERATE = """
import random, sys
from datetime import datetime, timedelta
import pandas as pd
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[2]").appName("original-generate")
         .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
         .config("spark.pyspark.python", sys.executable).getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
lake = {lake!r}
categories = pd.DataFrame({{"category_id": [1, 2, 3, 4, 5],
    "category_name": ["Technology", "Business", "Art", "Science", "Health"]}})
levels = pd.DataFrame({{"level_id": [101, 102, 103],
    "level_name": ["Beginner", "Intermediate", "Advanced"]}})
topics = ["Machine Learning", "Watercolor", "Accounting", "Genetics", "Nutrition"]
now = datetime.now()
rows = []
for course_id in range(1, {n} + 1):
    category_id = random.randint(1, 5)
    rows.append((course_id, f"{{random.choice(topics)}} Course {{course_id}}", category_id,
                 random.choice([101, 102, 103]), now + timedelta(days=random.randint(-365, 180))))
columns = ["course_id", "course_name", "category_id", "level_id", "start_date"]
courses = pd.DataFrame(rows, columns=columns)
for frame, name in ((categories, "categories"), (levels, "levels")):
    writer = spark.createDataFrame(frame).write.mode("overwrite").option("header", True)
    writer.csv(lake + "/" + name)
spark.createDataFrame(courses).write.mode("overwrite").parquet(lake + "/courses")
spark.stop()
"""

ORIGINAL_LOAD = """
from pyspark.sql import SparkSession, functions as F
spark = (SparkSession.builder.master("local[2]").appName("original-load")
         .config("spark.jars", {jar!r}).config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
lake = {lake!r}
jdbc = {{"url": {jdbc!r}, "user": "postgres", "driver": "org.postgresql.Driver"}}
categories = spark.read.option("header", True).option("inferSchema", True).csv(lake + "/categories")
levels = spark.read.option("header", True).option("inferSchema", True).csv(lake + "/levels")
courses = spark.read.parquet(lake + "/courses").filter(F.col("start_date") >= F.lit("1970-01-01"))
for frame, name, mode in ((categories, "categories", "overwrite"), (levels, "levels", "overwrite"),
                          (courses, "courses", "append")):
    frame.write.format("jdbc").options(dbtable=name, **jdbc).mode(mode).save()
spark.stop()
"""


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    began = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    return time.perf_counter() - began


def courses(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows, ids = connection.exec_driver_sql(
            "SELECT COUNT(*), COUNT(DISTINCT course_id) FROM courses"
        ).one()
    engine.dispose()
    return int(rows), int(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    add_run_options(parser)
    args = parser.parse_args()
    n = args.rows
    if args.quick:
        print("Spark benchmark skipped: --quick (its JVM start-ups alone take over a minute)")
        return
    record = Results("spark", args)
    if shutil.which("java") is None or not Path(JDBC_JAR).exists():
        print("Spark benchmark skipped: needs Java and libpostgresql-jdbc-java")
        return
    try:
        import pyspark  # noqa: F401
    except ImportError:
        print("Spark benchmark skipped: pyspark is not installed (pip install 'coursemart[spark]')")
        return
    python = sys.executable
    rows = [["pipeline", "seconds", "courses after run", "after re-running the load"]]
    with tempfile.TemporaryDirectory(prefix="coursemart-bench-") as scratch:
        # The first Spark run on a machine records the driver JVM's class archive; every later
        # run maps it. Both are measured, each on a fresh lake and a fresh database.
        env = {**os.environ, "COURSEMART_SPARK_JVM_CACHE": str(Path(scratch) / "jvm")}
        times = {}
        warmed = 0.0
        for label in ("coursemart, first run here", "coursemart"):
            with postgres_database() as url:
                lake = str(Path(scratch) / label.replace(" ", "-").replace(",", ""))
                cli = [python, "-m", "coursemart"]
                spark = ["--engine", "spark", "--spark-master", "local[2]"]
                print(f"{label}: run --engine spark, {n:,} courses ...", flush=True)
                command = [*cli, "run", *spark, "-n", str(n), "--lake", lake, "--warehouse", url]
                times[label] = timed(command, env)
                first = courses(url)
                timed([*cli, "load", *spark, "--lake", lake, "--warehouse", url], env)
                rows.append([label, f"{times[label]:.1f}", _counts(first), _counts(courses(url))])
                if label.endswith("first run here"):
                    warmed = warm_up_finished(Path(env["COURSEMART_SPARK_JVM_CACHE"]))
                    print(f"the background warm-up recorded the class archive {warmed:.0f} s after")
        with postgres_database() as url:
            lake = str(Path(scratch) / "original")
            jdbc = "jdbc:postgresql://127.0.0.1:5432/" + url.rsplit("/", 1)[1]
            print(f"original notebooks, {n:,} courses ...", flush=True)
            load = ORIGINAL_LOAD.format(jar=JDBC_JAR, lake=lake, jdbc=jdbc)
            generate_seconds = timed([python, "-c", ORIGINAL_GENERATE.format(lake=lake, n=n)])
            load_seconds = timed([python, "-c", load])
            theirs = generate_seconds + load_seconds
            first = courses(url)
            timed([python, "-c", load])
            rows.append(["original", f"{theirs:.1f}", _counts(first), _counts(courses(url))])
    print(table(rows))
    ratio = theirs / times["coursemart"]
    first = times["coursemart, first run here"]
    checks = [
        f"coursemart is {ratio:.2f}x faster end to end (target >=2x: "
        f"{'met' if ratio >= 2 else 'MISSED'}); only coursemart keeps one row per course on re-run",
        f"the first Spark run on a machine is {theirs / first:.2f}x faster than the original "
        f"(target >=1.5x: {'met' if theirs / first >= 1.5 else 'MISSED'}) and "
        f"{first / times['coursemart']:.2f}x the time of a later run (target <=1.2x: "
        f"{'met' if first <= 1.2 * times['coursemart'] else 'MISSED'})",
    ]
    print("\n".join(checks))
    record.save(
        {
            "rows": n,
            "seconds": {**times, "original": theirs},
            "warm_up_seconds": warmed,
            "table": rows,
            "checks": checks,
        }
    )


def warm_up_finished(folder: Path, timeout: float = 300.0) -> float:
    """Seconds until the warm-up started by a first run has recorded the class archive in
    ``folder`` and let go of its lock (a later run must not share the machine with it)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if any(folder.glob("spark-*.jsa")):
            with open(folder / ".warmup.lock", "a+b") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # held while the warm-up runs
            return time.monotonic() - began
        time.sleep(0.5)
    raise SystemExit(f"no class archive in {folder} after {timeout:.0f} s: see its warmup.log")


def _counts(found: tuple[int, int]) -> str:
    rows, ids = found
    return f"{rows:,} rows, {ids:,} ids" + ("" if rows == ids else " (DUPLICATES)")


if __name__ == "__main__":
    main()
