"""Lakes made before the Delta table keep working: ``coursemart lake convert`` commits each whole
batch folder as one version, in place, and a warehouse loaded from the old layout loads nothing
again. The fixture ``tests/data/lake-0.2`` was made by the release before the Delta table: two
batches (the second reschedules courses of the first), a folder left unfinished (no
``_SUCCESS``), and a SQLite warehouse that release loaded from them."""

from __future__ import annotations

import importlib.metadata
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from coursemart import warehouse
from coursemart.generate import generate
from coursemart.lake import open_lake
from coursemart.load import load
from coursemart.search import search_names
from tests.conftest import WINDOW, CliResult, snapshot
from tests.test_load import query, stored_courses

FIXTURE = Path(__file__).parent / "data" / "lake-0.2"
COLUMNS = ["course_id", "course_name", "category_id", "level_id", "start_date", "batch_id"]


@dataclass(frozen=True)
class OldLake:
    """A copy of the fixture: its lake, its warehouse, and the batch folders it holds."""

    lake: Path
    url: str
    committed: tuple[str, ...]
    unfinished: str


@pytest.fixture
def old(tmp_path: Path) -> OldLake:
    shutil.copytree(FIXTURE, tmp_path / "old")
    lake = tmp_path / "old" / "lake"
    folders = sorted(p.name.removeprefix("batch_id=") for p in (lake / "courses").iterdir())
    done = tuple(b for b in folders if (lake / "courses" / f"batch_id={b}" / "_SUCCESS").exists())
    (unfinished,) = set(folders) - set(done)
    return OldLake(lake, f"sqlite:///{tmp_path / 'old' / 'warehouse.db'}", done, unfinished)


def lake_files(lake: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(lake)): p.read_bytes() for p in sorted(lake.rglob("*")) if p.is_file()
    }


def current_catalog(rows: pa.Table) -> list[tuple[object, ...]]:
    """The current catalog from a table's rows: each course's row of the greatest batch."""
    latest: dict[int, tuple[object, ...]] = {}
    for row in sorted(rows.select(COLUMNS).to_pylist(), key=lambda r: r["batch_id"]):
        latest[row["course_id"]] = tuple(row.values())
    return [latest[course_id] for course_id in sorted(latest)]


def folder_rows(old: OldLake) -> pa.Table:
    """What the committed batch folders hold, each row with its batch id."""
    tables = []
    for batch_id in old.committed:
        table = pq.read_table(old.lake / "courses" / f"batch_id={batch_id}" / "part-00000.parquet")
        for part in sorted((old.lake / "courses" / f"batch_id={batch_id}").glob("part-*"))[1:]:
            table = pa.concat_tables([table, pq.read_table(part)])
        tables.append(table.append_column("batch_id", pa.array([batch_id] * table.num_rows)))
    return pa.concat_tables(tables)


def duckdb_rows(table_uri: str) -> pa.Table:
    """The table's rows as DuckDB's delta extension reads them."""
    import duckdb

    extension = next(
        file.locate()
        for file in importlib.metadata.files("duckdb-ext-delta") or []
        if str(file).endswith(".duckdb_extension")
    )
    connection = duckdb.connect()
    try:
        connection.execute(f"LOAD '{extension}'")
        return connection.sql(f"SELECT * FROM delta_scan('{table_uri}')").to_arrow_table()
    finally:
        connection.close()


def test_convert_commits_one_version_per_whole_batch_and_names_the_unfinished_folder(
    old: OldLake, cli: Callable[..., CliResult]
) -> None:
    from deltalake import DeltaTable

    before = lake_files(old.lake)

    result = cli("lake", "convert", "--lake", str(old.lake))

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"converted 2 batches into the Delta table {old.lake}/courses (now at version 1)",
        f"left aside courses/batch_id={old.unfinished}: has no _SUCCESS (still being written, "
        "or interrupted)",
    ]
    table = DeltaTable(str(old.lake / "courses"))
    history = sorted(table.history(), key=lambda entry: int(entry["version"]))
    assert [entry["coursemart.batch_id"] for entry in history] == list(old.committed)
    commits = open_lake(str(old.lake)).commits(0, 1)
    for commit, batch_id in zip(commits, old.committed, strict=True):
        folder = old.lake / "courses" / f"batch_id={batch_id}"
        assert sorted(file.path for file in commit.added) == [
            str(p) for p in sorted(folder.glob("part-*.parquet"))
        ]
    after = lake_files(old.lake)
    assert {k: v for k, v in after.items() if "_delta_log" not in k} == before  # nothing moved


def refolded(tables: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """A warehouse's rows with each course's folded name as today's folding makes it: what the
    first load of this release writes over the earlier folding's (nothing else of a course)."""
    position = [column.name for column in warehouse.courses.columns].index("search_name")
    names = search_names(pa.array([row[1] for row in tables["courses"]], pa.string()))
    courses = [
        (*row[:position], name, *row[position + 1 :])
        for row, name in zip(tables["courses"], names.to_pylist(), strict=True)
    ]
    return {**tables, "courses": courses}


def test_a_warehouse_loaded_before_the_conversion_loads_nothing_again(
    old: OldLake, cli: Callable[..., CliResult]
) -> None:
    before = refolded(snapshot(old.url))
    assert cli("lake", "convert", "-q", "--lake", str(old.lake)).exit_code == 0

    first = load(str(old.lake), old.url)
    after = snapshot(old.url)
    again = load(str(old.lake), old.url)

    assert (first.batches, first.rows_read, first.versions) == ((), 0, (0, 1))
    unchanged = {
        "coursemart_versions",
        "coursemart_loads",
        "coursemart_columns",
        "coursemart_search",
    }
    assert {k: v for k, v in after.items() if k not in unchanged} == {
        k: v for k, v in before.items() if k not in unchanged
    }
    assert after["coursemart_loads"][:-1] == before["coursemart_loads"]
    assert after["coursemart_columns"] == []  # the new manifest tables, empty
    assert after["coursemart_search"] == [(2,)]  # its names folded again: the same words
    table_id = str(open_lake(str(old.lake)).delta().metadata().id)
    assert [row[:8] for row in after["coursemart_versions"]] == [
        (table_id, 0, first.load_id, "CREATE TABLE", 0, 0, 0, 0),
        (table_id, 1, first.load_id, "WRITE", 0, 0, 0, 0),
    ]
    assert again.status == "nothing to do"


def test_after_the_conversion_a_new_generate_loads_alone(
    old: OldLake, cli: Callable[..., CliResult]
) -> None:
    assert cli("lake", "convert", "-q", "--lake", str(old.lake)).exit_code == 0
    load(str(old.lake), old.url)

    new = generate(str(old.lake), courses=20, seed=9, window=WINDOW, reschedule=0.1)
    result = load(str(old.lake), old.url)

    assert (result.batches, result.versions) == ((new.batch_id,), (2,))
    assert result.rows_read == new.rows == 20 + new.rescheduled
    assert new.first_id == 301  # after the converted batches' ids, not the unfinished folder's
    lake = open_lake(str(old.lake))
    expected = current_catalog(lake.delta().to_pyarrow_table())
    stored = query(old.url, "SELECT course_id, batch_id FROM courses ORDER BY course_id")
    assert stored == [(row[0], row[5]) for row in expected]
    assert len(stored_courses(old.url)) == 320


def test_readers_see_exactly_the_converted_catalog(
    old: OldLake, cli: Callable[..., CliResult]
) -> None:
    from deltalake import DeltaTable

    assert cli("lake", "convert", "-q", "--lake", str(old.lake)).exit_code == 0
    uri = str(old.lake / "courses")

    by_pyarrow = DeltaTable(uri).to_pyarrow_table()
    by_duckdb = duckdb_rows(uri)

    expected = folder_rows(old)
    assert by_pyarrow.num_rows == by_duckdb.num_rows == expected.num_rows == 350
    assert not pc.any(pc.equal(by_pyarrow["batch_id"], old.unfinished)).as_py()
    catalog = current_catalog(expected)
    assert current_catalog(by_pyarrow) == current_catalog(by_duckdb) == catalog
    warehouse = query(old.url, "SELECT course_id, batch_id FROM courses ORDER BY course_id")
    assert warehouse == [(row[0], row[5]) for row in catalog]  # what the old release loaded


def test_convert_run_twice_changes_nothing_the_second_time(
    old: OldLake, cli: Callable[..., CliResult]
) -> None:
    cli("lake", "convert", "--lake", str(old.lake))
    converted = lake_files(old.lake)

    again = cli("lake", "convert", "--lake", str(old.lake))

    assert again.exit_code == 0
    assert again.stdout.splitlines()[0] == (
        f"converted 0 batches into the Delta table {old.lake}/courses; 2 were already in it"
    )
    assert lake_files(old.lake) == converted


@pytest.mark.parametrize(
    "command",
    [
        ("generate", "-q", "-n", "10"),
        ("load", "--warehouse", "{url}"),
        ("lake", "vacuum", "--retention-hours", "0"),
    ],
)
def test_an_unconverted_lake_is_refused_pointing_to_convert(
    old: OldLake, cli: Callable[..., CliResult], command: tuple[str, ...]
) -> None:
    lake_before, warehouse_before = lake_files(old.lake), snapshot(old.url)
    if command[0] == "load":  # which brings the warehouse's schema up to date first
        warehouse_before = refolded(warehouse_before)

    result = cli(*(part.format(url=old.url) for part in command), "--lake", str(old.lake))

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"coursemart: error: {old.lake}/courses holds batch folders (the layout before Delta "
        f"tables): run `coursemart lake convert --lake {old.lake}` once, then load"
    ]
    assert lake_files(old.lake) == lake_before
    # The failed load's record may add the tables it needs, empty, and the search folding it
    # brought the names to.
    after = snapshot(old.url)
    upgrade = {"coursemart_loads", "coursemart_search"}
    assert {k: v for k, v in after.items() if k not in upgrade and v} == {
        k: v for k, v in warehouse_before.items() if k not in upgrade
    }
