"""Answers as JSON bytes, built once per data version and query: orjson over plain rows, no
response models on the way (those only document the answers, in the OpenAPI document)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

import orjson

from coursemart.api.catalog import CourseRow, as_utc, instant
from coursemart.api.pagination import Cursor, encode_cursor, split_page
from coursemart.api.queries import ExtraColumn

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


def courses(rows: Sequence[CourseRow], extras: Sequence[ExtraColumn] = ()) -> list[dict[str, Any]]:
    """Rows of the view as the API's course objects: the keys are :data:`COLUMNS`, then the
    ``extras`` the rows hold after them (columns the lake's table gained)."""
    found = [
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
    for position, extra in enumerate(extras, start=len(COLUMNS)):
        convert = extra_value(extra.family)
        for course, row in zip(found, rows, strict=True):
            value = row[position]
            course[extra.name] = None if value is None else convert(value)
    return found


def extra_value(family: str) -> Callable[[Any], Any]:
    """How a driver's value of an extra column of ``family`` becomes JSON: booleans as
    booleans (SQLite and MariaDB give 0 and 1), decimals as numbers, instants in UTC."""
    if family == "boolean":
        return bool
    if family.startswith("decimal") or family == "float":
        return float
    if family == "timestamp":
        return instant
    return lambda value: value


class Rendered(NamedTuple):
    """An answer's JSON body, the courses in it, and the next page's cursor, if any."""

    body: bytes
    rows: int = 0
    next_cursor: str | None = None


def course_page(
    rows: Sequence[CourseRow],
    limit: int,
    *,
    descending: bool,
    cursor_key: bytes,
    extras: Sequence[ExtraColumn] = (),
) -> Rendered:
    """``{"data", "next_cursor"}`` from the ``limit + 1`` rows fetched."""
    page, last = split_page(rows, limit)
    following = None
    if last is not None:
        position = Cursor(as_utc(instant(last[6])), last[0], descending)
        following = encode_cursor(position, cursor_key)
    body = dumps({"data": courses(page, extras), "next_cursor": following})
    return Rendered(body, len(page), following)


def envelope(rows: Sequence[CourseRow], limit: int) -> Rendered:
    """The original function's envelope: ``404`` in the body when there are no courses."""
    page = rows[:limit]
    if not page:
        return Rendered(dumps({"message": "No results found", "status_code": 404, "data": []}))
    body = dumps({"message": "successful", "status_code": 200, "data": courses(page)})
    return Rendered(body, len(page))


def course(row: CourseRow | None, extras: Sequence[ExtraColumn] = ()) -> Rendered:
    """One course as its object; no body and no row when there is none."""
    return Rendered(b"") if row is None else Rendered(dumps(courses([row], extras)[0]), 1)


def dimension(id_field: str, name_field: str, pairs: Sequence[tuple[int, str]]) -> Rendered:
    """``{"data": [{id_field: …, name_field: …}, …]}``."""
    return Rendered(dumps({"data": [{id_field: key, name_field: name} for key, name in pairs]}))
