"""Columns the lake's table gains (Delta schema merge, by any writer) reach every warehouse;
a column that changes type or disappears is refused by name, and nothing is loaded."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from coursemart.api import render
from coursemart.api.catalog import VERSION_TTL
from coursemart.errors import LakeError
from coursemart.generate import generate
from coursemart.load import load
from tests.conftest import WINDOW, snapshot
from tests.test_load import query

SEED_FIELDS = set(render.COLUMNS)  # the original function's fields


def outside_rows(ids: list[int], **extra: pa.Array) -> pa.Table:
    """Rows as another writer appends them, with extra columns."""
    columns: dict[str, pa.Array] = {
        "course_id": pa.array(ids, pa.int64()),
        "course_name": pa.array([f"Rust Systems {i}" for i in ids]),
        "category_id": pa.array([1] * len(ids), pa.int32()),
        "level_id": pa.array([101] * len(ids), pa.int32()),
        "start_date": pa.array(
            [datetime(2026, 6, 1, 9, tzinfo=UTC)] * len(ids), pa.timestamp("us", "UTC")
        ),
        "batch_id": pa.array(["29990101T000000.000000Z-beef"] * len(ids)),
    }
    return pa.table({**columns, **extra})


def table_uri(lake_dir: Path) -> str:
    return str(lake_dir / "courses")


def test_a_column_added_by_another_writer_reaches_the_table_and_the_view(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=50, seed=1, window=WINDOW)
    load(str(lake_dir), warehouse_url)
    rows = outside_rows(
        [1_001, 1_002],
        language=pa.array(["en", None]),
        duration_hours=pa.array([12.5, 3.0], pa.float64()),
    )
    write_deltalake(table_uri(lake_dir), rows, mode="append", schema_mode="merge")

    result = load(str(lake_dir), warehouse_url)

    assert result.rows_loaded == 2
    added = query(
        warehouse_url,
        "SELECT course_id, language, duration_hours FROM vw_most_recent_courses "
        "WHERE course_id > 1000 ORDER BY course_id",
    )
    assert [(row[0], row[1], float(row[2])) for row in added] == [
        (1_001, "en", 12.5),
        (1_002, None, 3.0),
    ]
    older = query(warehouse_url, "SELECT COUNT(*) FROM courses WHERE language IS NULL")
    assert older[0][0] == 51  # the 50 courses from before the column, and one null value
    columns = query(warehouse_url, "SELECT column_name, lake_type FROM coursemart_columns")
    assert sorted(columns) == [("duration_hours", "float"), ("language", "text")]


def test_adding_the_same_columns_again_changes_nothing(lake_dir: Path, sqlite_url: str) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    rows = outside_rows([501], language=pa.array(["de"]))
    write_deltalake(table_uri(lake_dir), rows, mode="append", schema_mode="merge")
    load(str(lake_dir), sqlite_url)
    write_deltalake(
        table_uri(lake_dir), outside_rows([502], language=pa.array(["it"])), mode="append"
    )

    load(str(lake_dir), sqlite_url)

    stored = query(sqlite_url, "SELECT course_id, language FROM courses WHERE course_id > 500")
    assert sorted(stored) == [(501, "de"), (502, "it")]
    assert len(query(sqlite_url, "SELECT * FROM coursemart_columns")) == 1


@pytest.mark.parametrize(
    ("new_schema", "named"),
    [
        ({"language": pa.array([7], pa.int64())}, "column language changed type from text to"),
        ({}, "column language disappeared from the lake's table"),
    ],
)
def test_a_column_that_changes_type_or_disappears_is_refused_and_nothing_loads(
    lake_dir: Path, sqlite_url: str, new_schema: dict[str, pa.Array], named: str
) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    write_deltalake(
        table_uri(lake_dir),
        outside_rows([501], language=pa.array(["de"])),
        mode="append",
        schema_mode="merge",
    )
    load(str(lake_dir), sqlite_url)
    before = snapshot(sqlite_url)
    write_deltalake(
        table_uri(lake_dir),
        outside_rows([601], **new_schema),
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=["batch_id"],
    )

    with pytest.raises(LakeError, match=named):
        load(str(lake_dir), sqlite_url)

    after = snapshot(sqlite_url)
    failed = after.pop("coursemart_loads")[-1]
    before.pop("coursemart_loads")
    assert after == before  # nothing loaded; the failure is in the history
    assert "failed" in failed


def test_a_column_name_the_warehouse_cannot_take_is_refused_by_name(
    lake_dir: Path, sqlite_url: str
) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    rows = outside_rows([501], **{"Language Code": pa.array(["de"])})
    write_deltalake(table_uri(lake_dir), rows, mode="append", schema_mode="merge")

    with pytest.raises(LakeError, match="column 'Language Code' whose name the warehouse cannot"):
        load(str(lake_dir), sqlite_url)


def test_the_api_returns_added_columns_in_v1_and_documents_them_but_not_in_the_seed_route(
    lake_dir: Path, warehouse_url: str
) -> None:
    from fastapi.testclient import TestClient

    from coursemart.api import create_app
    from tests.test_api import settings_for

    generate(str(lake_dir), courses=20, seed=1, window=WINDOW)
    load(str(lake_dir), warehouse_url)
    app = create_app(settings_for(warehouse_url, lake=str(lake_dir)))
    with TestClient(app) as client:
        before = client.get("/openapi.json").json()
        assert "language" not in before["components"]["schemas"]["CoursePublic"]["properties"]

        rows = outside_rows(
            [1_001],
            language=pa.array(["en"]),
            duration_hours=pa.array([12.5], pa.float64()),
            certified=pa.array([True]),
            price=pa.array([Decimal("19.90")], pa.decimal128(8, 2)),
            opens_at=pa.array([datetime(2026, 5, 1, 8, tzinfo=UTC)], pa.timestamp("us", "UTC")),
        )
        write_deltalake(table_uri(lake_dir), rows, mode="append", schema_mode="merge")
        load(str(lake_dir), warehouse_url)
        time.sleep(VERSION_TTL + 0.1)  # the server's data version moves within a second

        page = client.get("/v1/courses/recent?limit=100").json()["data"]
        one = client.get("/v1/courses/1001").json()
        searched = client.get("/v1/courses/recent?q=rust").json()["data"]
        seed = client.get("/api/GetRecentCourses").json()["data"]
        document = client.get("/openapi.json").json()

    added = {
        "language": "en",
        "duration_hours": 12.5,
        "certified": True,
        "price": 19.9,
        "opens_at": "2026-05-01T08:00:00Z",
    }
    new = next(course for course in page if course["course_id"] == 1_001)
    assert {name: new[name] for name in added} == added
    assert {name: one[name] for name in added} == added
    assert {name: searched[0][name] for name in added} == added
    older = next(course for course in page if course["course_id"] != 1_001)
    assert all(older[name] is None for name in added)  # written before the columns
    assert all(set(course) == SEED_FIELDS for course in seed)  # the seed's fields, unchanged
    properties = document["components"]["schemas"]["CoursePublic"]["properties"]
    assert properties["language"]["anyOf"][0] == {"type": "string"}
    assert properties["certified"]["anyOf"][0] == {"type": "boolean"}
    assert properties["opens_at"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert properties["price"]["anyOf"][0] == {"type": "number"}
    seed_schema = document["components"]["schemas"]["SeedCoursePublic"]["properties"]
    assert set(seed_schema) == SEED_FIELDS
