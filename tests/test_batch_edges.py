"""The edges of the lake's Delta table: batch ids other writers give, files the log does not name,
files it names that are gone, generates racing or killed, and batches other writers append.

The log is the one truth: a file it names is read whole or the load stops naming it; a file it
does not name is never read (whatever a folder holds); two writers racing both land; a killed
generate leaves nothing a reader sees, and only vacuum or the next generate removes its files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coursemart import model
from coursemart.errors import LakeError
from coursemart.generate import generate
from coursemart.lake import batch_id_problem, open_lake
from coursemart.load import load
from tests.conftest import WINDOW, CliResult, snapshot
from tests.test_bad_inputs import commit_file, course_table, parquet_bytes
from tests.test_load import course_count, expected_courses, query, stored_courses


def batch_folder(lake_dir: Path, batch_id: str) -> Path:
    return lake_dir / "courses" / f"batch_id={batch_id}"


def log_actions(lake_dir: Path, version: int) -> list[dict[str, object]]:
    text = (lake_dir / "courses" / "_delta_log" / f"{version:020d}.json").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def coursemart(*args: str) -> list[str]:
    return [sys.executable, "-m", "coursemart", *args]


# ---------------------------------------------------------------------------------------------
# What the log names, and only that


@pytest.mark.parametrize(
    "name",
    [
        "20261127T102455.123456Z-[ab]",
        "20261127T102455.123456Z-*",
        "20261127T102455.123456Z-?",
        "20261127T102455.123456Z-{a,b}",
        "20261127T102455 with space",
        "x" * 65,
        "-starts-with-a-dash",
        "café",
        "a/b",
    ],
)
def test_a_partition_value_that_is_not_a_batch_id_loads_as_the_commits_batch_with_a_warning(
    lake_dir: Path, sqlite_url: str, name: str
) -> None:
    first = generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    rows = course_table(course_id=pa.array([500, 501], pa.int64()))
    commit_batch = commit_file(lake_dir, parquet_bytes(rows), name)

    result = load(str(lake_dir), sqlite_url)
    again = load(str(lake_dir), sqlite_url)

    assert result.batches == (first.batch_id, commit_batch)
    assert result.rows_read == 102 and course_count(sqlite_url) == 102
    assert result.warnings == (
        f"version 1: batch_id {name!r} {batch_id_problem(name)}: its rows load as batch "
        f"{commit_batch}",
    )
    assert query(sqlite_url, "SELECT batch_id FROM courses WHERE course_id = 500") == [
        (commit_batch,)
    ]
    assert again.status == "nothing to do"


def test_a_lake_whose_own_path_has_glob_characters_is_read_literally(
    tmp_path: Path, sqlite_url: str
) -> None:
    lake_dir = tmp_path / "lake[1]*"
    generate(str(lake_dir), courses=300, seed=1, window=WINDOW)
    decoy = tmp_path / "lake1x" / "courses"  # what a glob of lake[1]* would also match
    generate(str(tmp_path / "lake1x"), courses=50, seed=2, window=WINDOW)
    assert decoy.exists()

    result = load(str(lake_dir), sqlite_url)

    assert (result.rows_read, course_count(sqlite_url)) == (300, 300)
    assert stored_courses(sqlite_url) == expected_courses(lake_dir)


def test_a_file_the_log_names_that_is_missing_stops_the_load_until_it_is_back(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    load(str(lake_dir), warehouse_url)
    batch = generate(str(lake_dir), courses=600, seed=2, window=WINDOW, chunk_rows=200)
    part = batch_folder(lake_dir, batch.batch_id) / "part-00002.parquet"
    held = part.read_bytes()
    part.unlink()
    before = snapshot(warehouse_url)

    with pytest.raises(LakeError) as refused:
        load(str(lake_dir), warehouse_url)
    after = snapshot(warehouse_url)
    part.write_bytes(held)
    loaded = load(str(lake_dir), warehouse_url)

    assert str(refused.value) == (
        f"{part} is missing, though version 1 of the table names it: restore the file from a "
        "copy; nothing was loaded"
    )
    assert {k: v for k, v in after.items() if k != "coursemart_loads"} == {
        k: v for k, v in before.items() if k != "coursemart_loads"
    }
    assert after["coursemart_loads"][-1][3] == "failed"
    assert loaded.batches == (batch.batch_id,) and course_count(warehouse_url) == 610
    assert query(warehouse_url, "SELECT COUNT(*) FROM coursemart_batches")[0][0] == 2


def test_a_commit_names_every_part_with_its_rows_bytes_and_ranges(lake_dir: Path) -> None:
    batch = generate(str(lake_dir), courses=250, seed=1, window=WINDOW, chunk_rows=100)
    folder = batch_folder(lake_dir, batch.batch_id)

    actions = log_actions(lake_dir, 0)

    adds = sorted((a["add"] for a in actions if "add" in a), key=lambda add: str(add["path"]))
    assert [add["path"] for add in adds] == [
        f"batch_id={batch.batch_id}/part-0000{n}.parquet" for n in range(3)
    ]
    assert all(add["size"] == (lake_dir / "courses" / add["path"]).stat().st_size for add in adds)
    assert all(add["partitionValues"] == {"batch_id": batch.batch_id} for add in adds)
    stats = [json.loads(add["stats"]) for add in adds]
    assert [s["numRecords"] for s in stats] == [
        pq.read_metadata(folder / f"part-0000{n}.parquet").num_rows for n in range(3)
    ]
    assert sum(s["numRecords"] for s in stats) == 250
    ids = pq.read_table(folder, columns=["course_id"])["course_id"].to_pylist()
    assert min(s["minValues"]["course_id"] for s in stats) == min(ids) == 1
    assert max(s["maxValues"]["course_id"] for s in stats) == max(ids) == 250
    info = next(a["commitInfo"] for a in actions if "commitInfo" in a)
    assert info["coursemart.batch_id"] == batch.batch_id


@pytest.mark.parametrize(
    "stray",
    ["notes.txt", ".part-00000.parquet.crc", "_started_123", "part-1.csv", "part-00009.parquet"],
)
def test_files_the_log_does_not_name_are_never_read(
    lake_dir: Path, sqlite_url: str, stray: str
) -> None:
    batch = generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    folder = batch_folder(lake_dir, batch.batch_id)
    if stray.endswith(".parquet"):
        shutil.copy(folder / "part-00000.parquet", folder / stray)
    else:
        (folder / stray).write_text("course_id\n999\n")

    result = load(str(lake_dir), sqlite_url)

    assert result.batches == (batch.batch_id,) and result.rows_read == 100
    assert course_count(sqlite_url) == 100 and result.warnings == ()


def test_batch_folders_no_commit_names_are_never_read(
    lake_dir: Path, tmp_path: Path, sqlite_url: str
) -> None:
    outside = generate(str(tmp_path / "elsewhere"), courses=100, seed=1, window=WINDOW)
    generate(str(lake_dir), courses=10, seed=2, window=WINDOW)
    os.symlink(batch_folder(tmp_path / "elsewhere", outside.batch_id), lake_dir / "courses" / "x")
    shutil.copytree(
        batch_folder(tmp_path / "elsewhere", outside.batch_id),
        batch_folder(lake_dir, outside.batch_id),
    )

    result = load(str(lake_dir), sqlite_url)

    assert course_count(sqlite_url) == 10 and result.warnings == ()
    assert outside.batch_id not in open_lake(str(lake_dir)).committed_batches()


@pytest.mark.parametrize(
    ("table", "partition_by", "problem"),
    [
        (
            pa.table({"isbn": ["978-0"], "title": ["Dune"]}),
            None,
            "no column course_id; no column course_name",
        ),
        (
            course_table(course_id=pa.array(["100"])).append_column("batch_id", pa.array(["b"])),
            ["batch_id"],
            "(course_id is string, not long)",
        ),
        (
            course_table(course_id=pa.array([100], pa.int64())).append_column(
                "batch_id", pa.array(["b"])
            ),
            None,
            "(partitioned by nothing, not batch_id)",
        ),
    ],
)
def test_generate_into_a_lake_holding_another_table_is_refused_before_writing(
    lake_dir: Path,
    cli: Callable[..., CliResult],
    table: pa.Table,
    partition_by: list[str] | None,
    problem: str,
) -> None:
    from deltalake import DeltaTable, write_deltalake

    uri = str(lake_dir / "courses")
    write_deltalake(uri, table, partition_by=partition_by)
    files = sorted(p for p in (lake_dir / "courses").rglob("*") if p.is_file())

    result = cli("generate", "-q", "-n", "10", "--lake", str(lake_dir))

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"coursemart: error: the Delta table {lake_dir}/courses is not a table of courses ("
    )
    assert problem in result.stderr and len(result.stderr.splitlines()) == 1
    assert result.stderr.rstrip().endswith("nothing written; point --lake at a coursemart lake")
    assert DeltaTable(uri).version() == 0
    assert sorted(p for p in (lake_dir / "courses").rglob("*") if p.is_file()) == files


# ---------------------------------------------------------------------------------------------
# Writers racing


def test_two_generates_at_the_same_moment_both_land_with_distinct_ids(
    lake_dir: Path, sqlite_url: str
) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    runs = [
        subprocess.Popen(
            coursemart(
                "generate", "-q", "-n", "20000", "--seed", str(seed), "--lake", str(lake_dir)
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (2, 3)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    lake = open_lake(str(lake_dir))
    assert len(lake.committed_batches()) == 3 and lake.delta().version() == 2
    rows = lake.delta().to_pyarrow_table(columns=["course_id"])["course_id"].to_pylist()
    assert len(rows) == len(set(rows)) == 40_010 and max(rows) == 40_010
    assert load(str(lake_dir), sqlite_url).rows_loaded == 40_010


APPEND = """
import sys, time
import pyarrow as pa
from deltalake import write_deltalake
start, first = float(sys.argv[2]), int(sys.argv[3])
rows = pa.table({"course_id": pa.array(range(first, first + 100), pa.int64())})
while time.time() < start:
    time.sleep(0.001)
write_deltalake(sys.argv[1], rows, mode="append")
"""


def test_two_delta_writers_appending_at_the_same_moment_are_both_kept(tmp_path: Path) -> None:
    from deltalake import DeltaTable, write_deltalake

    uri = str(tmp_path / "table")
    write_deltalake(uri, pa.table({"course_id": pa.array([0], pa.int64())}))
    start = time.time() + 3  # both processes have started and imported by then
    runs = [
        subprocess.Popen([sys.executable, "-c", APPEND, uri, str(start), str(first)])
        for first in (1, 101)
    ]

    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    table = DeltaTable(uri)
    assert table.version() == 2
    ids = sorted(table.to_pyarrow_table()["course_id"].to_pylist())
    assert ids == list(range(0, 201))


# ---------------------------------------------------------------------------------------------
# A generate killed before its commit


def kill_when_a_part_is_written(lake_dir: Path, seen: set[str]) -> Path:
    """Start a large ``coursemart generate``; SIGKILL it as soon as a batch folder other than
    ``seen`` holds a part file. Returns that folder."""
    process = subprocess.Popen(
        coursemart("generate", "-q", "-n", "3000000", "--lake", str(lake_dir)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            for folder in (lake_dir / "courses").glob("batch_id=*"):
                if folder.name not in seen and any(folder.glob("part-*.parquet")):
                    process.send_signal(signal.SIGKILL)
                    assert process.wait(timeout=30) == -signal.SIGKILL
                    return folder
            time.sleep(0.005)
        raise AssertionError(f"no part file was written (exit code {process.poll()})")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("remover", ["vacuum", "generate"])
def test_a_generate_killed_before_its_commit_leaves_nothing_a_reader_sees(
    lake_dir: Path, sqlite_url: str, remover: str
) -> None:
    from deltalake import DeltaTable

    first = generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    uri = str(lake_dir / "courses")

    killed = kill_when_a_part_is_written(lake_dir, {f"batch_id={first.batch_id}"})

    lake = open_lake(str(lake_dir))
    assert DeltaTable(uri).version() == 0 and lake.committed_batches() == [first.batch_id]
    assert DeltaTable(uri).to_pyarrow_table().num_rows == 10
    assert lake.uncommitted_batches() == [killed.name.removeprefix("batch_id=")]
    assert load(str(lake_dir), sqlite_url).rows_read == 10 and course_count(sqlite_url) == 10
    assert load(str(lake_dir), sqlite_url).status == "nothing to do"
    assert killed.exists()  # neither a reader nor a load removes it

    if remover == "vacuum":
        done = subprocess.run(
            coursemart("lake", "vacuum", "--lake", str(lake_dir)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("removed 1 uncommitted batch folders")
        assert DeltaTable(uri).version() == 0
    else:
        generate(str(lake_dir), courses=10, seed=2, window=WINDOW)
        assert DeltaTable(uri).version() == 1

    assert not killed.exists() and open_lake(str(lake_dir)).uncommitted_batches() == []


def test_a_first_generate_killed_before_the_table_exists_is_removed_by_vacuum_alone(
    lake_dir: Path, sqlite_url: str, cli: Callable[..., CliResult]
) -> None:
    (lake_dir / "courses" / "batch_id=theirs").mkdir(parents=True)
    (lake_dir / "courses" / "batch_id=theirs" / "part-0.parquet").write_bytes(b"not ours")
    hours_ago = time.time() - 7200  # older than vacuum's grace for other writers' leftovers
    os.utime(lake_dir / "courses" / "batch_id=theirs" / "part-0.parquet", (hours_ago, hours_ago))

    killed = kill_when_a_part_is_written(lake_dir, {"batch_id=theirs"})
    refused = cli("load", "--lake", str(lake_dir), "--warehouse", sqlite_url)
    vacuumed = cli("lake", "vacuum", "--lake", str(lake_dir))

    assert refused.stderr == (
        f"coursemart: error: {lake_dir}/courses holds files but no Delta log (_delta_log/): it "
        "is not a Delta table; point --lake at a coursemart lake\n"
    )
    assert vacuumed.exit_code == 0 and not killed.exists()
    assert (lake_dir / "courses" / "batch_id=theirs" / "part-0.parquet").exists()  # not ours


# ---------------------------------------------------------------------------------------------
# Batches other writers append


def other_rows(first_id: int, batch_id: str | None = None, *, with_batch: bool = True) -> pa.Table:
    """Three courses as another tool appends them; ``with_batch=False`` leaves out the
    ``batch_id`` column (the partition value is then null)."""
    rows = pa.table(
        {
            "course_id": pa.array(range(first_id, first_id + 3), pa.int64()),
            "course_name": ["Ceramics", "Welding", "Jazz Piano"],
            "category_id": pa.array([3, 4, 3], pa.int32()),
            "level_id": pa.array([101, 102, 103], pa.int32()),
            "start_date": pa.array([datetime(2026, 6, 1, 9, tzinfo=UTC)] * 3, model.TIMESTAMP),
        }
    )
    if not with_batch:
        return rows
    return rows.append_column("batch_id", pa.array([batch_id] * 3, pa.string()))


def append_with(writer: str, uri: str, rows: pa.Table) -> None:
    from deltalake import write_deltalake

    if writer == "polars":
        import polars as pl

        frame = pl.from_arrow(rows)
        assert isinstance(frame, pl.DataFrame)
        frame.write_delta(uri, mode="append")
    elif writer == "pandas":
        write_deltalake(uri, rows.to_pandas(), mode="append")
    else:
        write_deltalake(uri, rows, mode="append")


@pytest.mark.parametrize("writer", ["polars", "pandas", "pyarrow"])
def test_a_batch_another_writer_appends_loads_like_one_of_coursemarts(
    lake_dir: Path, sqlite_url: str, writer: str
) -> None:
    first = generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    load(str(lake_dir), sqlite_url)
    theirs = "20990101T000000.000000Z-them"
    append_with(writer, str(lake_dir / "courses"), other_rows(50, theirs))  # two replace ours

    result = load(str(lake_dir), sqlite_url)

    assert (result.batches, result.versions) == ((theirs,), (1,))
    assert (result.rows_loaded, result.rows_rejected) == (3, 0)
    assert stored_courses(sqlite_url) == expected_courses(lake_dir)
    assert query(sqlite_url, "SELECT course_name, batch_id FROM courses WHERE course_id = 50") == [
        ("Ceramics", theirs)
    ]
    batches = query(sqlite_url, "SELECT batch_id FROM coursemart_batches ORDER BY batch_id")
    assert batches == [(first.batch_id,), (theirs,)]


@pytest.mark.parametrize("omitted", ["column left out", "null values"])
def test_rows_appended_without_a_batch_id_get_one_derived_from_their_commit(
    lake_dir: Path, sqlite_url: str, omitted: str
) -> None:
    from deltalake import write_deltalake

    generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    uri = str(lake_dir / "courses")
    if omitted == "column left out":
        rows = other_rows(101, with_batch=False)
        write_deltalake(uri, rows, mode="append", schema_mode="merge")
    else:
        write_deltalake(uri, other_rows(101, None), mode="append")
    commit = open_lake(str(lake_dir)).commits(1, 1)[0]
    derived = f"{commit.timestamp:%Y%m%dT%H%M%S.%fZ}-v1"

    result = load(str(lake_dir), sqlite_url)

    assert commit.derived_batch_id == derived and result.batches[-1] == derived
    assert query(sqlite_url, "SELECT course_id, batch_id FROM courses WHERE course_id > 100") == [
        (101, derived),
        (102, derived),
        (103, derived),
    ]
    assert (derived,) in query(sqlite_url, "SELECT batch_id FROM coursemart_batches")
    assert load(str(lake_dir), sqlite_url).status == "nothing to do"
