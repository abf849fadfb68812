"""The API's SQL, as pure functions returning SQLAlchemy Core statements over the view.

Every course query orders by ``start_date desc, course_id desc`` and pages by keyset, so each page
is a range scan of the ``(start_date desc, course_id desc)`` index whatever the page's depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa

from coursemart import warehouse
from coursemart.api.pagination import Cursor

#: The view as a selectable: the queries read the view, never the tables behind it.
view: Final = sa.table(
    warehouse.VIEW_NAME,
    sa.column("course_id", sa.BigInteger()),
    sa.column("course_name", sa.String()),
    sa.column("category_id", sa.Integer()),
    sa.column("category_name", sa.String()),
    sa.column("level_id", sa.Integer()),
    sa.column("level_name", sa.String()),
    sa.column("start_date", warehouse.Timestamp),
)

#: Backends whose drivers take timezone-aware datetimes; the others store naive UTC.
AWARE_BACKENDS: Final = frozenset({"postgresql", "mssql"})
#: Backends that use a row-value comparison ``(a, b) < (x, y)`` as an index range.
ROW_VALUE_BACKENDS: Final = frozenset({"sqlite", "postgresql"})


@dataclass(frozen=True)
class CourseFilter:
    """Which courses a listing shows: ``since <= start_date < until``, instants timezone-aware."""

    category_id: int | None = None
    level_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def bind_instant(moment: datetime, backend: str) -> datetime:
    """An aware instant as the backend's driver wants it: aware, or naive UTC."""
    utc = moment.astimezone(UTC)
    return utc if backend in AWARE_BACKENDS else utc.replace(tzinfo=None)


def after(cursor: Cursor, backend: str) -> sa.ColumnElement[bool]:
    """Rows strictly after ``cursor`` in ``start_date desc, course_id desc`` order."""
    moment = bind_instant(cursor.start_date, backend)
    start_date, course_id = view.c.start_date, view.c.course_id
    if backend in ROW_VALUE_BACKENDS:
        return sa.tuple_(start_date, course_id) < sa.tuple_(
            sa.literal(moment, warehouse.Timestamp), sa.literal(cursor.course_id, sa.BigInteger())
        )
    # Spelled so that ``start_date <= x`` alone bounds the index range on every backend.
    return sa.and_(
        start_date <= moment,
        sa.or_(start_date < moment, course_id < cursor.course_id),
    )


def where(course_filter: CourseFilter, backend: str) -> list[sa.ColumnElement[bool]]:
    """The filter's conditions on the view."""
    conditions: list[sa.ColumnElement[bool]] = []
    if course_filter.category_id is not None:
        conditions.append(view.c.category_id == course_filter.category_id)
    if course_filter.level_id is not None:
        conditions.append(view.c.level_id == course_filter.level_id)
    if course_filter.since is not None:
        conditions.append(view.c.start_date >= bind_instant(course_filter.since, backend))
    if course_filter.until is not None:
        conditions.append(view.c.start_date < bind_instant(course_filter.until, backend))
    return conditions


def recent_courses(
    course_filter: CourseFilter, *, backend: str, limit: int, cursor: Cursor | None = None
) -> sa.Select[*tuple[Any, ...]]:
    """Up to ``limit`` courses, most recent ``start_date`` first, after ``cursor`` if given."""
    conditions = where(course_filter, backend)
    if cursor is not None:
        conditions.append(after(cursor, backend))
    return (
        sa.select(*view.c)
        .where(*conditions)
        .order_by(view.c.start_date.desc(), view.c.course_id.desc())
        .limit(limit)
    )


def categories() -> sa.Select[int, str]:
    """Every category, by id."""
    table = warehouse.categories
    return sa.select(table.c.category_id, table.c.category_name).order_by(table.c.category_id)


def levels() -> sa.Select[int, str]:
    """Every level, by id."""
    table = warehouse.levels
    return sa.select(table.c.level_id, table.c.level_name).order_by(table.c.level_id)


def data_version() -> sa.Select[int, str | None]:
    """How many loads changed the warehouse, and the latest one's id.

    The count only grows, even when loads commit out of their ids' order (two loaders waiting
    on the lock, or clocks that differ between loader hosts), so the version always moves.
    """
    loads = warehouse.loads
    return sa.select(sa.func.count(), sa.func.max(loads.c.load_id)).where(
        loads.c.status == "loaded"
    )


def version_text(loads: int, latest: str | None) -> str:
    """The data version as text: ``""`` before the first load, else ``<count>-<latest id>``."""
    return f"{loads}-{latest}" if loads and latest else ""
