"""The warehouse's schema: tables, index and view, the same metadata for every database, and
idempotent DDL.

The same SQLAlchemy metadata serves SQLite (the default), PostgreSQL, MariaDB/MySQL and SQL Server.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql

from coursemart import model

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
    sa.Column(
        "category_name", sa.Unicode(model.MAX_DIMENSION_NAME_LENGTH), nullable=False, unique=True
    ),
    mysql_charset="utf8mb4",
)
levels = sa.Table(
    "levels",
    metadata,
    sa.Column("level_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column(
        "level_name", sa.Unicode(model.MAX_DIMENSION_NAME_LENGTH), nullable=False, unique=True
    ),
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
    # The name folded for search (lower case, no accents, words): each database's text index
    # reads it (warehouse/search_index.py).
    sa.Column("search_name", sa.UnicodeText, nullable=False),
    # Row lineage: the lake batch the row came from. For each course the row of the greatest
    # batch id wins, whatever order batches arrive in.
    sa.Column("batch_id", sa.String(model.MAX_ID_LENGTH), nullable=False),
    mysql_charset="utf8mb4",
)
#: The listing's index. On PostgreSQL it also holds the columns a search and the listing's filters
#: test (an index-only scan then reads no table row per course it passes over).
LISTING_INDEX: Final = "ix_courses_start_date_course_id"
LISTING_INCLUDES: Final = ("search_name", "category_id", "level_id")
sa.Index(
    LISTING_INDEX,
    courses.c.start_date.desc(),
    courses.c.course_id.desc(),
    postgresql_include=list(LISTING_INCLUDES),
)

#: The manifest: one row per lake batch that has been loaded; the heart of exactly-once.
loaded_batches = sa.Table(
    "coursemart_batches",
    metadata,
    sa.Column("batch_id", sa.String(model.MAX_ID_LENGTH), primary_key=True),
    sa.Column("load_id", sa.String(model.MAX_ID_LENGTH), nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("rows_loaded", sa.BigInteger, nullable=False),
    sa.Column("rows_rejected", sa.BigInteger, nullable=False),
    sa.Column("since", Timestamp, nullable=True),
    sa.Column("loaded_at", Timestamp, nullable=False),
)

#: The manifest of the Delta lake: one row per version of the lake's table that has been loaded
#: (exactly-once by version), with the table's id so that another table at the same path is
#: never taken for it.
loaded_versions = sa.Table(
    "coursemart_versions",
    metadata,
    sa.Column("table_id", sa.String(model.MAX_ID_LENGTH), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("load_id", sa.String(model.MAX_ID_LENGTH), nullable=False),
    sa.Column("operation", sa.String(40), nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("rows_loaded", sa.BigInteger, nullable=False),
    sa.Column("rows_rejected", sa.BigInteger, nullable=False),
    sa.Column("rows_cancelled", sa.BigInteger, nullable=False),
    sa.Column("committed_at", Timestamp, nullable=False),
    sa.Column("loaded_at", Timestamp, nullable=False),
)

#: The columns the lake's table gained, as the warehouse added them (warehouse/columns.py).
extra_columns_table = sa.Table(
    "coursemart_columns",
    metadata,
    sa.Column("column_name", sa.String(model.MAX_ID_LENGTH), primary_key=True),
    sa.Column("lake_type", sa.String(40), nullable=False),
    sa.Column("added_at", Timestamp, nullable=False),
)

#: The folding (search.FOLDING) that made the stored ``courses.search_name``: one row.
search_folding = sa.Table(
    "coursemart_search",
    metadata,
    sa.Column("folding", sa.Integer, primary_key=True, autoincrement=False),
)

#: Every load, including those that had nothing to do and those that failed.
loads = sa.Table(
    "coursemart_loads",
    metadata,
    sa.Column("load_id", sa.String(model.MAX_ID_LENGTH), primary_key=True),
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
# DDL


def view_ddl(dialect: sa.Dialect, extras: list[str] | None = None) -> str:
    """``CREATE VIEW vw_most_recent_courses`` for ``dialect``, with the ``extras`` columns of
    ``courses`` (those the lake's table gained) after the catalog's own."""
    query = view_query.add_columns(*(sa.column(name, _selectable=courses) for name in extras or []))
    body = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return f"CREATE VIEW {VIEW_NAME} AS {body}"
