"""Validation rules, as pure functions over Arrow data."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from coursemart import model
from coursemart.load.conform import conform
from coursemart.load.validate import Counts, Rules, check, duplicate_ids, schema_problems

RULES = Rules(categories=frozenset({1, 2, 3, 4, 5}), levels=frozenset({101, 102, 103}))
WHEN = datetime(2026, 3, 1, 9, tzinfo=UTC)


def one_row(**changes: object) -> pa.Table:
    row: dict[str, object] = {
        "course_id": 1,
        "course_name": "Applied Machine Learning with Python",
        "category_id": 1,
        "level_id": 101,
        "start_date": WHEN,
    }
    row.update(changes)
    return conform(pa.Table.from_pylist([row]))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"course_id": None}, "null course_id"),
        ({"course_name": None}, "null course_name"),
        ({"category_id": None}, "null category_id"),
        ({"level_id": None}, "null level_id"),
        ({"start_date": None}, "null start_date"),
        ({"category_id": 9}, "unknown category_id: 9"),
        ({"level_id": 104}, "unknown level_id: 104"),
        (
            {"start_date": datetime(1969, 12, 31, tzinfo=UTC)},
            "impossible start_date: 1969-12-31T00:00:00Z",
        ),
        (
            {"start_date": datetime(2100, 1, 1, tzinfo=UTC)},
            "impossible start_date: 2100-01-01T00:00:00Z",
        ),
        ({"course_name": ""}, "empty course_name"),
        ({"course_name": " \t "}, "empty course_name"),
        ({"course_name": "é" * 200}, None),
        ({"course_name": "é" * 201}, "over-long course_name: 201 characters, at most 200"),
        ({"course_id": None, "category_id": 9}, "null course_id"),
    ],
)
def test_each_rule_gives_its_reason(changes: dict[str, object], reason: str | None) -> None:
    checked = check(one_row(**changes), RULES)

    if reason is None:
        assert (checked.good.num_rows, checked.rejected.num_rows) == (1, 0)
    else:
        assert checked.good.num_rows == 0
        assert checked.rejected["reason"][0].as_py().startswith(reason)


def test_duplicates_are_refused_every_time_they_appear() -> None:
    table = pa.concat_tables([one_row(course_id=7), one_row(course_id=8), one_row(course_id=7)])

    checked = check(table, RULES, duplicates=pa.array([7], pa.int64()))

    assert checked.good["course_id"].to_pylist() == [8]
    assert (
        checked.rejected["reason"].to_pylist() == ["duplicate course_id: 7 twice in the batch"] * 2
    )


def test_good_rows_come_out_in_the_lake_schema() -> None:
    raw = pa.table(
        {
            "course_id": pa.array([1], pa.int32()),
            "course_name": pa.array(["Ceramics"], pa.large_string()),
            "category_id": pa.array([3], pa.int64()),
            "level_id": pa.array([101], pa.int16()),
            "start_date": pa.array([datetime(2026, 3, 1, 9)], pa.timestamp("ms")),
            "extra": ["ignored"],
        }
    )

    checked = check(conform(raw), RULES)

    assert checked.good.schema.equals(model.COURSES_SCHEMA)
    assert checked.good["start_date"][0].as_py() == WHEN


def test_an_id_too_large_for_the_column_is_refused_not_wrapped() -> None:
    raw = one_row().set_column(2, "category_id", pa.array([2**40], pa.int64()))

    checked = check(conform(raw), RULES)

    assert checked.rejected["reason"].to_pylist() == [
        "out-of-range category_id: 1099511627776 is outside -2147483648 to 2147483647"
    ]


@pytest.mark.parametrize(
    ("schema", "problems"),
    [
        (model.COURSES_SCHEMA, []),
        (pa.schema([("course_id", pa.string())]), None),
        (
            pa.schema(
                [
                    ("course_id", pa.int64()),
                    ("course_name", pa.string()),
                    ("category_id", pa.int32()),
                    ("level_id", pa.int32()),
                    ("start_date", pa.string()),
                ]
            ),
            ["column start_date is string, expected timestamp[us, tz=UTC]"],
        ),
    ],
)
def test_schema_problems(schema: pa.Schema, problems: list[str] | None) -> None:
    found = schema_problems(schema)

    if problems is None:
        assert "column course_id is string, expected int64" in found
        assert "missing column course_name" in found
    else:
        assert found == problems


@pytest.mark.parametrize("id_range", [(1, 10), None, (1, 2**40)])
def test_duplicate_ids_across_chunks(id_range: tuple[int, int] | None) -> None:
    chunks = [pa.array([1, 2, 3]), pa.array([4, 4, 5]), pa.array([3, None, 10])]

    assert duplicate_ids(chunks, id_range).to_pylist() == [3, 4]


def test_counts_reconcile_and_group_reasons() -> None:
    counts = Counts()
    counts.add(check(pa.concat_tables([one_row(), one_row(course_id=2, category_id=9)]), RULES))
    counts.add(check(one_row(course_id=3, category_id=8), RULES))

    assert (counts.read, counts.loaded, counts.rejected) == (3, 1, 2)
    assert counts.reasons == {"unknown category_id": 2}


def test_footer_ranges_that_miss_ids_neither_alias_nor_crash_the_duplicate_check() -> None:
    """The range from a file's footer only sizes the check: an id below its minimum (which
    would share a bit with another id) or above its maximum is still checked, by sorting."""
    below = duplicate_ids([pa.array([56], pa.int64()), pa.array([-8], pa.int64())], (0, 63))
    above = duplicate_ids([pa.array([1, 200, 200, 7], pa.int64())], (0, 63))
    beyond = duplicate_ids([pa.array([3, 3], pa.int64())], (2**63 + 1, 2**64 - 1))

    assert below.to_pylist() == []
    assert above.to_pylist() == [200]
    assert beyond.to_pylist() == [3]
