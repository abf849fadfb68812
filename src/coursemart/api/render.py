"""Answers as JSON bytes, built once per data version and query: orjson over plain rows, no
response models on the way (those only document the answers, in the OpenAPI document)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple

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


class Rendered(NamedTuple):
    """An answer's JSON body, the courses in it, and the next page's cursor, if any."""

    body: bytes
    rows: int = 0
    next_cursor: str | None = None


def course_page(
    rows: Sequence[CourseRow], limit: int, *, descending: bool, cursor_key: bytes
) -> Rendered:
    """``{"data", "next_cursor"}`` from the ``limit + 1`` rows fetched."""
    page, last = split_page(rows, limit)
    following = None
    if last is not None:
        position = Cursor(as_utc(instant(last[6])), last[0], descending)
        following = encode_cursor(position, cursor_key)
    return Rendered(dumps({"data": courses(page), "next_cursor": following}), len(page), following)


def envelope(rows: Sequence[CourseRow], limit: int) -> Rendered:
    """The original function's envelope: ``404`` in the body when there are no courses."""
    page = rows[:limit]
    if not page:
        return Rendered(dumps({"message": "No results found", "status_code": 404, "data": []}))
    body = dumps({"message": "successful", "status_code": 200, "data": courses(page)})
    return Rendered(body, len(page))


def course(row: CourseRow | None) -> Rendered:
    """One course as its object; no body and no row when there is none."""
    return Rendered(b"") if row is None else Rendered(dumps(courses([row])[0]), 1)


def dimension(id_field: str, name_field: str, pairs: Sequence[tuple[int, str]]) -> Rendered:
    """``{"data": [{id_field: …, name_field: …}, …]}``."""
    return Rendered(dumps({"data": [{id_field: key, name_field: name} for key, name in pairs]}))
