"""The API's SQL, as pure functions returning SQLAlchemy Core statements over the view.

Every course query orders by ``(start_date, course_id)``, most recent first or soonest first, and
pages by keyset, so each page is a range scan of the ``(start_date desc, course_id desc)`` index
(read backwards for the ascending order) whatever the page's depth.

A listing's SQL depends only on its :class:`Shape` (which conditions it has, its direction) and its
limit; the values are named bind parameters (:data:`PARAMETERS`), so the text is compiled once per
shape and executed with the driver's own parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import sqlalchemy as sa

from coursemart import search, warehouse
from coursemart.api.pagination import Cursor
from coursemart.warehouse.dialects import dialect_for
from coursemart.warehouse.schema import extra_columns_table

#: The view's own columns, in the order the API's rows hold them.
VIEW_COLUMNS: Final = (
    ("course_id", sa.BigInteger()),
    ("course_name", sa.String()),
    ("category_id", sa.Integer()),
    ("category_name", sa.String()),
    ("level_id", sa.Integer()),
    ("level_name", sa.String()),
    ("start_date", warehouse.Timestamp),
)


@functools.cache
def listing_view(extras: tuple[str, ...] = ()) -> sa.TableClause:
    """The view as a selectable, with the columns the lake's table gained (``extras``) after its
    own: the queries read the view, never the tables behind it. One object per set of columns,
    so that a statement's conditions and columns name the same table."""
    columns = [sa.column(name, kind) for name, kind in VIEW_COLUMNS]
    return sa.table(warehouse.VIEW_NAME, *columns, *(sa.column(name) for name in extras))


#: The view with the catalog's own columns alone.
view: Final = listing_view()

#: The course table, for what the view does not show: the folded name a search scans. A scan
#: for words chooses its page from this table alone (PostgreSQL's listing index holds every
#: column it reads, so the scan reads no table row), then reads the page's rows from the view.
courses: Final = sa.table(
    "courses",
    sa.column("course_id", sa.BigInteger()),
    sa.column("search_name", sa.String()),
    sa.column("category_id", sa.Integer()),
    sa.column("level_id", sa.Integer()),
    sa.column("start_date", warehouse.Timestamp),
)
#: The bind parameters of a listing, and those among them that hold instants.
PARAMETERS: Final = (
    "category_id",
    "level_id",
    "since",
    "until",
    "cursor_date",
    "cursor_id",
    *search.PARAMETERS,
)
INSTANT_PARAMETERS: Final = frozenset({"since", "until", "cursor_date"})


@dataclass(frozen=True)
class CourseFilter:
    """Which courses a listing shows: ``since <= start_date < until``, instants timezone-aware."""

    category_id: int | None = None
    level_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: Words each of which must start a word of the course's name (folded; see ``search``).
    words: tuple[str, ...] = ()


def bind_instant(moment: datetime, backend: str) -> datetime:
    """An aware instant as the backend's driver wants it: aware, or naive UTC."""
    utc = moment.astimezone(UTC)
    return utc if dialect_for(backend).aware_instants else utc.replace(tzinfo=None)


@dataclass(frozen=True)
class Shape:
    """Which conditions a listing has and its direction: all its SQL text depends on."""

    category: bool = False
    level: bool = False
    since: bool = False
    until: bool = False
    cursor: bool = False
    descending: bool = True
    #: Words searched for by a scan in the listing's order (searches with fewer matches are
    #: answered from memory: see ``matches``).
    words: int = 0

    @classmethod
    def of(cls, course_filter: CourseFilter, *, cursor: bool, descending: bool) -> Shape:
        """The shape of a listing with ``course_filter``."""
        return cls(
            category=course_filter.category_id is not None,
            level=course_filter.level_id is not None,
            since=course_filter.since is not None,
            until=course_filter.until is not None,
            cursor=cursor,
            descending=descending,
            words=len(course_filter.words),
        )


def bind_values(
    course_filter: CourseFilter, cursor: Cursor | None, backend: str = "sqlite"
) -> dict[str, object]:
    """The bind parameters of a listing (instants still aware; see :func:`bind_instant`)."""
    values: dict[str, object] = {
        **search.values(course_filter.words, dialect_for(backend)),
        "category_id": course_filter.category_id,
        "level_id": course_filter.level_id,
        "since": course_filter.since,
        "until": course_filter.until,
    }
    if cursor is not None:
        values["cursor_date"] = cursor.start_date
        values["cursor_id"] = cursor.course_id
    return {name: value for name, value in values.items() if value is not None}


def after(
    backend: str, *, descending: bool = True, rows: sa.TableClause = view
) -> sa.ColumnElement[bool]:
    """Rows strictly after the cursor (``:cursor_date``, ``:cursor_id``) in the listing's order."""
    moment = sa.bindparam("cursor_date", type_=warehouse.Timestamp)
    key = sa.bindparam("cursor_id", type_=sa.BigInteger())
    start_date, course_id = rows.c.start_date, rows.c.course_id
    if dialect_for(backend).row_value_keysets:
        mine, theirs = sa.tuple_(start_date, course_id), sa.tuple_(moment, key)
        return mine < theirs if descending else mine > theirs
    # Spelled so that ``start_date <= x`` (or ``>= x``) alone bounds the index range everywhere.
    if descending:
        return sa.and_(start_date <= moment, sa.or_(start_date < moment, course_id < key))
    return sa.and_(start_date >= moment, sa.or_(start_date > moment, course_id > key))


def where(shape: Shape, rows: sa.TableClause = view) -> list[sa.ColumnElement[bool]]:
    """The filter's conditions on ``rows`` (the view, or ``courses`` for a scan for words), as
    named bind parameters."""
    conditions: list[sa.ColumnElement[bool]] = []
    if shape.words:  # too many matches to keep: each folded name tested in the listing's order
        conditions.extend(search.word_conditions(courses.c.search_name, shape.words))
    if shape.category:
        conditions.append(rows.c.category_id == sa.bindparam("category_id", type_=sa.Integer()))
    if shape.level:
        conditions.append(rows.c.level_id == sa.bindparam("level_id", type_=sa.Integer()))
    if shape.since:
        conditions.append(rows.c.start_date >= sa.bindparam("since", type_=warehouse.Timestamp))
    if shape.until:
        conditions.append(rows.c.start_date < sa.bindparam("until", type_=warehouse.Timestamp))
    return conditions


def in_order(rows: sa.TableClause, *, descending: bool) -> tuple[sa.UnaryExpression[Any], ...]:
    """The listing's order over ``rows``: most recent first, or soonest first."""
    if descending:
        return rows.c.start_date.desc(), rows.c.course_id.desc()
    return rows.c.start_date.asc(), rows.c.course_id.asc()


def recent_courses(
    shape: Shape, *, backend: str, limit: int, extras: tuple[str, ...] = ()
) -> sa.Select[*tuple[Any, ...]]:
    """Up to ``limit`` courses in the shape's order, after the cursor if the shape has one, with
    the view's columns and then ``extras``.

    A scan for words picks the page's ids from ``courses`` in the listing's order (one range of
    its listing index, each folded name tested there), then reads those rows from the view.
    """
    shown = listing_view(extras)
    rows = courses if shape.words else shown
    conditions = where(shape, rows)
    if shape.cursor:
        conditions.append(after(backend, descending=shape.descending, rows=rows))
    order = in_order(rows, descending=shape.descending)
    if rows is shown:
        return sa.select(*shown.c).where(*conditions).order_by(*order).limit(limit)
    ids = sa.select(courses.c.course_id).where(*conditions).order_by(*order).limit(limit)
    page = ids.subquery("page")
    return (
        sa.select(*shown.c)
        .join(page, page.c.course_id == shown.c.course_id)
        .order_by(*in_order(shown, descending=shape.descending))
    )


#: How many of the most recent courses a search's words are first tried on (see :func:`probe`).
PROBE_ROWS: Final = 10_000


def probe(words: int) -> sa.Select[int]:
    """How many of the :data:`PROBE_ROWS` most recent courses have the words (``:word_0`` …):
    a sample of how common they are, read in the listing's order."""
    recent = (
        sa.select(courses.c.search_name)
        .order_by(*in_order(courses, descending=True))
        .limit(PROBE_ROWS)
        .subquery("recent")
    )
    matching = search.word_conditions(recent.c.search_name, words)
    return sa.select(sa.func.count()).select_from(recent).where(*matching)


def by_ids(count: int, extras: tuple[str, ...] = ()) -> sa.Select[*tuple[Any, ...]]:
    """The listing's rows of ``count`` courses (with ``extras``), ids bound as ``:id_0`` …
    (in no order), each after the data version they were read at (see :func:`at_version`)."""
    shown = listing_view(extras)
    ids = [sa.bindparam(f"id_{i}", None, type_=sa.BigInteger()) for i in range(count)]
    return at_version(sa.select(*shown.c).where(shown.c.course_id.in_(ids)))


def at_version(rows: sa.Select[Any]) -> sa.Select[*tuple[Any, ...]]:
    """``rows`` read in one statement with the data version: each row starts with the two parts
    of :func:`version_text`, and one row of ``NULL`` columns stands for no rows at all.

    One statement reads one snapshot on every database, so the version names the data the rows
    come from: a search's page, chosen from matches read at one version, is kept only if its
    rows come from the same one.
    """
    loads = warehouse.loads
    version = (
        sa.select(
            sa.func.count().label("version_loads"),
            sa.func.max(loads.c.load_id).label("version_latest"),
        )
        .where(loads.c.status == "loaded")
        .subquery("data_version")
    )
    found = rows.subquery("found")
    return sa.select(version.c.version_loads, version.c.version_latest, *found.c).select_from(
        version.outerjoin(found, sa.true())
    )


def split_version(rows: Sequence[Any]) -> tuple[str, list[Any]]:
    """The data version and the rows of a statement made by :func:`at_version` (whose rows'
    first own column is never ``NULL``)."""
    loads, latest = rows[0][0], rows[0][1]
    return version_text(int(loads or 0), latest), [row[2:] for row in rows if row[2] is not None]


def categories() -> sa.Select[int, str]:
    """Every category, by id."""
    table = warehouse.categories
    return sa.select(table.c.category_id, table.c.category_name).order_by(table.c.category_id)


def levels() -> sa.Select[int, str]:
    """Every level, by id."""
    table = warehouse.levels
    return sa.select(table.c.level_id, table.c.level_name).order_by(table.c.level_id)


def data_version() -> sa.Select[int, str | None, datetime | None, int]:
    """How many loads changed the warehouse, the latest one's id, when the latest finished, and
    how many columns the lake's table gained (read by :func:`extra_columns` when there are).

    The count only grows, even when loads commit out of their ids' order (two loaders waiting
    on the lock, or clocks that differ between loader hosts), so the version always moves.
    """
    loads = warehouse.loads
    extras = sa.select(sa.func.count()).select_from(extra_columns_table).scalar_subquery()
    return sa.select(
        sa.func.count(), sa.func.max(loads.c.load_id), sa.func.max(loads.c.finished_at), extras
    ).where(loads.c.status == "loaded")


class ExtraColumn(NamedTuple):
    """A column the lake's table gained: its name and lake type family (``integer``, ``text``,
    ``timestamp``, ``decimal(p,s)``…; see ``warehouse.columns``)."""

    name: str
    family: str


def extra_columns() -> sa.Select[str, str]:
    """The columns the lake's table gained, with their lake type family, oldest first."""
    table = extra_columns_table
    return sa.select(table.c.column_name, table.c.lake_type).order_by(
        table.c.added_at, table.c.column_name
    )


def loaded_version(table_id: str) -> sa.Select[int | None]:
    """The greatest version of the lake's table ``table_id`` the warehouse has loaded."""
    versions = warehouse.loaded_versions
    return sa.select(sa.func.max(versions.c.version)).where(versions.c.table_id == table_id)


def version_text(loads: int, latest: str | None) -> str:
    """The data version as text: ``""`` before the first load, else ``<count>-<latest id>``."""
    return f"{loads}-{latest}" if loads and latest else ""
