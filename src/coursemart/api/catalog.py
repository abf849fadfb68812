"""The warehouse as the API reads it: one pool per app, read-only transactions, a cached version.

The data version is the id of the latest load that changed the warehouse. It is read at most
about once a second, and it keys every cache above this module: a new load changes it, and so
every ETag and every cached response.

Course listings, the only reads that run for each new request, skip SQLAlchemy's execution layer:
their SQL is compiled once per shape (see ``queries.Shape``) and run on the pooled driver
connection, and the rows come back as plain tuples. The other reads use SQLAlchemy Core.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from coursemart import search, warehouse
from coursemart.api import matches, queries
from coursemart.api.pagination import Cursor

#: One course as the listings read it: the view's columns in order; ``start_date`` is a
#: datetime, aware or naive UTC depending on the driver, or ISO text (SQLite): see
#: :func:`instant`.
CourseRow = tuple[int, str, int, str, int, str, datetime | str]

#: Seconds a data version is trusted before it is read again.
VERSION_TTL: Final = 1.0
#: Tries at a search's page from its kept matches before the scan in order answers it: each try
#: after the first follows a load that committed between reading the matches and the page.
SEARCH_READS: Final = 3


class NeverLoadedError(sa.exc.SQLAlchemyError):
    """The warehouse was never loaded (no file, no tables): a 503 that says what to run."""


@dataclass(frozen=True)
class Dimensions:
    """Categories and levels as ``(id, name)`` pairs, by id."""

    categories: tuple[tuple[int, str], ...]
    levels: tuple[tuple[int, str], ...]


def instant(value: datetime | str) -> datetime:
    """A listing's ``start_date`` as a datetime (SQLite keeps instants as ISO text, naive UTC)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def as_utc(moment: datetime) -> datetime:
    """A driver's datetime as aware UTC (SQLite and MariaDB give naive UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class ListingStatement:
    """A listing's SQL as the driver takes it, and how to order its parameters."""

    sql: str
    #: Parameter names in order for positional drivers (SQLite, pyodbc); ``None``: by name.
    positions: tuple[str, ...] | None
    #: The statement's own parameters (its limit), by name.
    fixed: dict[str, Any]
    #: A setting made for the statement's transaction just before it, if any.
    setup: str | None = None


class Catalog:
    """Reads the view for the API; safe to share between threads."""

    def __init__(
        self,
        url: str | warehouse.Warehouse,
        *,
        version_ttl: float = VERSION_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.warehouse = warehouse.Warehouse.from_url(url)  # parsed once, here
        self.url = self.warehouse.given
        self.backend = self.warehouse.backend
        self.dialect = self.warehouse.dialect
        self.version_ttl = version_ttl
        self._clock = clock
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self._version_lock = threading.Lock()
        self._version: tuple[float, str] | None = None
        self._loaded_at: datetime | None = None
        self._extras: tuple[queries.ExtraColumn, ...] = ()
        self._dimensions: tuple[str, Dimensions] | None = None
        self.statement = functools.lru_cache(maxsize=1024)(self._compile)
        self.by_ids = functools.lru_cache(maxsize=256)(self._compile_by_ids)
        self._matches = matches.MatchesKept()

    # -- the pool ----------------------------------------------------------------------------

    def open(self) -> Engine:
        """Create the engine (its pool) if it does not exist yet; no connection is made."""
        with self._engine_lock:
            if self._engine is None:
                engine = self.warehouse.engine(read_only=True, **self.dialect.reader_options())
                self._engine = self.dialect.reader(engine)
            return self._engine

    def close(self) -> None:
        """Close every pooled connection."""
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection inside a read-only transaction, rolled back when it closes.

        SQLite opens the file read-only; PostgreSQL begins ``READ ONLY`` (the engine's
        ``postgresql_readonly``); MariaDB/MySQL are told ``SET TRANSACTION READ ONLY``.
        """
        engine = self._engine or self.open()
        with engine.connect() as connection:
            self.dialect.begin_read(connection)
            yield connection

    # -- the data version --------------------------------------------------------------------

    def fresh_version(self) -> str | None:
        """The cached data version if it is younger than the TTL, else ``None``."""
        cached = self._version
        if cached is not None and self._clock() - cached[0] < self.version_ttl:
            return cached[1]
        return None

    def version(self) -> str:
        """The data version (``""`` before the first load), read again after the TTL."""
        fresh = self.fresh_version()
        if fresh is not None:
            return fresh
        with self._version_lock:  # one thread reads; the others wait for its answer
            fresh = self.fresh_version()
            if fresh is not None:
                return fresh
            return self.read_version()

    def read_version(self) -> str:
        """Read the data version from the database now, and cache it (with the time the
        latest load finished, :attr:`loaded_at`). A warehouse never loaded is a
        :class:`NeverLoadedError` saying what to run."""
        try:
            with self.reading() as connection:
                loads, latest, finished, extras = connection.execute(queries.data_version()).one()
                value = queries.version_text(int(loads or 0), latest)
                if int(extras or 0) != len(self._extras):  # columns are only ever added
                    self._extras = tuple(
                        queries.ExtraColumn(str(name), str(family))
                        for name, family in connection.execute(queries.extra_columns())
                    )
        except sa.exc.DBAPIError as exc:
            advice = self.warehouse.never_loaded(exc)
            if advice is not None:
                raise NeverLoadedError(advice) from exc
            raise
        self._loaded_at = as_utc(finished) if finished is not None else None
        self._version = (self._clock(), value)
        return value

    @property
    def extras(self) -> tuple[queries.ExtraColumn, ...]:
        """The columns the lake's table gained (each course shows them after its own), as of
        the last version read."""
        return self._extras

    def loaded_version(self, table_id: str) -> int | None:
        """The greatest version of the lake's table ``table_id`` this warehouse has loaded."""
        with self.reading() as connection:
            found = connection.execute(queries.loaded_version(table_id)).scalar()
        return int(found) if found is not None else None

    @property
    def loaded_at(self) -> datetime | None:
        """When the latest load that changed the data finished, as of the last version read."""
        return self._loaded_at

    # -- the data ----------------------------------------------------------------------------

    def cached_dimensions(self, version: str) -> Dimensions | None:
        """Categories and levels as of ``version`` if already read, else ``None``."""
        cached = self._dimensions
        return cached[1] if cached is not None and cached[0] == version else None

    def dimensions(self, version: str) -> Dimensions:
        """Categories and levels as of ``version``, read once per version."""
        cached = self.cached_dimensions(version)
        if cached is not None:
            return cached
        with self.reading() as connection:
            dimensions = Dimensions(
                categories=tuple(
                    (int(key), str(name)) for key, name in connection.execute(queries.categories())
                ),
                levels=tuple(
                    (int(key), str(name)) for key, name in connection.execute(queries.levels())
                ),
            )
        self._dimensions = (version, dimensions)
        return dimensions

    def recent(
        self,
        course_filter: queries.CourseFilter,
        *,
        limit: int,
        cursor: Cursor | None = None,
        descending: bool = True,
        extras: tuple[queries.ExtraColumn, ...] = (),
    ) -> list[CourseRow]:
        """Up to ``limit`` courses after ``cursor``, most recent first (or soonest first), each
        row with the view's columns and then ``extras``."""
        for _ in range(SEARCH_READS if course_filter.words else 0):
            found = self.search_matches(course_filter.words)
            if found is None:
                break
            page = found.page(course_filter, cursor, descending=descending, limit=limit)
            if not page:
                return []
            version, rows = self._by_ids(page, extras)
            if version == found.version:
                return rows
            self.read_version()  # a load committed since the matches were read: read them again
        shape = queries.Shape.of(course_filter, cursor=cursor is not None, descending=descending)
        bound = queries.bind_values(course_filter, cursor, self.backend)
        names = tuple(extra.name for extra in extras)
        return self._run(self.statement(shape, limit, names), bound)

    def search_matches(self, words: tuple[str, ...]) -> matches.Matches | None:
        """The courses matching ``words``, read through the text index once per data version;
        ``None`` when they are too many to keep (see :mod:`coursemart.api.matches`) or the
        index cannot answer (the listing is then scanned in order)."""
        if not self.dialect.indexed:
            return None
        version = self._version[1] if self._version else ""
        return self._matches.get_or_read(version, words, lambda: self._read_matches(words))

    def _read_matches(self, words: tuple[str, ...]) -> matches.Matches | None:
        """Count the matches of ``words`` in the text index; read them if few enough to keep."""
        if self.dialect.courses_estimate and self._surely_too_many(words):
            return None
        ids = search.matching_ids(words, self.dialect)
        count = sa.select(sa.func.count()).select_from(
            ids.limit(matches.MAX_MATCHES + 1).subquery()
        )
        ((many,),) = self._execute(*self._compiled_with_values(count))
        if int(many) > matches.MAX_MATCHES:  # the index alone counts: cheaper than the rows
            return None
        view = queries.view.c
        rows = sa.select(view.start_date, view.course_id, view.category_id, view.level_id)
        read = queries.at_version(rows.where(view.course_id.in_(ids)))
        version, found = queries.split_version(self._execute(*self._compiled_with_values(read)))
        return matches.Matches.of(found, version)

    def _surely_too_many(self, words: tuple[str, ...]) -> bool:
        """Whether ``words`` match more than :data:`matches.SCAN_MATCHES` courses, judged from
        the most recent courses of the listing and the planner's count of courses (PostgreSQL,
        MariaDB/MySQL).

        Counting in the text index reads a table row per match on PostgreSQL (100,001 rows,
        scattered over the table: seconds among 10^8 courses), and InnoDB's FULLTEXT gathers
        every match of a prefix before it counts any (``c*`` matches a third of the catalog);
        the sample reads 10,000 entries of the listing (PostgreSQL's index holds the names).
        """
        sample = queries.probe(len(words)).params(**search.values(words, self.dialect))
        ((hits,),) = self._execute(*self._compiled_with_values(sample))
        ((courses,),) = self._execute(str(self.dialect.courses_estimate), {})
        return int(hits) * float(courses) > matches.SCAN_MATCHES * queries.PROBE_ROWS

    def holds_matches(self, words: tuple[str, ...]) -> bool:
        """Whether the matches of ``words`` are in memory (a page of them is a quick read)."""
        version = self._version[1] if self._version else ""
        return self._matches.get(version, words)[1] is not None

    def course(
        self, course_id: int, extras: tuple[queries.ExtraColumn, ...] = ()
    ) -> CourseRow | None:
        """The listing row of one course (with ``extras``), or ``None`` when there is none."""
        _, rows = self._by_ids([course_id], extras)
        return rows[0] if rows else None

    def _by_ids(
        self, ids: list[int], extras: tuple[queries.ExtraColumn, ...] = ()
    ) -> tuple[str, list[CourseRow]]:
        """The data version and the listing rows of courses ``ids`` (with ``extras``) at that
        version, in the order of ``ids``: one read."""
        values: dict[str, object] = {f"id_{i}": course_id for i, course_id in enumerate(ids)}
        names = tuple(extra.name for extra in extras)
        version, rows = queries.split_version(self._run(self.by_ids(len(ids), names), values))
        position = {course_id: i for i, course_id in enumerate(ids)}
        return version, sorted(rows, key=lambda row: position[row[0]])

    def _run(self, statement: ListingStatement, bound: dict[str, object]) -> list[CourseRow]:
        """A compiled listing with its values, on a pooled driver connection."""
        values = {**statement.fixed, **self._bind(bound)}
        parameters: Any = (
            values
            if statement.positions is None
            else tuple(values[name] for name in statement.positions)
        )
        return self._execute(statement.sql, parameters, statement.setup)

    def _execute(self, sql: str, parameters: Any, setup: str | None = None) -> list[Any]:
        """Run ``sql`` (after ``setup``, in the same transaction) on a pooled driver connection
        and return its rows as tuples."""
        engine = self._engine or self.open()
        connection = engine.raw_connection()
        try:
            cursor_ = connection.cursor()
            try:
                if setup:
                    cursor_.execute(setup)
                cursor_.execute(sql, parameters)
                rows: list[Any] = list(cursor_.fetchall())
            finally:
                cursor_.close()
        except engine.dialect.loaded_dbapi.Error as exc:
            connection.invalidate(exc)  # a fresh connection next time, whatever went wrong
            raise sa.exc.DBAPIError.instance(
                sql, parameters, exc, engine.dialect.loaded_dbapi.Error
            ) from exc
        finally:
            connection.close()
        return rows

    def _bind(self, values: dict[str, object]) -> dict[str, object]:
        """Instants as the driver wants them: aware or naive UTC, then the dialect's own form
        (ISO text on SQLite)."""
        for name in queries.INSTANT_PARAMETERS & values.keys():
            moment = values[name]
            assert isinstance(moment, datetime)
            bound: object = queries.bind_instant(moment, self.backend)
            values[name] = self._instant_processor(bound) if self._instant_processor else bound
        return values

    @functools.cached_property
    def _instant_processor(self) -> Callable[[Any], Any] | None:
        dialect = (self._engine or self.open()).dialect
        return warehouse.Timestamp.dialect_impl(dialect).bind_processor(dialect)

    def _compile(
        self, shape: queries.Shape, limit: int, extras: tuple[str, ...] = ()
    ) -> ListingStatement:
        statement = self._listing_statement(
            queries.recent_courses(shape, backend=self.backend, limit=limit, extras=extras)
        )
        if shape.words and self.dialect.scan_in_order_setup:
            return dataclasses.replace(statement, setup=self.dialect.scan_in_order_setup)
        return statement

    def _compile_by_ids(self, count: int, extras: tuple[str, ...] = ()) -> ListingStatement:
        return self._listing_statement(queries.by_ids(count, extras))

    def _listing_statement(self, statement: sa.Select[Any]) -> ListingStatement:
        """``statement`` compiled for the driver, its own parameters apart from the listing's."""
        compiled = statement.compile(
            dialect=(self._engine or self.open()).dialect,
            compile_kwargs={"render_postcompile": True},
        )
        mine = dict.fromkeys(queries.PARAMETERS)
        fixed = {k: v for k, v in compiled.construct_params(mine).items() if k not in mine}
        positions = tuple(compiled.positiontup) if compiled.positiontup is not None else None
        return ListingStatement(compiled.string, positions, fixed)

    def _compiled_with_values(self, statement: sa.Select[Any]) -> tuple[str, Any]:
        """``statement`` (its values bound) as the driver's SQL and parameters."""
        compiled = statement.compile(
            dialect=(self._engine or self.open()).dialect,
            compile_kwargs={"render_postcompile": True},
        )
        values = compiled.construct_params()
        if compiled.positiontup is None:
            return compiled.string, values
        return compiled.string, tuple(values[name] for name in compiled.positiontup)
