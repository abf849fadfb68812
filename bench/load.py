"""Load benchmark: coursemart's loader against the usual ways of putting rows into a database.

Every contender loads the same 1,000,000 new courses into an identical, freshly created
warehouse table (same columns, primary key, foreign keys and index, created by coursemart's DDL),
each in its own process (so its peak memory is its own); times exclude interpreter start and
imports.

PostgreSQL: coursemart (full load, re-run with nothing new, then an incremental batch of 1M new
courses plus 5% rescheduled) against `psql \\copy` of the same rows as CSV, `pandas.to_sql`, and
Spark JDBC `append` (the original job's way; skipped with a message without pyspark, Java or
Debian's libpostgresql-jdbc-java). MariaDB/MySQL: coursemart (the same three loads; the re-run
also as the whole `coursemart load` command, interpreter start included) against `LOAD DATA LOCAL
INFILE` of the same rows as CSV with the `mariadb` client, `pandas.to_sql` and Spark JDBC `append`
(Debian's libmariadb-java), and its own first load without `local_infile` (batched upserts).
SQLite: coursemart's whole `coursemart load` command against
SQLite's own floor, `INSERT INTO courses SELECT … FROM` the same rows (the same values coursemart
binds, in the lake's order) already in an attached SQLite file, into the same table with the same
indexes and the same connection settings: the B-tree work alone, no parsing, no Python; and
against `pandas.to_sql` and `sqlite-utils` `insert_all`. Memory: coursemart's peak for a
10M-course load against a 1M one.

    python bench/load.py [--rows 1000000] [--memory-rows 10000000] [--mariadb-only] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from coursemart import model, warehouse  # noqa: E402
from coursemart.generate import generate  # noqa: E402
from coursemart.lake import open_lake  # noqa: E402
from coursemart.load.backends.base import (  # noqa: E402
    COLUMN_LIST,
    QMARKS,
    STORED_COLUMNS,
    row_tuples,
    with_lineage,
)
from coursemart.load.backends.mysql import CSV_FORMAT  # noqa: E402
from measure import (  # noqa: E402
    Measurement,
    Results,
    add_run_options,
    coursemart_command,
    mariadb_database,
    postgres_database,
    run_case,
    run_command,
    table,
)

JDBC_JAR = os.environ.get("COURSEMART_JDBC_POSTGRES", "/usr/share/java/postgresql.jar")
MARIADB_JDBC_JAR = os.environ.get(
    "COURSEMART_JDBC_MARIADB", "/usr/share/java/mariadb-java-client.jar"
)

LOAD = """
from coursemart.load import load
BENCH_START
result = load({lake!r}, {url!r})
assert result.rows_loaded > 0 or result.status == "nothing to do", result
"""

PANDAS = """
import pandas as pd
import sqlalchemy as sa
BENCH_START
frame = pd.read_parquet({parquet!r})
engine = sa.create_engine({url!r})
frame.to_sql("courses", engine, if_exists="append", index=False)
"""

SQLITE_UTILS = """
import pyarrow.parquet as pq
import sqlite_utils
BENCH_START
rows = pq.read_table({parquet!r})
db = sqlite_utils.Database({path!r})
db["courses"].insert_all(
    {{**row, "start_date": row["start_date"].strftime("%Y-%m-%d %H:%M:%S.%f")}}
    for batch in rows.to_batches(65536) for row in batch.to_pylist()
)
"""

#: SQLite's own floor: the rows already in an attached file, one INSERT … SELECT into the same
#: table, through a connection with coursemart's settings (WAL, cache, foreign keys off during
#: the load, as coursemart's loader has them).
SQLITE_FLOOR = """
from coursemart import warehouse
engine = warehouse.create_engine({url!r})
raw = engine.raw_connection().driver_connection
raw.execute("PRAGMA foreign_keys = OFF")
raw.execute("ATTACH DATABASE ? AS source", ({source!r},))
BENCH_START
raw.execute("BEGIN IMMEDIATE")
raw.execute("INSERT INTO courses ({columns}) SELECT {columns} FROM source.courses ORDER BY {order}")
raw.execute("COMMIT")
"""

COMMAND = """
import subprocess, sys
BENCH_START
subprocess.run([sys.executable, "-m", "coursemart", "load", "-q", "--lake", {lake!r},
                "--warehouse", {url!r}], check=True)
"""

SPARK = """
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[2]").appName("original-load")
         .config("spark.jars", {jar!r}).config("spark.ui.enabled", "false")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.ui.showConsoleProgress", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
BENCH_START
frame = spark.read.parquet({parquet!r})
(frame.write.format("jdbc").mode("append")
 .option("url", {jdbc!r}).option("dbtable", "courses").option("user", {user!r})
 .option("driver", {driver!r}).save())
spark.stop()
"""


# ---------------------------------------------------------------------------------------------
# Warehouses to load into


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database with coursemart's schema and dimensions; dropped afterwards."""
    with postgres_database() as url:
        prepare(url)
        yield url


def prepare(url: str) -> None:
    """coursemart's tables and the seed dimensions, so every contender meets the same table."""
    engine = warehouse.create_engine(url)
    with engine.begin() as connection:
        warehouse.ensure_schema(connection)
        connection.execute(warehouse.categories.insert(), model.categories_table().to_pylist())
        connection.execute(warehouse.levels.insert(), model.levels_table().to_pylist())
    engine.dispose()


def count(url: str) -> int:
    engine = warehouse.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(sa.func.count()).select_from(warehouse.courses)
        ).scalar()
    engine.dispose()
    return int(rows or 0)


def batch_parquet(lake_dir: str, batch_id: str, out: Path) -> Path:
    """The batch's rows as the warehouse stores them (with their ``search_name`` and
    ``batch_id``) as one Parquet file, and beside it as a CSV for psql and the mariadb client."""
    lake = open_lake(lake_dir)
    rows = pa.Table.from_batches([rb for _, rb in lake.read_batches([batch_id])])
    rows = with_lineage(rows, batch_id)
    import pyarrow.parquet as pq

    pq.write_table(rows, out)
    csv_rows = rows.set_column(4, "start_date", rows["start_date"].cast(pa.timestamp("us")))
    pacsv.write_csv(csv_rows, out.with_suffix(".csv"), pacsv.WriteOptions(include_header=False))
    return out


def sqlite_source(lake_dir: str, batch_id: str, path: Path) -> Path:
    """The batch's rows in a plain SQLite table (no key, no index) of ``path``: the values
    coursemart binds for them (timestamps as text, the batch id), in the lake's order."""
    import sqlite3

    lake = open_lake(lake_dir)
    connection = sqlite3.connect(path)
    connection.execute(f"CREATE TABLE courses ({COLUMN_LIST})")
    for _, record_batch in lake.read_batches([batch_id]):
        rows = with_lineage(pa.Table.from_batches([record_batch]), batch_id)
        connection.executemany(f"INSERT INTO courses VALUES ({QMARKS})", row_tuples(rows))
    connection.commit()
    connection.close()
    return path


def sqlite_floor(url: str, source: Path, order: str = "rowid") -> Measurement:
    """SQLite's own ``INSERT … SELECT`` of the source rows into the warehouse's ``courses``, in
    the lake's order (``rowid``) unless told otherwise."""
    code = SQLITE_FLOOR.format(url=url, source=str(source), columns=COLUMN_LIST, order=order)
    return run_case("SQLite INSERT … SELECT", code)


def psql_copy(url: str, csv_path: Path) -> Measurement:
    """`psql \\copy` into the courses table (the session time zone is UTC)."""
    database = url.rsplit("/", 1)[1]
    copy = "\\copy courses FROM " + repr(str(csv_path)) + " (FORMAT csv)"
    arguments = ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", database]
    arguments += ["-c", "SET TIME ZONE UTC", "-c", copy]
    command = f"import subprocess\nBENCH_START\nsubprocess.run({arguments!r}, check=True)\n"
    return run_case("psql \\copy", command)


def load_data_local(url: str, csv_path: Path) -> Measurement | None:
    """`LOAD DATA LOCAL INFILE` of the CSV into courses with the `mariadb` (or `mysql`) client;
    None, with a message, without one."""
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        print(
            "LOAD DATA LOCAL INFILE skipped: no mariadb or mysql client (apt-get install "
            "mariadb-client)"
        )
        return None
    where = sa.engine.make_url(url)
    statement = (
        f"LOAD DATA LOCAL INFILE '{csv_path}' INTO TABLE courses {CSV_FORMAT} "
        f"({', '.join(STORED_COLUMNS)})"
    )
    arguments = [client, "--local-infile=1", f"--host={where.host}", f"--port={where.port or 3306}"]
    arguments += [f"--user={where.username}", f"--password={where.password or ''}"]
    arguments += [str(where.database), "-e", statement]
    command = f"import subprocess\nBENCH_START\nsubprocess.run({arguments!r}, check=True)\n"
    return run_case("LOAD DATA LOCAL INFILE", command)


def spark_ready(jar: str = JDBC_JAR, package: str = "libpostgresql-jdbc-java") -> str | None:
    """None when Spark JDBC can run here with ``jar``, else why not."""
    if shutil.which("java") is None:
        return "java is not installed"
    if not Path(jar).exists():
        return f"{jar} is missing (apt-get install {package})"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'coursemart[spark]')"
    return None


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", type=int, default=10_000_000)
    parser.add_argument("--mariadb-only", action="store_true", help="only the MariaDB cases")
    add_run_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.memory_rows = min(args.rows, 50_000), min(args.memory_rows, 500_000)
    record = Results("load", args)
    n = args.rows
    results: list[tuple[str, str, Measurement]] = []
    with tempfile.TemporaryDirectory(prefix="coursemart-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        lake = str(scratch / "lake")
        first = generate(lake, courses=n, seed=1)
        parquet = batch_parquet(lake, first.batch_id, scratch / "batch.parquet")
        incremental_lake = str(scratch / "lake-incremental")
        shutil.copytree(lake, incremental_lake)
        generate(incremental_lake, courses=n, seed=2, reschedule=0.05)  # batch 1 is loaded
        if args.mariadb_only:
            measured = mariadb_cases(lake, incremental_lake, parquet, n)
            checks = report(measured, {}, n)
            record.save({"rows": n, "results": as_records(measured), "checks": checks})
            return

        print(f"PostgreSQL, {n:,} courses ...", flush=True)
        with pg_database() as url:
            results.append(
                (
                    "postgresql",
                    "coursemart full",
                    run_case("coursemart", LOAD.format(lake=lake, url=url)),
                )
            )
            assert count(url) == n
            results.append(
                (
                    "postgresql",
                    "coursemart re-run",
                    run_case("coursemart", LOAD.format(lake=lake, url=url)),
                )
            )
            results.append(
                (
                    "postgresql",
                    "coursemart incremental",
                    run_case("coursemart", LOAD.format(lake=incremental_lake, url=url)),
                )
            )
            assert count(url) == 2 * n
        with pg_database() as url:
            results.append(
                ("postgresql", "psql \\copy", psql_copy(url, parquet.with_suffix(".csv")))
            )
            assert count(url) == n
        with pg_database() as url:
            results.append(
                (
                    "postgresql",
                    "pandas.to_sql",
                    run_case("pandas", PANDAS.format(parquet=str(parquet), url=url)),
                )
            )
            assert count(url) == n
        why_not = "--quick (a JVM start-up alone takes most of a quick run)" if args.quick else ""
        why_not = why_not or spark_ready()
        if why_not:
            print(f"Spark JDBC append skipped: {why_not}")
        else:
            with pg_database() as url:
                jdbc = "jdbc:postgresql://127.0.0.1:5432/" + url.rsplit("/", 1)[1]
                code = SPARK.format(
                    jar=JDBC_JAR,
                    parquet=str(parquet),
                    jdbc=jdbc,
                    user="postgres",
                    driver="org.postgresql.Driver",
                )
                results.append(("postgresql", "Spark JDBC append", run_case("spark", code)))
                assert count(url) == n

        results.extend(mariadb_cases(lake, incremental_lake, parquet, n, spark=not args.quick))

        print(f"SQLite, {n:,} courses ...", flush=True)
        sqlite_path = scratch / "coursemart.db"
        url = f"sqlite:///{sqlite_path}"
        prepare(url)
        results.append(
            ("sqlite", "coursemart full", run_case("coursemart", LOAD.format(lake=lake, url=url)))
        )
        results.append(
            ("sqlite", "coursemart re-run", run_case("coursemart", LOAD.format(lake=lake, url=url)))
        )
        command_url = f"sqlite:///{scratch / 'command.db'}"
        prepare(command_url)
        load_command = ["coursemart", "load", "--lake", lake, "--warehouse", command_url]
        whole, _ = run_command("coursemart load", coursemart_command(*load_command[1:]))
        results.append(("sqlite", "coursemart load command", whole))
        assert count(command_url) == n
        floor_url = f"sqlite:///{scratch / 'floor.db'}"
        prepare(floor_url)
        source = sqlite_source(lake, first.batch_id, scratch / "source.db")
        results.append(("sqlite", "SQLite INSERT … SELECT", sqlite_floor(floor_url, source)))
        assert count(floor_url) == n
        # The same, the rows in id order: how much of the floor is the random order of the ids.
        ordered_url = f"sqlite:///{scratch / 'ordered.db'}"
        prepare(ordered_url)
        ordered = sqlite_floor(ordered_url, source, order="course_id")
        results.append(("sqlite", "SQLite INSERT … SELECT, in course_id order", ordered))
        for name, code in (
            (
                "pandas.to_sql",
                PANDAS.format(parquet=str(parquet), url=f"sqlite:///{scratch / 'pandas.db'}"),
            ),
            (
                "sqlite-utils insert",
                SQLITE_UTILS.format(parquet=str(parquet), path=str(scratch / "su.db")),
            ),
        ):
            path = scratch / ("pandas.db" if name.startswith("pandas") else "su.db")
            prepare(f"sqlite:///{path}")
            results.append(("sqlite", name, run_case(name, code)))
            assert count(f"sqlite:///{path}") == n

        memory: dict[int, Measurement] = {}
        if args.memory_rows:
            print(
                f"memory: coursemart loads of {n:,} and {args.memory_rows:,} courses ...",
                flush=True,
            )
            for size in (n, args.memory_rows):
                big_lake = str(scratch / f"lake-{size}")
                generate(big_lake, courses=size, seed=3)
                with pg_database() as url:
                    memory[size] = run_case("coursemart", LOAD.format(lake=big_lake, url=url))
                shutil.rmtree(big_lake)

    checks = report(results, memory, n)
    record.save(
        {
            "rows": n,
            "results": as_records(results),
            "memory": {str(size): m for size, m in memory.items()},
            "checks": checks,
        }
    )


@contextmanager
def mariadb_warehouse() -> Iterator[str]:
    """A fresh MariaDB/MySQL database with coursemart's schema and dimensions; dropped after."""
    with mariadb_database() as url:
        prepare(url)
        yield url


def mariadb_cases(
    lake: str, incremental_lake: str, parquet: Path, n: int, *, spark: bool = True
) -> list[tuple[str, str, Measurement]]:
    """coursemart's three loads into MariaDB/MySQL, then the anchors, each into a fresh table;
    `LOAD DATA LOCAL INFILE` just before coursemart's first load, so that both meet the same
    machine."""
    print(f"MariaDB/MySQL, {n:,} courses ...", flush=True)
    results: list[tuple[str, str, Measurement]] = []

    def add(name: str, measured: Measurement | None) -> None:
        if measured is not None:
            results.append(("mariadb", name, measured))

    with mariadb_warehouse() as url:
        anchor = load_data_local(url, parquet.with_suffix(".csv"))
        add("LOAD DATA LOCAL INFILE", anchor)
        assert anchor is None or count(url) == n
    with mariadb_warehouse() as url:
        add("coursemart full", run_case("coursemart", LOAD.format(lake=lake, url=url)))
        assert count(url) == n
        add("coursemart re-run", run_case("coursemart", LOAD.format(lake=lake, url=url)))
        add(
            "coursemart re-run, whole command",
            run_case("coursemart", COMMAND.format(lake=lake, url=url)),
        )
        incremental = LOAD.format(lake=incremental_lake, url=url)
        add("coursemart incremental", run_case("coursemart", incremental))
        assert count(url) == 2 * n
    with mariadb_warehouse() as url:
        batched = LOAD.format(lake=lake, url=url + "?local_infile=0")
        add("coursemart full, batched (local_infile off)", run_case("coursemart", batched))
        assert count(url) == n
    with mariadb_warehouse() as url:
        add("pandas.to_sql", run_case("pandas", PANDAS.format(parquet=str(parquet), url=url)))
        assert count(url) == n
    why_not = spark_ready(MARIADB_JDBC_JAR, "libmariadb-java") if spark else "--quick"
    if why_not:
        print(f"Spark JDBC append skipped: {why_not}")
        return results
    with mariadb_warehouse() as url:
        where = sa.engine.make_url(url)
        # jdbc:mysql: gets Spark's MySQL dialect (backticks), as the Spark engine's target does
        jdbc = f"jdbc:mysql://{where.host}:{where.port or 3306}/{where.database}?permitMysqlScheme"
        code = SPARK.format(
            jar=MARIADB_JDBC_JAR,
            parquet=str(parquet),
            jdbc=jdbc,
            user=where.username,
            driver="org.mariadb.jdbc.Driver",
        )
        add("Spark JDBC append", run_case("spark", code))
        assert count(url) == n
    return results


def as_records(results: list[tuple[str, str, Measurement]]) -> list[dict[str, object]]:
    return [{"database": d, "contender": c, **asdict(m)} for d, c, m in results]


def report(
    results: list[tuple[str, str, Measurement]], memory: dict[int, Measurement], n: int
) -> list[str]:
    rows = [["database", "contender", "seconds", "rows/s", "peak MiB"]]
    for database, name, m in results:
        rate = (
            ""
            if "re-run" in name
            else f"{(n * 1.05 if 'incremental' in name else n) / m.seconds:,.0f}"
        )
        rows.append([database, name, f"{m.seconds:.2f}", rate, f"{m.peak_mib:,.0f}"])
    print(table(rows))
    seconds = {(d, name): m.seconds for d, name, m in results}
    checks = []

    def ratio(database: str, ours: str, theirs: str, target: float | None, faster: bool) -> None:
        if (database, theirs) not in seconds or (database, ours) not in seconds:
            return
        value = (
            seconds[database, theirs] / seconds[database, ours]
            if faster
            else seconds[database, ours] / seconds[database, theirs]
        )
        relation = "faster than" if faster else "the time of"
        if target is None:
            checks.append(f"{database}: {ours} is {value:.2f}x {relation} {theirs}")
            return
        verdict = "met" if (value >= target if faster else value <= target) else "MISSED"
        bound = ">=" if faster else "<="
        target_text = f"target {bound}{target:g}x: {verdict}"
        checks.append(f"{database}: {ours} is {value:.2f}x {relation} {theirs} ({target_text})")

    ratio("postgresql", "coursemart full", "psql \\copy", 2, faster=False)
    ratio("postgresql", "coursemart incremental", "psql \\copy", 3, faster=False)
    ratio("postgresql", "coursemart full", "Spark JDBC append", 3, faster=True)
    ratio("postgresql", "coursemart full", "pandas.to_sql", 10, faster=True)
    ratio("mariadb", "coursemart full", "LOAD DATA LOCAL INFILE", 1.5, faster=False)
    ratio("mariadb", "coursemart incremental", "LOAD DATA LOCAL INFILE", 2.5, faster=False)
    ratio("mariadb", "coursemart full", "coursemart full, batched (local_infile off)", None, True)
    ratio("mariadb", "coursemart full", "pandas.to_sql", None, faster=True)
    ratio("mariadb", "coursemart full", "Spark JDBC append", None, faster=True)
    ratio("sqlite", "coursemart load command", "SQLite INSERT … SELECT", 1.5, faster=False)
    if ("sqlite", "pandas.to_sql") in seconds:
        speed = seconds["sqlite", "pandas.to_sql"] / seconds["sqlite", "coursemart load command"]
        checks.append(f"sqlite: coursemart load command is {speed:.2f}x faster than pandas.to_sql")
    ratio("sqlite", "coursemart full", "sqlite-utils insert", 1, faster=True)
    for database, name in (
        ("postgresql", "coursemart re-run"),
        ("mariadb", "coursemart re-run, whole command"),
        ("sqlite", "coursemart re-run"),
    ):
        if (database, name) not in seconds:
            continue
        rerun = seconds[database, name]
        verdict = "met" if rerun < 1 else "MISSED"
        what = "re-run with nothing new" + (", whole command," if "whole" in name else "")
        checks.append(f"{database}: {what} {rerun:.3f} s (target <1 s: {verdict})")
    if len(memory) == 2:
        small, large = sorted(memory)
        growth = memory[large].peak_mib / memory[small].peak_mib
        checks.append(
            f"memory: {large:,}-course load peaks at {memory[large].peak_mib:,.0f} MiB, "
            f"{growth:.2f}x the {small:,}-course load's {memory[small].peak_mib:,.0f} MiB "
            f"(target <=1.5x: {'met' if growth <= 1.5 else 'MISSED'}); "
            f"{large:,} rows in {memory[large].seconds:.1f} s"
        )
    print("\n".join(checks))
    return checks


if __name__ == "__main__":
    main()
