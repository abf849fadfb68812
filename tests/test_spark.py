"""The Spark engine in local mode against PostgreSQL: same lake, same warehouse, same guarantees."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coursemart import vocabulary
from coursemart.generate import generate as local_generate
from coursemart.lake import open_lake
from coursemart.load import load as local_load
from tests.conftest import WINDOW, new_warehouse, snapshot, unavailable
from tests.test_load import (
    bad_rows,
    courses_indexes,
    expected_courses,
    stored_courses,
    write_raw_batch,
)

JARS = ["/usr/share/java/postgresql.jar", "/usr/share/java/mariadb-java-client.jar"]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local Spark session for the module (starting the JVM takes seconds)."""
    if shutil.which("java") is None:
        unavailable("Java is not installed: the Spark engine needs Java 17+")
    if not os.path.exists(JARS[0]):
        unavailable(f"{JARS[0]} is missing: apt-get install libpostgresql-jdbc-java")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        unavailable("pyspark is not installed: pip install 'coursemart[spark]'")
    from coursemart.engines import spark as engine

    session = engine.session("local[2]", {"spark.sql.shuffle.partitions": "4"}, jars=JARS)
    yield session
    engine.stop(session)


@pytest.fixture
def other_postgres(tmp_path: Path) -> Iterator[str]:
    yield from new_warehouse("postgresql", tmp_path)


def warehouse_tables(url: str) -> dict[str, Any]:
    """What must be identical between engines: the data tables and which batches are loaded."""
    tables = snapshot(url)
    batches = [(row[0], row[2], row[3], row[4]) for row in tables["coursemart_batches"]]
    return {
        "courses": tables["courses"],
        "categories": tables["categories"],
        "levels": tables["levels"],
        "batches": batches,
    }


def test_a_spark_generate_commits_its_part_files_to_the_delta_table(
    spark: Any, lake_dir: Path
) -> None:
    from deltalake import DeltaTable

    from coursemart.engines import spark as engine

    first = engine.generate(spark, str(lake_dir), courses=5_000, seed=1, window=WINDOW)
    second = engine.generate(
        spark, str(lake_dir), courses=100, seed=1, window=WINDOW, reschedule=0.1
    )

    lake = open_lake(str(lake_dir))
    assert lake.committed_batches() == [first.batch_id, second.batch_id]
    assert lake.uncommitted_batches() == []
    assert (first.rows, second.first_id, second.rescheduled) == (5_000, 5_001, 500)
    assert second.rows == 600
    assert (lake_dir / "categories.csv").exists() and (lake_dir / "levels.csv").exists()
    # the folder holds the part files the commit names, and nothing of Spark's own
    folder = lake_dir / "courses" / f"batch_id={second.batch_id}"
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["part-00000.parquet", "part-00001.parquet"]
    assert lake.batch_files(second.batch_id) == [str(folder / name) for name in names]
    # one version per generate, each file with statistics a reader can skip it by
    commit = lake.commits(1, 1)[0]
    assert (commit.batch_id, len(commit.added)) == (second.batch_id, 2)
    assert sorted(file.rows or 0 for file in commit.added) == [100, 500]
    assert max(file.max_id or 0 for file in commit.added) == 5_100
    table = DeltaTable(str(lake_dir / "courses"))
    assert table.version() == 1
    files = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    assert all(row["min.course_id"] and row["max.start_date"] for row in files)
    assert sum(row["num_records"] for row in files) == 5_600
    rows = table.to_pyarrow_table()
    assert rows.num_rows == 5_600
    assert sorted(set(rows["course_id"].to_pylist())) == list(range(1, 5_101))
    for part in lake.batch_files(first.batch_id):
        metadata = pq.ParquetFile(part).metadata
        assert metadata.row_group(0).column(0).compression == "ZSTD"
        dates = pq.read_table(part)["start_date"].to_pylist()
        assert dates == sorted(dates)
    for _, (name, category_id, level_id, _start) in expected_courses(lake_dir).items():
        subjects = vocabulary.SUBJECTS[int(str(category_id))]
        assert any(subject in str(name) for subject in subjects)
        assert level_id in (101, 102, 103)


#: A Spark generate whose whole process group is killed (SIGKILL) right before its commit: the
#: executors have written every part file, the driver has not committed them.
KILLED_BEFORE_COMMIT = """
import os, signal, sys
from coursemart.engines import spark as engine
from coursemart.lake import BatchWriter

def killed(writer):
    print(writer.batch_id, flush=True)
    os.killpg(0, signal.SIGKILL)

BatchWriter.commit = killed
session = engine.session("local[1]", jars=[])
engine.generate(session, sys.argv[1], courses=2_000, seed=3)
"""


def test_a_spark_generate_killed_before_its_commit_leaves_nothing_a_reader_sees(
    spark: Any, lake_dir: Path
) -> None:
    from deltalake import DeltaTable

    from coursemart.engines import spark as engine

    engine.generate(spark, str(lake_dir), courses=1_000, seed=1, window=WINDOW)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_COMMIT, str(lake_dir)],
        env={**os.environ, "COURSEMART_SPARK_JVM_CACHE": ""},
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,  # its own process group: the kill takes the JVM and workers too
    )

    assert killed.returncode == -9, killed.stderr[-2000:]
    batch_id = killed.stdout.strip()
    folder = lake_dir / "courses" / f"batch_id={batch_id}"
    assert sorted(path.name for path in folder.glob("part-*.parquet")) == ["part-00000.parquet"]
    lake = open_lake(str(lake_dir))
    assert lake.uncommitted_batches() == [batch_id]
    table = DeltaTable(str(lake_dir / "courses"))
    assert (table.version(), table.to_pyarrow_table().num_rows) == (0, 1_000)
    # the next generate removes what the killed one left, and takes its ids again
    after = engine.generate(spark, str(lake_dir), courses=10, seed=2, window=WINDOW)
    assert not folder.exists()
    assert after.first_id == 1_001
    assert open_lake(str(lake_dir)).committed_batches()[-1] == after.batch_id


def test_a_local_lake_loads_identically_with_either_engine(
    spark: Any, lake_dir: Path, postgres_url: str, other_postgres: str
) -> None:
    from coursemart.engines import spark as engine

    local_generate(str(lake_dir), courses=4_000, seed=1, window=WINDOW)
    local_generate(str(lake_dir), courses=500, seed=2, window=WINDOW, reschedule=0.2)

    local_load(str(lake_dir), postgres_url)
    result = engine.load(spark, str(lake_dir), other_postgres)

    assert (result.status, result.rows_read, result.rows_loaded) == ("loaded", 5_300, 5_300)
    assert warehouse_tables(postgres_url) == warehouse_tables(other_postgres)
    assert stored_courses(other_postgres) == expected_courses(lake_dir)
    # both first loads built the indexes after the rows; both end with the schema's indexes
    assert courses_indexes(other_postgres) == courses_indexes(postgres_url)
    assert len(courses_indexes(other_postgres)) == 6  # 3 indexes; the key and 2 foreign keys


def test_a_spark_lake_loads_identically_with_either_engine_and_reruns_do_nothing(
    spark: Any, lake_dir: Path, postgres_url: str, other_postgres: str
) -> None:
    from coursemart.engines import spark as engine

    engine.generate(spark, str(lake_dir), courses=3_000, seed=4, window=WINDOW)

    engine.load(spark, str(lake_dir), postgres_url)
    local_load(str(lake_dir), other_postgres)
    again = engine.load(spark, str(lake_dir), postgres_url)

    assert again.status == "nothing to do"
    assert warehouse_tables(postgres_url) == warehouse_tables(other_postgres)
    assert [row[3] for row in snapshot(postgres_url)["coursemart_loads"]] == [
        "loaded",
        "nothing to do",
    ]


def test_bad_rows_are_rejected_alike_by_both_engines(
    spark: Any, lake_dir: Path, postgres_url: str, other_postgres: str
) -> None:
    from coursemart.engines import spark as engine

    local_generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    write_raw_batch(lake_dir, bad_rows().drop_columns(["expected"]), pa.table({"course_id": ["x"]}))

    by_local = local_load(str(lake_dir), postgres_url)
    by_spark = engine.load(spark, str(lake_dir), other_postgres)

    lake = open_lake(str(lake_dir))

    def refused(load_id: str) -> list[tuple[object, ...]]:
        rows = lake.read_rejected(load_id)
        return sorted(
            (str(r.get("course_id")), r["reason"], r["batch_id"], r["source_file"]) for r in rows
        )

    assert refused(by_spark.load_id) == refused(by_local.load_id)
    assert len(refused(by_local.load_id)) == 14
    assert (by_spark.rows_read, by_spark.rows_loaded, by_spark.rows_rejected) == (
        by_local.rows_read,
        by_local.rows_loaded,
        by_local.rows_rejected,
    )
    assert by_spark.reasons == by_local.reasons
    assert warehouse_tables(postgres_url)["courses"] == warehouse_tables(other_postgres)["courses"]


def test_a_spark_load_killed_after_staging_changes_nothing_and_the_next_run_completes(
    spark: Any, lake_dir: Path, postgres_url: str
) -> None:
    from coursemart.engines import spark as engine

    local_generate(str(lake_dir), courses=1_000, seed=1, window=WINDOW)
    local_load(str(lake_dir), postgres_url)
    local_generate(str(lake_dir), courses=2_000, seed=2, window=WINDOW, reschedule=0.3)
    before = snapshot(postgres_url)
    command = [sys.executable, "-m", "coursemart", "load", "--engine", "spark"]
    command += ["--spark-master", "local[1]", "--lake", str(lake_dir), "--warehouse", postgres_url]

    killed = subprocess.run(
        command,
        # a killed driver's JVM would still write a class archive: keep this run out of it
        env={
            **os.environ,
            "COURSEMART_FAILPOINT": "after_staging",
            "COURSEMART_SPARK_JVM_CACHE": "",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert killed.returncode == -9, killed.stderr[-2000:]
    assert snapshot(postgres_url) == before
    finished = engine.load(spark, str(lake_dir), postgres_url)
    assert finished.rows_loaded == 2_300
    assert stored_courses(postgres_url) == expected_courses(lake_dir)
    from tests.test_load import query

    leftovers = query(
        postgres_url,
        "SELECT COUNT(*) FROM information_schema.tables "
        "WHERE starts_with(table_name, 'coursemart_stage_') "
        "AND table_schema = current_schema()",  # this test's schema, not another run's
    )
    assert leftovers == [(0,)]


@pytest.mark.parametrize(
    ("url", "jdbc", "properties"),
    [
        (
            "postgresql://app:pw@db:5433/cm",
            "jdbc:postgresql://db:5433/cm",
            {"user": "app", "password": "pw", "driver": "org.postgresql.Driver"},
        ),
        (
            "postgresql+psycopg://postgres@127.0.0.1/test?options=-csearch_path%3Dcm_1",
            "jdbc:postgresql://127.0.0.1:5432/test",
            {"currentSchema": "cm_1"},
        ),
        (
            "mariadb://root@127.0.0.1/test",
            "jdbc:mysql://127.0.0.1:3306/test?permitMysqlScheme",
            {"driver": "org.mariadb.jdbc.Driver", "sessionVariables": "time_zone='+00:00'"},
        ),
        (
            "mssql://app:pw@srv.database.windows.net/cm",
            "jdbc:sqlserver://srv.database.windows.net:1433;databaseName=cm;encrypt=true",
            {"driver": "com.microsoft.sqlserver.jdbc.SQLServerDriver"},
        ),
    ],
)
def test_jdbc_targets(url: str, jdbc: str, properties: dict[str, str]) -> None:
    from coursemart.engines.spark import jdbc_target

    found, props = jdbc_target(url)

    assert found == jdbc
    assert properties.items() <= props.items()


@pytest.mark.parametrize(
    ("master", "extra", "default", "options"),
    [
        (
            "local[2]",
            "",
            "",
            "-Duser.timezone=UTC -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        ),
        (  # the user's options come last, so theirs win
            "local[*]",
            "-XX:TieredStopAtLevel=4 -Xss4m",
            "",
            "-Duser.timezone=UTC -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "
            "-XX:TieredStopAtLevel=4 -Xss4m",
        ),
        (  # a collector of theirs: none of coursemart's (the JVM refuses two)
            "local",
            "-XX:+UseG1GC",
            "",
            "-Duser.timezone=UTC -XX:TieredStopAtLevel=1 -XX:+UseG1GC",
        ),
        ("local[2]", "", "-XX:+UseZGC", "-Duser.timezone=UTC -XX:TieredStopAtLevel=1"),
        ("spark://master:7077", "-Dx=1", "", "-Duser.timezone=UTC -Dx=1"),
        ("yarn", "", "", "-Duser.timezone=UTC"),
    ],
)
def test_driver_java_options(master: str, extra: str, default: str, options: str) -> None:
    from coursemart.engines.spark.driver import driver_java_options

    assert driver_java_options(master, extra, default) == options


def test_sqlite_is_refused_by_the_spark_engine() -> None:
    from coursemart.engines.spark import jdbc_target
    from coursemart.errors import InputError

    with pytest.raises(InputError, match="use --engine local"):
        jdbc_target("sqlite:///data/warehouse.db")


def test_a_missing_pyspark_gets_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from coursemart.engines import spark as engine

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)

    with pytest.raises(engine.SparkUnavailableError, match=r"pip install 'coursemart\[spark\]'"):
        engine.session("local[1]")


def test_both_engines_generate_the_same_rows_for_the_same_seed(spark: Any, tmp_path: Path) -> None:
    from deltalake import DeltaTable

    from coursemart.engines import spark as engine

    engine.generate(spark, str(tmp_path / "spark"), courses=30_000, seed=9, window=WINDOW)
    local_generate(str(tmp_path / "local"), courses=30_000, seed=9, window=WINDOW)

    def rows(lake: str) -> pa.Table:
        """The table as any Delta reader sees it, without the (run-dependent) batch id."""
        table = DeltaTable(str(tmp_path / lake / "courses")).to_pyarrow_table()
        return table.drop_columns(["batch_id"]).sort_by("course_id")

    by_spark = rows("spark")
    assert by_spark.num_rows == 30_000
    assert by_spark.equals(rows("local"))


def test_spark_loads_mariadb_through_jdbc_like_the_local_engine(
    spark: Any, lake_dir: Path, tmp_path: Path
) -> None:
    from coursemart.engines import spark as engine

    if not os.path.exists(JARS[1]):
        unavailable(f"{JARS[1]} is missing: apt-get install libmariadb-java")
    local_generate(str(lake_dir), courses=2_000, seed=1, window=WINDOW)
    local_generate(str(lake_dir), courses=100, seed=2, window=WINDOW, reschedule=0.1)
    urls = [new_warehouse("mariadb", tmp_path / name) for name in ("a", "b")]
    first, second = next(urls[0]), next(urls[1])
    try:
        local_load(str(lake_dir), first)
        result = engine.load(spark, str(lake_dir), second)

        assert result.rows_loaded == 2_300
        assert warehouse_tables(first) == warehouse_tables(second)
    finally:
        for url in urls:
            next(url, None)


def test_hadoop_paths_for_each_kind_of_lake(azurite: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from coursemart.engines.spark import hadoop_path

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    local = open_lake("/data/lake")
    azure = open_lake("abfs://lake/coursemart")

    assert hadoop_path(local, "/data/lake/courses") == "file:///data/lake/courses"
    assert hadoop_path(azure, azure.path("courses")) == (
        "abfss://lake@devstoreaccount1.dfs.core.windows.net/coursemart/courses"
    )


def test_repeated_ids_are_the_same_from_the_driver_scan_and_the_spark_shuffle(
    spark: Any, lake_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coursemart.engines.spark import staging as engine

    local_generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    batch_id = write_raw_batch(lake_dir, bad_rows().drop_columns(["expected"]))
    lake = open_lake(str(lake_dir))
    batch = lake.open_batch(
        batch_id, tuple(file for file in lake.live_files() if file.batch_id == batch_id)
    )

    on_the_driver = engine.repeated_ids(spark, lake, batch, list(batch.parts), None)
    monkeypatch.setattr(engine, "DRIVER_ID_SCAN_ROWS", 0)
    by_spark = engine.repeated_ids(spark, lake, batch, list(batch.parts), None)

    assert on_the_driver == by_spark == [6]


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_a_late_older_batch_changes_nothing_with_spark_as_with_the_local_engine(
    spark: Any, lake_dir: Path, tmp_path: Path, backend: str
) -> None:
    from coursemart.engines import spark as engine
    from tests.test_lineage import MARCH, MAY, NEWER, OLDER, courses, lineage

    local_generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    write_raw_batch(lake_dir, courses((1, "Newer Name", MAY)), batch_id=NEWER)
    urls = [new_warehouse(backend, tmp_path / name) for name in ("local", "spark")]
    by_local, by_spark = next(urls[0]), next(urls[1])
    try:
        local_load(str(lake_dir), by_local)
        engine.load(spark, str(lake_dir), by_spark)
        write_raw_batch(lake_dir, courses((1, "Older Name", MARCH)), batch_id=OLDER)
        local_load(str(lake_dir), by_local)
        engine.load(spark, str(lake_dir), by_spark)

        assert lineage(by_spark)[1] == ("2026-05-01 09:00", NEWER)
        assert lineage(by_spark) == lineage(by_local)
        assert warehouse_tables(by_spark) == warehouse_tables(by_local)
    finally:
        for url in urls:
            next(url, None)


def test_every_bad_input_ends_alike_with_either_engine(
    spark: Any, lake_dir: Path, postgres_url: str, other_postgres: str
) -> None:
    from coursemart.engines import spark as engine
    from tests.test_bad_inputs import FILE_CASES, SCHEMA_CASES, VALUE_CASES, Warns

    local_generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    left_aside = [case for case in FILE_CASES if isinstance(case.outcome, Warns)]
    for case in [*left_aside, *VALUE_CASES, *SCHEMA_CASES]:  # a batch (or folder) each
        case.setup(lake_dir)

    by_local = local_load(str(lake_dir), postgres_url)
    by_spark = engine.load(spark, str(lake_dir), other_postgres)

    assert warehouse_tables(postgres_url) == warehouse_tables(other_postgres)
    assert sorted(by_local.warnings) == sorted(by_spark.warnings)
    assert (by_local.rows_read, by_local.rows_rejected) == (
        by_spark.rows_read,
        by_spark.rows_rejected,
    )
    lake = open_lake(str(lake_dir))
    reasons = [
        sorted(str(row["reason"]) for row in lake.read_rejected(result.load_id))
        for result in (by_local, by_spark)
    ]
    assert reasons[0] == reasons[1] and len(reasons[0]) == by_local.rows_rejected > 30


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_cancelled_courses_leave_every_warehouse_once_with_spark_as_with_the_local_engine(
    spark: Any, lake_dir: Path, tmp_path: Path, backend: str
) -> None:
    from coursemart.cli import main
    from coursemart.engines import spark as engine
    from tests.test_lineage import MAY, courses
    from tests.test_load import query

    if backend == "mariadb" and not os.path.exists(JARS[1]):
        unavailable(f"{JARS[1]} is missing: apt-get install libmariadb-java")
    engine.generate(spark, str(lake_dir), courses=2_000, seed=1, window=WINDOW)
    urls = [new_warehouse(backend, tmp_path / name) for name in ("local", "spark")]
    by_local, by_spark = next(urls[0]), next(urls[1])
    try:
        local_load(str(lake_dir), by_local)
        engine.load(spark, str(lake_dir), by_spark)

        assert main(["cancel", "5", "6", "7", "--lake", str(lake_dir), "--quiet"]) == 0
        local_load(str(lake_dir), by_local)
        cancelled = engine.load(spark, str(lake_dir), by_spark)

        assert (cancelled.status, cancelled.cancelled, cancelled.batches) == ("loaded", 3, ())
        assert not {5, 6, 7} & set(stored_courses(by_spark))
        assert len(stored_courses(by_spark)) == 1_997

        write_raw_batch(lake_dir, courses((5, "Back Again", MAY)))  # a greater batch re-adds one
        local_load(str(lake_dir), by_local)
        back = engine.load(spark, str(lake_dir), by_spark)
        again = engine.load(spark, str(lake_dir), by_spark)

        assert (back.cancelled, back.rows_loaded, again.status) == (0, 1, "nothing to do")
        assert stored_courses(by_spark)[5][0] == "Back Again"
        assert stored_courses(by_spark) == expected_courses(lake_dir)
        assert warehouse_tables(by_spark) == warehouse_tables(by_local)
        versions = "SELECT version, rows_cancelled FROM coursemart_versions ORDER BY version"
        assert query(by_spark, versions) == [(0, 0), (1, 3), (2, 0)]
    finally:
        for url in urls:
            next(url, None)


def committed_catalog(spark: Any, table_path: str) -> Any:
    """The current catalog as docs/spark.md reads it with Spark but without Delta's jars: the
    files the table's latest version names (delta-rs), the greatest batch of each course."""
    from deltalake import DeltaTable
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    columns = "course_id long, course_name string, category_id int, level_id int, "
    columns += "start_date timestamp, batch_id string"
    files = DeltaTable(table_path).file_uris()
    courses = spark.read.schema(columns).option("basePath", table_path).parquet(*files)
    latest = Window.partitionBy("course_id").orderBy(F.col("batch_id").desc())
    return courses.withColumn("n", F.row_number().over(latest)).filter("n = 1").drop("n")


def test_spark_reads_exactly_the_committed_catalog_through_the_table_s_log(
    spark: Any, lake_dir: Path, postgres_url: str
) -> None:
    from coursemart import model
    from coursemart.cli import main
    from coursemart.engines import spark as engine
    from coursemart.generate import course_chunk
    from coursemart.lake import new_id

    engine.generate(spark, str(lake_dir), courses=3_000, seed=1, window=WINDOW)
    engine.generate(spark, str(lake_dir), courses=100, seed=2, window=WINDOW, reschedule=0.2)
    assert main(["cancel", "7", "8", "--lake", str(lake_dir), "--quiet"]) == 0
    engine.load(spark, str(lake_dir), postgres_url)
    writing = open_lake(str(lake_dir)).batch_writer(new_id(), model.COURSES_SCHEMA)
    writing.write_part(course_chunk(5, 1, 500, WINDOW))  # written, not committed: moves 500

    catalog = committed_catalog(spark, str(lake_dir / "courses")).toArrow()

    found = {
        row["course_id"]: (
            row["course_name"],
            row["category_id"],
            row["level_id"],
            row["start_date"].strftime("%Y-%m-%d %H:%M:%S"),
        )
        for row in catalog.to_pylist()
    }
    assert len(found) == 3_098
    assert found == stored_courses(postgres_url)
    # a plain read of the folder takes in rows no version names any more: the cancelled ones
    everything = spark.read.parquet(str(lake_dir / "courses")).select("course_id").distinct()
    assert everything.count() == 3_100


def test_the_background_warm_up_runs_at_the_lowest_cpu_priority_in_the_user_s_session(
    tmp_path: Path,
) -> None:
    from coursemart.engines.spark.warmup import in_background

    probe = "import os; print(os.nice(0), os.getsid(0), os.getpgid(0) == os.getpid())"
    log = tmp_path / "warmup.log"

    started = in_background([sys.executable, "-c", probe], log, dict(os.environ))

    assert started.wait(timeout=60) == 0
    niceness, session, own_group = log.read_text().split()
    assert int(niceness) == 19  # its JVM and Python workers inherit it
    # the same session as the user's commands: Linux weighs niceness only inside one
    assert int(session) == os.getsid(0)
    assert own_group == "True"  # a Ctrl-C on the user's next command does not reach it
