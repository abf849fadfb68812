"""The API's SQL and parameter parsing, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from coursemart.api import queries
from coursemart.api.catalog import Catalog
from coursemart.api.pagination import Cursor
from coursemart.api.params import (
    ParameterError,
    check_range,
    parse_instant,
    resolve_dimension,
)
from coursemart.api.queries import CourseFilter, Shape
from tests.conftest import empty_warehouse

DIALECTS = {
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.dialect(),
    "mysql": mysql.dialect(),
}
CURSOR = Cursor(datetime(2026, 3, 1, 9, tzinfo=UTC), 42)


def sql(statement: sa.ClauseElement, backend: str) -> str:
    compiled = statement.compile(dialect=DIALECTS[backend], compile_kwargs={"literal_binds": False})
    return " ".join(str(compiled).split())


@pytest.mark.parametrize(
    ("backend", "descending", "keyset"),
    [
        (
            "sqlite",
            True,
            "(vw_most_recent_courses.start_date, vw_most_recent_courses.course_id) < (?, ?)",
        ),
        (
            "sqlite",
            False,
            "(vw_most_recent_courses.start_date, vw_most_recent_courses.course_id) > (?, ?)",
        ),
        (
            "postgresql",
            True,
            "(vw_most_recent_courses.start_date, vw_most_recent_courses.course_id) "
            "< (%(cursor_date)s::TIMESTAMP WITH TIME ZONE, %(cursor_id)s::BIGINT)",
        ),
        (
            "mysql",
            True,
            "vw_most_recent_courses.start_date <= %s AND (vw_most_recent_courses.start_date < %s "
            "OR vw_most_recent_courses.course_id < %s)",
        ),
        (
            "mysql",
            False,
            "vw_most_recent_courses.start_date >= %s AND (vw_most_recent_courses.start_date > %s "
            "OR vw_most_recent_courses.course_id > %s)",
        ),
    ],
)
def test_pages_after_a_cursor_are_a_keyset_range(
    backend: str, descending: bool, keyset: str
) -> None:
    shape = Shape(cursor=True, descending=descending)
    text = sql(queries.recent_courses(shape, backend=backend, limit=51), backend)
    assert text.startswith("SELECT vw_most_recent_courses.course_id, ")
    assert f"FROM vw_most_recent_courses WHERE {keyset}" in text
    way = "DESC" if descending else "ASC"
    order = (
        f"ORDER BY vw_most_recent_courses.start_date {way}, vw_most_recent_courses.course_id {way}"
    )
    assert f"{order} LIMIT " in text


@pytest.mark.parametrize(
    ("course_filter", "conditions"),
    [
        (CourseFilter(), []),
        (CourseFilter(category_id=3), ["vw_most_recent_courses.category_id = ?"]),
        (CourseFilter(level_id=101), ["vw_most_recent_courses.level_id = ?"]),
        (
            CourseFilter(since=CURSOR.start_date, until=CURSOR.start_date + timedelta(days=1)),
            ["vw_most_recent_courses.start_date >= ?", "vw_most_recent_courses.start_date < ?"],
        ),
    ],
)
def test_filters_become_conditions_on_the_view(
    course_filter: CourseFilter, conditions: list[str]
) -> None:
    shape = Shape.of(course_filter, cursor=False, descending=True)
    text = sql(queries.recent_courses(shape, backend="sqlite", limit=10), "sqlite")
    where = text.partition(" WHERE ")[2].partition(" ORDER BY ")[0]
    assert [part for part in where.split(" AND ") if part] == conditions


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("postgresql", datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("mssql", datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("sqlite", datetime(2026, 3, 1, 8)),
        ("mysql", datetime(2026, 3, 1, 8)),
        ("mariadb", datetime(2026, 3, 1, 8)),
    ],
)
def test_instants_are_bound_as_each_driver_wants(backend: str, expected: datetime) -> None:
    paris = datetime(2026, 3, 1, 9, tzinfo=timezone(timedelta(hours=1)))
    bound = queries.bind_instant(paris, backend)
    assert bound == expected
    assert bound.tzinfo == expected.tzinfo


@pytest.mark.parametrize("descending", [True, False])
def test_sqlite_reads_pages_through_the_start_date_index(tmp_path: Path, descending: bool) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    empty_warehouse(url)
    catalog = Catalog(url)
    shape = Shape(category=True, since=True, cursor=True, descending=descending)
    statement = catalog.statement(shape, 51)  # the SQL the API runs, as the driver gets it
    assert statement.positions is not None
    values = {**statement.fixed, "category_id": 2, "since": "2026-01-01", "cursor_id": 42}
    values["cursor_date"] = "2026-03-01 09:00:00.000000"
    connection = catalog.open().raw_connection()
    try:
        plan = " ".join(
            str(row[-1])
            for row in connection.execute(
                f"EXPLAIN QUERY PLAN {statement.sql}",
                [values[name] for name in statement.positions],
            )
        )
    finally:
        connection.close()
        catalog.close()
    assert "courses USING INDEX ix_courses_start_date_course_id" in plan
    assert "TEMP B-TREE" not in plan  # no sort: the index gives the order


# ---------------------------------------------------------------------------------------------
# Parameters


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T09:00", datetime(2026, 3, 1, 9, tzinfo=UTC)),
        ("2026-03-01T09:00:00", datetime(2026, 3, 1, 9, tzinfo=UTC)),
        ("2026-03-01 09:00:00", datetime(2026, 3, 1, 9, tzinfo=UTC)),
        ("2026-03-01T09:00:00Z", datetime(2026, 3, 1, 9, tzinfo=UTC)),
        ("2026-03-01t09:00:00z", datetime(2026, 3, 1, 9, tzinfo=UTC)),
        ("2026-03-01T09:00:00.5+00:00", datetime(2026, 3, 1, 9, 0, 0, 500000, tzinfo=UTC)),
        ("2026-03-01T10:30:00+01:30", datetime(2026, 3, 1, 9, tzinfo=UTC)),
        ("2026-03-01T01:00:00-08:00", datetime(2026, 3, 1, 9, tzinfo=UTC)),
    ],
)
def test_instants_parse_to_utc(text: str, instant: datetime) -> None:
    parsed = parse_instant(text)
    assert parsed == instant
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "1700000000",
        "20260301",
        "2026-3-1",
        "2026-02-30",
        "2026-03-01T24:00",
        "2026-03-01T09",
        "2026-03-01T09:00+0100",
        "2026-W09",
        "2026-03-01T09:00:00.1234567Z",
        12,
        None,
    ],
)
def test_other_text_is_not_an_instant(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_instant(text)


KNOWN = ((1, "Technology"), (2, "Business"), (3, "Art"))


@pytest.mark.parametrize(
    ("value", "key"),
    [("3", 3), (" 3 ", 3), ("art", 3), ("ART", 3), ("Art", 3), ("technology", 1), ("2", 2)],
)
def test_dimensions_resolve_by_id_or_name(value: str, key: int) -> None:
    assert resolve_dimension("category", value, KNOWN) == key


@pytest.mark.parametrize("value", ["4", "0", "03", "Arts", "Cooking", "1 Technology", "-1"])
def test_unknown_dimensions_name_the_parameter_and_the_choices(value: str) -> None:
    with pytest.raises(ParameterError) as raised:
        resolve_dimension("category", value, KNOWN)
    assert raised.value.parameter == "category"
    assert "1 Technology, 2 Business, 3 Art" in raised.value.message


@pytest.mark.parametrize(
    ("since", "until", "ok"),
    [
        (None, None, True),
        (CURSOR.start_date, None, True),
        (None, CURSOR.start_date, True),
        (CURSOR.start_date, CURSOR.start_date + timedelta(microseconds=1), True),
        (CURSOR.start_date, CURSOR.start_date, True),  # an empty range: no course, no error
        (CURSOR.start_date, CURSOR.start_date - timedelta(microseconds=1), False),
        (CURSOR.start_date, CURSOR.start_date - timedelta(days=1), False),
    ],
)
def test_until_must_not_come_before_since(
    since: datetime | None, until: datetime | None, ok: bool
) -> None:
    if ok:
        check_range(since, until)
    else:
        with pytest.raises(ParameterError, match="until: must not be before since"):
            check_range(since, until)


@pytest.mark.parametrize(
    ("loads", "latest", "text"),
    [(0, None, ""), (1, "20261127T1", "1-20261127T1"), (2, "20261127T1", "2-20261127T1")],
)
def test_the_data_version_moves_with_every_load_even_out_of_id_order(
    loads: int, latest: str | None, text: str
) -> None:
    from coursemart.api.queries import version_text

    assert version_text(loads, latest) == text
