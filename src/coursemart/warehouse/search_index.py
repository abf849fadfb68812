"""Search's part of the schema: ``courses.search_name`` (the folded course name) and each
database's own text index over it, kept up to date inside the loader's transaction (their DDL
and queries belong to the dialects: an FTS5 table on SQLite, a GIN index on PostgreSQL, an
InnoDB FULLTEXT index on MariaDB/MySQL, none on SQL Server, where a search reads the column with
``LIKE``).

A warehouse made before search gets the column, filled from the names, and its index; one whose
names an earlier folding made (``coursemart_search`` records the folding) has them folded again,
once (every name read, those that differ written).
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coursemart.search import FOLDING, search_names
from coursemart.warehouse.dialects import dialect_for
from coursemart.warehouse.schema import search_folding

#: Names folded again per statement when a warehouse is brought to a new folding.
BACKFILL_ROWS: Final = 50_000


def ensure_search(connection: Connection, courses_existed: bool) -> list[str]:
    """Add what is missing of search: the column (filled from the names) and the index."""
    dialect = dialect_for(connection.dialect.name)
    created = []
    columns = {column["name"] for column in sa.inspect(connection).get_columns("courses")}
    filled = False
    if "search_name" not in columns:
        kind = sa.UnicodeText().compile(dialect=connection.dialect)
        connection.exec_driver_sql(
            f"ALTER TABLE courses {dialect.add_column} search_name {kind} NOT NULL"
            f"{dialect.text_default}"
        )
        fill(connection)
        created.append("courses.search_name")
        filled = True
    created.extend(ensure_folding(connection, refill=courses_existed and not filled))
    if not dialect.has_text_index(connection):
        dialect.create_text_index(connection, rebuild=courses_existed)
        created.append(dialect.text_index)
    return created


def ensure_folding(connection: Connection, *, refill: bool) -> list[str]:
    """Make the stored folded names those of today's folding (:data:`search.FOLDING`): the
    column compared byte by byte (where the dialect says how), then, when ``refill``, every name
    folded again. Once per folding: the warehouse records it."""
    if connection.execute(sa.select(search_folding.c.folding)).scalar() == FOLDING:
        return []
    prepared = dialect_for(connection.dialect.name).prepare_search_column(connection)
    changed = []  # a new warehouse's column is made so: nothing to report
    if refill:
        rows = fill(connection, changed_only=True)
        changed = [
            *prepared,
            f"courses.search_name (folded again: folding {FOLDING}, {rows:,} rows)",
        ]
    connection.execute(search_folding.delete())
    connection.execute(search_folding.insert().values(folding=FOLDING))
    return changed


def fill(connection: Connection, *, changed_only: bool = False) -> int:
    """Fold every stored name into ``search_name``, in chunks by course id; with
    ``changed_only``, write only the rows whose folded name differs from the one stored (a new
    folding changes few). Returns the rows written."""
    courses = sa.table(
        "courses", sa.column("course_id"), sa.column("course_name"), sa.column("search_name")
    )
    columns = [courses.c.course_id, courses.c.course_name]
    if changed_only:
        columns.append(courses.c.search_name)
    written, after = 0, None
    while True:
        query = sa.select(*columns).order_by(courses.c.course_id)
        if after is not None:
            query = query.where(courses.c.course_id > after)
        rows = connection.execute(query.limit(BACKFILL_ROWS)).all()
        if not rows:
            return written
        names = search_names(pa.array([row[1] for row in rows], pa.string())).to_pylist()
        updates = [
            {"name": name, "id": row[0]}
            for name, row in zip(names, rows, strict=True)
            if not changed_only or name != row[2]
        ]
        if updates:
            connection.execute(
                sa.text("UPDATE courses SET search_name = :name WHERE course_id = :id"), updates
            )
        written += len(updates)
        after = rows[-1][0]
