"""PostgreSQL: timezone-aware instants, row-value keysets, a GIN index for search, and a
listing index that holds what a search tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from coursemart.warehouse.dialects.base import Dialect, jdbc_credentials

#: How often (milliseconds) a PostgreSQL backend checks, while a statement runs, that its client
#: is still connected (PostgreSQL 14+). When a reader or a loader is stopped or killed in the
#: middle of a statement, the server ends that statement within this time instead of running it
#: to its end for nobody, and a killed loader's load lock is released with it.
CLIENT_CHECK_MS: Final = 1000
#: Milliseconds a read waits for a table lock (a first load into an empty ``courses`` holds one
#: from its first row to its commit) before the API answers 503 with Retry-After.
READ_LOCK_TIMEOUT_MS: Final = 2000
#: Memory for one sort or bitmap of a read (a search's matches among 10^8 courses).
READ_WORK_MEM: Final = "64MB"
#: The text index: a GIN index over the folded names' words.
TEXT_INDEX: Final = "ix_courses_search"
TEXT_DOCUMENT: Final = "to_tsvector('simple', search_name)"


def check_client_connection(execute: Callable[[str, tuple[str]], object]) -> None:
    """Through ``execute`` (a cursor's, or a connection's ``exec_driver_sql``): end this
    session's statements once its client is gone (see :data:`CLIENT_CHECK_MS`; older servers
    have no such setting and are left as they are)."""
    execute(
        "SELECT set_config('client_connection_check_interval', %s, false) "
        "WHERE current_setting('server_version_num')::int >= 140000",
        (f"{CLIENT_CHECK_MS}ms",),
    )


class PostgreSQL(Dialect):
    names = ("postgresql",)
    driver_extra = "postgres"
    aware_instants = True
    row_value_keysets = True
    executors_copy = True
    connect_timeout_argument = "connect_timeout"
    code_point_format = '{} COLLATE "C"'
    courses_estimate = "SELECT GREATEST(reltuples, 0) FROM pg_class WHERE oid = 'courses'::regclass"
    #: A scan for words reads the listing index in order, never the whole table or a bitmap of
    #: it. The planner has no statistics for a LIKE on the folded names and, right after a load,
    #: before autovacuum has marked the new pages all-visible, prices that index-only scan above
    #: the others (2M courses, half of them just loaded: a sequential scan took 143 ms for a
    #: page, a bitmap scan 179 ms, the index-only scan 5 ms).
    scan_in_order_setup = (
        "SELECT set_config('enable_seqscan', 'off', true), "
        "set_config('enable_bitmapscan', 'off', true)"
    )
    text_index = TEXT_INDEX

    def reader(self, engine: Engine) -> Engine:
        sa.event.listen(engine, "connect", _reader_session)
        return engine.execution_options(postgresql_readonly=True)

    def upgrade_listing(self, connection: Connection, index: sa.Index) -> list[str]:
        """Make the listing ``index`` again with the columns a search tests, when a warehouse
        made before had it without them (one index build, inside the transaction)."""
        if listing_index_covers(connection, str(index.name)):
            return []
        connection.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
        index.create(connection)
        included = ", ".join(index.dialect_options["postgresql"]["include"])
        return [f"{index.name} (with {included})"]

    def has_text_index(self, connection: Connection) -> bool:
        found = connection.exec_driver_sql(
            "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = %s",
            (TEXT_INDEX,),
        ).first()
        return found is not None

    def create_text_index(self, connection: Connection, *, rebuild: bool) -> None:
        connection.exec_driver_sql(
            f"CREATE INDEX {TEXT_INDEX} ON courses USING gin ({TEXT_DOCUMENT})"
        )

    def search_text(self, words: tuple[str, ...]) -> str:
        return " & ".join(f"{word}:*" for word in words)

    def matching(self, words: int) -> Any:
        courses = sa.table("courses", sa.column("course_id"))
        condition = sa.text(f"{TEXT_DOCUMENT} @@ to_tsquery('simple', :search)")
        return sa.select(courses.c.course_id).where(condition)

    def jdbc_target(self, url: URL) -> tuple[str, dict[str, str]]:
        host = url.host or "127.0.0.1"
        jdbc = f"jdbc:postgresql://{host}:{url.port or 5432}/{url.database}"
        properties = jdbc_credentials(url)
        properties["driver"] = "org.postgresql.Driver"
        properties["reWriteBatchedInserts"] = "true"
        given = url.query.get("options")
        options = given if isinstance(given, tuple) else () if given is None else (given,)
        for option in " ".join(str(o) for o in options).split():
            if option.startswith("-csearch_path="):
                properties["currentSchema"] = option.split("=", 1)[1]
        return jdbc, properties


def listing_index_covers(connection: Connection, name: str) -> bool:
    """Whether the index ``name`` holds columns besides its keys (the listing's: the columns a
    search tests)."""
    covers = connection.exec_driver_sql(
        "SELECT indnatts > indnkeyatts FROM pg_index WHERE indexrelid = to_regclass(%s)",
        (name,),
    ).scalar()
    return bool(covers)


def _reader_session(dbapi_connection: Any, _: object) -> None:
    """A new reading connection: read-only transactions, UTC instants, a lock wait of at most
    :data:`READ_LOCK_TIMEOUT_MS`, and settings for short reads: no JIT compilation (a quarter
    of a second spent on every search's first read), and memory enough that a search's bitmap
    of matching rows stays exact (lossy, PostgreSQL tested half a million rows again: 1.9 s
    instead of 0.27 s to count 90,000 matches among 10 million courses); and a read stops when
    its connection is gone (:func:`check_client_connection`)."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = {READ_LOCK_TIMEOUT_MS}")
        cursor.execute("SET jit = off")
        cursor.execute(f"SET work_mem = '{READ_WORK_MEM}'")
        cursor.execute("SET default_transaction_read_only = on")
        cursor.execute("SET TIME ZONE 'UTC'")
        check_client_connection(cursor.execute)
    dbapi_connection.commit()
