"""Answers as JSON bytes, built once per data version and query: orjson over plain rows, no
response models on the way (those only document the answers, in the OpenAPI document)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson

from coursemart.api.catalog import CourseRow, as_utc, instant
from coursemart.api.pagination import Cursor, encode_cursor, split_page

#: Instants as ISO 8601 in UTC with a ``Z``; naive ones (SQLite, MariaDB) are UTC.
OPTIONS: Final = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
COLUMNS: Final = (
    "course_id",
    "course_name",
    "category_id",
    "category_name",
    "level_id",
    "level_name",
    "start_date",
)


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON."""
    return orjson.dumps(value, option=OPTIONS)


def courses(rows: Sequence[CourseRow]) -> list[dict[str, Any]]:
    """Rows of the view as the API's course objects (the keys are :data:`COLUMNS`)."""
    return [
        {
            "course_id": row[0],
            "course_name": row[1],
            "category_id": row[2],
            "category_name": row[3],
            "level_id": row[4],
            "level_name": row[5],
            "start_date": instant(row[6]),
        }
        for row in rows
    ]


def course_page(
    rows: Sequence[CourseRow], limit: int, *, descending: bool, cursor_key: bytes
) -> tuple[bytes, int]:
    """``{"data", "next_cursor"}`` from the ``limit + 1`` rows fetched, and the courses in it."""
    page, last = split_page(rows, limit)
    following = None
    if last is not None:
        position = Cursor(as_utc(instant(last[6])), last[0], descending)
        following = encode_cursor(position, cursor_key)
    return dumps({"data": courses(page), "next_cursor": following}), len(page)


def envelope(rows: Sequence[CourseRow], limit: int) -> tuple[bytes, int]:
    """The original function's envelope: ``404`` in the body when there are no courses."""
    page = rows[:limit]
    if not page:
        return dumps({"message": "No results found", "status_code": 404, "data": []}), 0
    return dumps({"message": "successful", "status_code": 200, "data": courses(page)}), len(page)


def dimension(id_field: str, name_field: str, pairs: Sequence[tuple[int, str]]) -> bytes:
    """``{"data": [{id_field: …, name_field: …}, …]}``."""
    return dumps({"data": [{id_field: key, name_field: name} for key, name in pairs]})
