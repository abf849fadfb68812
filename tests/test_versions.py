"""Exactly-once by version: the warehouse's manifest (``coursemart_versions``) records the lake
table's id and each version loaded; a load reads only the versions after the last one, and a
different table at the lake path is refused by name. On SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from deltalake import DeltaTable

from coursemart.generate import generate
from coursemart.load import load
from tests.conftest import WINDOW, CliResult, snapshot
from tests.test_load import course_count, query

Cli = Callable[..., CliResult]


def table_id(lake_dir: Path) -> str:
    """The id of the lake's courses table, as delta-rs reads it."""
    return str(DeltaTable(str(lake_dir / "courses")).metadata().id)


def manifest(url: str) -> list[tuple[object, ...]]:
    """The versions the warehouse loaded: table id, version, load id, rows read and loaded."""
    return query(
        url,
        "SELECT table_id, version, load_id, rows_read, rows_loaded "
        "FROM coursemart_versions ORDER BY version",
    )


def without_loads(tables: dict[str, list[tuple[object, ...]]]) -> dict[str, object]:
    """A snapshot without the load history (which records every load, even one that failed)."""
    return {name: rows for name, rows in tables.items() if name != "coursemart_loads"}


def test_each_version_is_loaded_once_and_a_later_load_reads_only_the_new_one(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=300, seed=1, window=WINDOW)
    generate(str(lake_dir), courses=200, seed=2, window=WINDOW, reschedule=0.1)

    first = load(str(lake_dir), warehouse_url)
    loaded = snapshot(warehouse_url)
    second = load(str(lake_dir), warehouse_url)
    unchanged = snapshot(warehouse_url)
    third_batch = generate(str(lake_dir), courses=100, seed=3, window=WINDOW)
    third = load(str(lake_dir), warehouse_url)

    table = table_id(lake_dir)
    assert first.versions == (0, 1)
    assert (second.status, second.versions, second.rows_read) == ("nothing to do", (), 0)
    assert without_loads(unchanged) == without_loads(loaded)
    assert (third.versions, third.batches) == ((2,), (third_batch.batch_id,))
    assert third.rows_read == 100  # the versions loaded before are not read again
    assert manifest(warehouse_url) == [
        (table, 0, first.load_id, 300, 300),
        (table, 1, first.load_id, 230, 230),
        (table, 2, third.load_id, 100, 100),
    ]
    assert course_count(warehouse_url) == 600


def test_another_table_at_the_lake_path_is_refused_naming_both_tables(
    lake_dir: Path, warehouse_url: str, cli: Cli
) -> None:
    generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    load(str(lake_dir), warehouse_url)
    loaded_table = table_id(lake_dir)
    shutil.rmtree(lake_dir / "courses")
    generate(str(lake_dir), courses=50, seed=2, window=WINDOW)  # a new table, at version 0
    before = snapshot(warehouse_url)

    result = cli("load", "--lake", str(lake_dir), "--warehouse", warehouse_url)

    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("coursemart: error: ")
    assert f"another Delta table (id {table_id(lake_dir)})" in result.stderr
    assert f"the one this warehouse loaded (id {loaded_table}, up to version 0)" in result.stderr
    after = snapshot(warehouse_url)
    assert without_loads(after) == without_loads(before)
    assert after["coursemart_loads"][-1][3] == "failed"
