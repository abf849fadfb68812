"""What every database does the same way unless its dialect says otherwise.

A :class:`Dialect` owns what differs between the databases coursemart reads and writes:
engine set-up for writers and readers, a reader's session, capability flags, the text index
(its DDL and its query together, so that each expression is written once), the code-point
order of strings, the planner's count of courses and the JDBC target. Callers ask the dialect
(``Warehouse.dialect``, or :func:`coursemart.warehouse.dialects.dialect_for`); no code outside
this package tests a database's name.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from coursemart.errors import InputError

#: Seconds a reader waits for a database server to accept a connection.
CONNECT_TIMEOUT = 5
#: Connections per reading process. A fixed pool: under a burst, requests wait for a connection
#: rather than open (and close) extra ones, which costs a server far more than the wait.
POOL_SIZE = 20


class Dialect:
    """A database as coursemart uses it; subclasses set what differs."""

    #: SQLAlchemy's names for the database (``Warehouse.backend``).
    names: ClassVar[tuple[str, ...]] = ()
    #: Its driver takes and gives timezone-aware instants (else naive UTC).
    aware_instants: ClassVar[bool] = False
    #: ``(a, b) < (x, y)`` bounds an index range (the listing's keyset).
    row_value_keysets: ClassVar[bool] = False
    #: Reads are quicker in the event loop than handed to a thread (an embedded file).
    inline_reads: ClassVar[bool] = False
    #: The keyword that gives a driver's connection attempt a time limit, if any.
    connect_timeout_argument: ClassVar[str | None] = None
    #: The ``coursemart[…]`` extra that installs the database's driver, if it needs one.
    driver_extra: ClassVar[str | None] = None
    #: The database is a file the URL names (created where a load writes).
    file_database: ClassVar[bool] = False
    #: Spark's executors copy rows into it themselves (with the database's own COPY).
    executors_copy: ClassVar[bool] = False
    #: How ``ALTER TABLE`` adds a column.
    add_column: ClassVar[str] = "ADD COLUMN"
    #: The default a text column added to a table with rows is given (none where text columns
    #: take none).
    text_default: ClassVar[str] = " DEFAULT ''"
    #: How two strings are compared by code point (``{}``: the expression), whatever the
    #: column's collation.
    code_point_format: ClassVar[str] = "{}"
    #: The planner's count of courses (one value), if the database keeps one.
    courses_estimate: ClassVar[str | None] = None
    #: A setting made just before a search's scan in the listing's order, if any.
    scan_in_order_setup: ClassVar[str | None] = None
    #: The name of the text index (or table) over ``courses.search_name``.
    text_index: ClassVar[str] = ""

    @property
    def name(self) -> str:
        return self.names[0]

    # -- engines ---------------------------------------------------------------------------

    def check_url(self, url: URL, shown: str) -> None:
        """Refuse (:class:`InputError`, naming the URL as ``shown``) what the URL asks of the
        driver that it cannot give."""

    def engine(self, url: URL, *, read_only: bool, lock_timeout: float, **kwargs: Any) -> Engine:
        """An engine for the warehouse at ``url`` (``read_only``: a reader's)."""
        return sa.create_engine(url, pool_pre_ping=True, **kwargs)

    def reader_options(self) -> dict[str, Any]:
        """Keyword arguments for a reading process's engine (the API's)."""
        return {
            "connect_args": {"connect_timeout": CONNECT_TIMEOUT},
            "pool_size": POOL_SIZE,
            "max_overflow": 0,
            "pool_recycle": 1800,
        }

    def reader(self, engine: Engine) -> Engine:
        """``engine`` with each new connection set up for short read-only reads."""
        return engine

    def begin_read(self, connection: Connection) -> None:
        """Make the transaction just begun on ``connection`` read-only (where the engine does
        not already)."""

    # -- values ----------------------------------------------------------------------------

    def code_point_order(self, expression: str) -> str:
        """``expression`` (SQL text) compared by code point."""
        return self.code_point_format.format(expression)

    # -- the schema ------------------------------------------------------------------------

    def exact_names(self, connection: Connection, existing: set[str]) -> list[str]:
        """Make dimension names compare byte by byte where the database's collation would not;
        returns what changed in an ``existing`` warehouse."""
        return []

    def prepare_search_column(self, connection: Connection) -> list[str]:
        """Make ``courses.search_name`` compare byte by byte where the database's collation would
        not; returns what changed."""
        return []

    def upgrade_listing(self, connection: Connection, index: sa.Index) -> list[str]:
        """Bring the listing's ``index`` to what reads expect; returns what changed."""
        return []

    # -- search ----------------------------------------------------------------------------

    def has_text_index(self, connection: Connection) -> bool:
        names = {index["name"] for index in sa.inspect(connection).get_indexes("courses")}
        return self.text_index in names

    def create_text_index(self, connection: Connection, *, rebuild: bool) -> None:
        """Make the text index (``rebuild``: over the rows already there)."""

    @property
    def indexed(self) -> bool:
        """Whether a search reads the text index (else it tests every folded name)."""
        return bool(self.text_index)

    def search_text(self, words: tuple[str, ...]) -> str | None:
        """The text index's query for ``words`` (bound as ``:search``)."""
        return None

    def matching(self, words: int) -> Any:
        """``SELECT course_id FROM courses`` matching ``:search`` through the text index (and
        ``:word_0`` …, the exact test, where the index may be looser)."""
        raise NotImplementedError(f"{self.name} has no text index")

    # -- Spark -----------------------------------------------------------------------------

    def jdbc_target(self, url: URL) -> tuple[str, dict[str, str]]:
        """The JDBC URL and connection properties Spark writes with."""
        raise InputError(
            f"the Spark engine loads into PostgreSQL, MariaDB/MySQL or SQL Server, not "
            f"{self.name}: use --engine local"
        )


def jdbc_credentials(url: URL) -> dict[str, str]:
    return {"user": url.username or "", "password": url.password or ""}
