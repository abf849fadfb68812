"""The warehouse: engine creation, tables, the view, and idempotent DDL.

The same SQLAlchemy metadata serves SQLite (the default), PostgreSQL, MariaDB/MySQL and SQL Server.
"""

from __future__ import annotations

import os
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError

from coursemart import model
from coursemart.config import mask_url
from coursemart.errors import InputError

VIEW_NAME: Final = "vw_most_recent_courses"

metadata = sa.MetaData()

# Text is Unicode everywhere: NVARCHAR on SQL Server, utf8mb4 tables on MariaDB/MySQL.

#: Course ids are BIGINT, but on SQLite an ``INTEGER PRIMARY KEY`` is the rowid: far faster.
CourseId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: UTC instants: ``timestamptz`` on PostgreSQL, ``DATETIME(6)`` holding UTC on MariaDB/MySQL,
#: ``DATETIMEOFFSET`` on SQL Server, ISO text on SQLite.
Timestamp = (
    sa.DateTime(timezone=True)
    .with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    .with_variant(mssql.DATETIMEOFFSET(), "mssql")  # type: ignore[no-untyped-call]
)

categories = sa.Table(
    "categories",
    metadata,
    sa.Column("category_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("category_name", sa.Unicode(100), nullable=False, unique=True),
    mysql_charset="utf8mb4",
)
levels = sa.Table(
    "levels",
    metadata,
    sa.Column("level_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("level_name", sa.Unicode(100), nullable=False, unique=True),
    mysql_charset="utf8mb4",
)
courses = sa.Table(
    "courses",
    metadata,
    sa.Column("course_id", CourseId, primary_key=True, autoincrement=False),
    sa.Column("course_name", sa.Unicode(model.MAX_NAME_LENGTH), nullable=False),
    sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.category_id"), nullable=False),
    sa.Column("level_id", sa.Integer, sa.ForeignKey("levels.level_id"), nullable=False),
    sa.Column("start_date", Timestamp, nullable=False),
    mysql_charset="utf8mb4",
)
sa.Index("ix_courses_start_date_course_id", courses.c.start_date.desc(), courses.c.course_id.desc())

#: The manifest: one row per lake batch that has been loaded; the heart of exactly-once.
loaded_batches = sa.Table(
    "coursemart_batches",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("load_id", sa.String(64), nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("rows_loaded", sa.BigInteger, nullable=False),
    sa.Column("rows_rejected", sa.BigInteger, nullable=False),
    sa.Column("since", Timestamp, nullable=True),
    sa.Column("loaded_at", Timestamp, nullable=False),
)

#: Every load, including those that had nothing to do and those that failed.
loads = sa.Table(
    "coursemart_loads",
    metadata,
    sa.Column("load_id", sa.String(64), primary_key=True),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("batches", sa.Integer, nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("rows_loaded", sa.BigInteger, nullable=False),
    sa.Column("rows_rejected", sa.BigInteger, nullable=False),
    sa.Column("since", Timestamp, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
)

#: The view's query; ordering and limits belong to the queries that read it.
view_query = (
    sa.select(
        courses.c.course_id,
        courses.c.course_name,
        courses.c.category_id,
        categories.c.category_name,
        courses.c.level_id,
        levels.c.level_name,
        courses.c.start_date,
    )
    .select_from(courses)
    .join(categories, courses.c.category_id == categories.c.category_id)
    .join(levels, courses.c.level_id == levels.c.level_id)
)


# ---------------------------------------------------------------------------------------------
# Engines

#: Drivers coursemart installs, used when a URL names only the database.
DEFAULT_DRIVERS: Final = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "mssql": "mssql+pyodbc",
}


def normalize_url(url: str) -> URL:
    """Parse a warehouse URL, choosing coursemart's driver when none is named."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InputError(
            f"warehouse URL {mask_url(url)!r} is not a SQLAlchemy URL "
            "(e.g. sqlite:///data/warehouse.db, postgresql://user@host/db)"
        ) from exc
    if "+" not in parsed.drivername and parsed.drivername in DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=DEFAULT_DRIVERS[parsed.drivername])
    return parsed


def dialect_name(url: str) -> str:
    """``sqlite``, ``postgresql``, ``mysql``/``mariadb`` or ``mssql``."""
    return normalize_url(url).get_backend_name()


def create_engine(
    url: str, *, read_only: bool = False, lock_timeout: float = 30.0, **kwargs: Any
) -> Engine:
    """An engine for the warehouse at ``url``.

    SQLite gets WAL (readers never block the loader), foreign keys on, and explicit
    ``BEGIN IMMEDIATE`` transactions so that a writer holds the write lock from its first statement.
    With ``read_only``, SQLite opens with ``mode=ro``.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, read_only=read_only, lock_timeout=lock_timeout, **kwargs)
    if backend in ("mysql", "mariadb"):
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("init_command", "SET time_zone = '+00:00'")
        kwargs["connect_args"] = connect_args
    return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)


def _sqlite_engine(url: URL, *, read_only: bool, lock_timeout: float, **kwargs: Any) -> Engine:
    database = url.database or ""
    if database and database != ":memory:":
        folder = os.path.dirname(os.path.abspath(database))
        if not read_only:
            os.makedirs(folder, exist_ok=True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", lock_timeout)
    connect_args.setdefault("check_same_thread", False)
    if read_only and database and database != ":memory:":
        url = url.set(database=f"file:{os.path.abspath(database)}?mode=ro", query={"uri": "true"})
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # coursemart issues BEGIN itself
        cursor = dbapi_connection.cursor()
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA cache_size=-262144")  # 256 MiB: bulk upserts stay in memory
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


# ---------------------------------------------------------------------------------------------
# DDL


def view_ddl(dialect: sa.Dialect) -> str:
    """``CREATE VIEW vw_most_recent_courses`` for ``dialect``."""
    body = str(view_query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return f"CREATE VIEW {VIEW_NAME} AS {body}"


def ensure_schema(connection: Connection) -> list[str]:
    """Create the tables, index and view that are missing; returns what was created.

    Existing objects are left exactly as they are: running it again changes nothing.
    """
    inspector = sa.inspect(connection)
    existing = set(inspector.get_table_names())
    created = [table.name for table in metadata.sorted_tables if table.name not in existing]
    metadata.create_all(connection, checkfirst=True)
    if VIEW_NAME not in set(inspector.get_view_names()):
        connection.exec_driver_sql(view_ddl(connection.dialect))
        created.append(VIEW_NAME)
    return created
