"""Row lineage: each course keeps the batch it came from, and the greatest batch id wins,
whatever order batches arrive in — on every database, and a warehouse made before lineage is
upgraded in place by the next load."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from coursemart import model
from coursemart.generate import generate
from coursemart.lake import open_lake
from coursemart.lake.upkeep import convert
from coursemart.load import load
from tests.conftest import PG_ADMIN, WINDOW, execute, new_warehouse
from tests.test_load import expected_courses, query, stored_courses, write_raw_batch

LEGACY = Path(__file__).parent / "data" / "warehouse-0.1"
OLDER, NEWER = "20990101T000000.000000Z-0001", "20990601T000000.000000Z-0002"


def courses(*rows: tuple[int, str, datetime]) -> pa.Table:
    """Course rows of the Technology category at Beginner level."""
    ids, names, starts = zip(*rows, strict=True)
    return pa.table(
        {
            "course_id": pa.array(ids, pa.int64()),
            "course_name": pa.array(names, pa.string()),
            "category_id": pa.array([1] * len(ids), pa.int32()),
            "level_id": pa.array([101] * len(ids), pa.int32()),
            "start_date": pa.array(starts, model.TIMESTAMP),
        }
    )


def lineage(url: str) -> dict[int, tuple[str, str]]:
    """course_id -> (start date as text, batch_id)."""
    rows = query(url, "SELECT course_id, start_date, batch_id FROM courses")
    return {int(str(r[0])): (str(r[1])[:16], str(r[2])) for r in rows}


MARCH = datetime(2026, 3, 1, 9, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, 9, tzinfo=UTC)
MAY = datetime(2026, 5, 1, 9, tzinfo=UTC)


def test_a_late_older_batch_never_rolls_a_course_back(lake_dir: Path, warehouse_url: str) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)  # dimensions and courses 1-10
    write_raw_batch(lake_dir, courses((1, "Newer Name", MAY)), batch_id=NEWER)
    load(str(lake_dir), warehouse_url)
    write_raw_batch(
        lake_dir, courses((1, "Older Name", MARCH), (500, "Only Here", APRIL)), batch_id=OLDER
    )

    result = load(str(lake_dir), warehouse_url)

    assert result.batches == (OLDER,)
    stored = lineage(warehouse_url)
    assert stored[1] == ("2026-05-01 09:00", NEWER)
    assert stored[500] == ("2026-04-01 09:00", OLDER)
    names = dict(query(warehouse_url, "SELECT course_id, course_name FROM courses"))
    assert names[1] == "Newer Name"


def test_batches_arriving_together_merge_to_the_greatest_batch_id(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    write_raw_batch(lake_dir, courses((1, "Newer Name", MAY)), batch_id=NEWER)
    write_raw_batch(lake_dir, courses((1, "Older Name", MARCH)), batch_id=OLDER)

    load(str(lake_dir), warehouse_url)

    assert lineage(warehouse_url)[1] == ("2026-05-01 09:00", NEWER)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def collating_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A warehouse whose text order is not by code point where a database allows it: MariaDB as
    it comes (``utf8mb4_general_ci``), and a PostgreSQL database made with an ICU locale (as a
    database made with ``en_US``, the official image's default, orders text); SQLite as it is."""
    if request.param != "postgresql":
        yield from new_warehouse(request.param, tmp_path)
        return
    import uuid

    import sqlalchemy as sa

    name = f"cm_icu_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(
            f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        )
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def test_the_greatest_batch_id_is_the_greatest_by_code_point_on_every_database(
    lake_dir: Path, collating_warehouse: str
) -> None:
    """By code point ``b-1`` > ``B-2`` and ``x_1`` > ``x-1`` (as the lake orders them), though a
    case-insensitive or ICU collation orders each pair the other way: the rows of ``b-1`` and
    ``x_1`` win, and deleting the older rows leaves those courses in place."""
    url = collating_warehouse
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    write_raw_batch(lake_dir, courses((1, "From B-2", MARCH)), batch_id="B-2")
    write_raw_batch(lake_dir, courses((2, "From x-1", MARCH)), batch_id="x-1")
    load(str(lake_dir), url)
    write_raw_batch(lake_dir, courses((1, "From b-1", APRIL)), batch_id="b-1")
    write_raw_batch(lake_dir, courses((2, "From x_1", APRIL)), batch_id="x_1")
    load(str(lake_dir), url)
    names = dict(query(url, "SELECT course_id, course_name FROM courses WHERE course_id <= 2"))
    DeltaTable(str(lake_dir / "courses")).delete("batch_id = 'B-2' OR batch_id = 'x-1'")

    result = load(str(lake_dir), url)

    assert names == {1: "From b-1", 2: "From x_1"}
    assert result.cancelled == 0
    assert lineage(url)[1] == ("2026-04-01 09:00", "b-1")
    assert lineage(url)[2] == ("2026-04-01 09:00", "x_1")


def test_every_course_row_names_the_batch_it_came_from(lake_dir: Path, warehouse_url: str) -> None:
    first = generate(str(lake_dir), courses=200, seed=1, window=WINDOW)
    load(str(lake_dir), warehouse_url)
    second = generate(str(lake_dir), courses=50, seed=2, window=WINDOW, reschedule=0.2)

    load(str(lake_dir), warehouse_url)

    stored = lineage(warehouse_url)
    moved = {row for row, (_, batch) in stored.items() if batch == second.batch_id and row <= 200}
    assert len(moved) == 40
    assert {batch for row, (_, batch) in stored.items() if row not in moved and row <= 200} == {
        first.batch_id
    }
    assert all(stored[row][1] == second.batch_id for row in range(201, 251))


def legacy_copy(tmp_path: Path) -> tuple[Path, str]:
    """The lake and SQLite warehouse made by coursemart 0.1 (before row lineage), copied."""
    shutil.copytree(LEGACY, tmp_path / "legacy")
    return tmp_path / "legacy" / "lake", f"sqlite:///{tmp_path / 'legacy' / 'warehouse.db'}"


def test_a_warehouse_made_before_lineage_is_upgraded_in_place_by_the_next_load(
    tmp_path: Path,
) -> None:
    """coursemart 0.1's lake, once converted to a Delta table, loads only what it lacks."""
    lake_dir, url = legacy_copy(tmp_path)
    database = url.removeprefix("sqlite:///")
    columns = [row[1] for row in sqlite3.connect(database).execute("PRAGMA table_info(courses)")]
    assert "batch_id" not in columns  # as 0.1 left it
    loaded = [row[0] for row in query(url, "SELECT batch_id FROM coursemart_batches")]
    before = stored_courses(url)
    assert convert(open_lake(str(lake_dir))).converted == tuple(sorted(loaded))
    later = generate(str(lake_dir), courses=30, seed=7, window=WINDOW, reschedule=0.1)

    result = load(str(lake_dir), url)

    assert (result.batches, result.versions) == ((later.batch_id,), (0, 1, 2))
    stored = lineage(url)
    assert len(stored) == len(before) + 30
    kept = {batch for batch in (b for _, b in stored.values()) if batch != later.batch_id}
    assert kept == {max(loaded)}  # rows from before lineage take the latest loaded batch
    upgraded = stored_courses(url)
    assert upgraded == expected_courses(lake_dir)
    earlier = "20200101T000000.000000Z-0000"  # older than every batch the warehouse holds
    write_raw_batch(lake_dir, courses((1, "Late Older Name", MARCH)), batch_id=earlier)
    load(str(lake_dir), url)
    assert stored_courses(url)[1] == upgraded[1]
    assert lineage(url)[1][1] != earlier


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_a_server_warehouse_without_lineage_is_upgraded_by_the_next_load(
    lake_dir: Path, tmp_path: Path, backend: str
) -> None:
    for url in new_warehouse(backend, tmp_path):
        first = generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
        load(str(lake_dir), url)
        execute(url, "ALTER TABLE courses DROP COLUMN batch_id")  # as 0.1 made it
        later = generate(str(lake_dir), courses=10, seed=2, window=WINDOW, reschedule=0.1)

        load(str(lake_dir), url)

        stored = lineage(url)
        assert len(stored) == 110
        assert {b for _, b in stored.values()} == {first.batch_id, later.batch_id}
        assert stored_courses(url) == expected_courses(lake_dir)
