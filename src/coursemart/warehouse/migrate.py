"""Making a warehouse, and bringing one made by an earlier coursemart up to date: what is
missing is created, what changed is changed once, and running it again changes nothing."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coursemart.warehouse.dialects import dialect_for
from coursemart.warehouse.schema import (
    LISTING_INDEX,
    VIEW_NAME,
    courses,
    loaded_batches,
    metadata,
    view_ddl,
)
from coursemart.warehouse.search_index import ensure_search


def ensure_schema(connection: Connection) -> list[str]:
    """Create the tables, index and view that are missing, and upgrade a warehouse made by an
    earlier version; returns what was created or added.

    Existing objects are left exactly as they are: running it again changes nothing.
    """
    dialect = dialect_for(connection.dialect.name)
    inspector = sa.inspect(connection)
    existing = set(inspector.get_table_names())
    created = [table.name for table in metadata.sorted_tables if table.name not in existing]
    metadata.create_all(connection, checkfirst=True)
    if "courses" in existing:
        created.extend(add_lineage(connection, inspector))
    created.extend(dialect.exact_names(connection, existing))
    created.extend(ensure_search(connection, courses_existed="courses" in existing))
    listing = next(index for index in courses.indexes if index.name == LISTING_INDEX)
    created.extend(dialect.upgrade_listing(connection, listing))
    if VIEW_NAME not in set(inspector.get_view_names()):
        connection.exec_driver_sql(view_ddl(connection.dialect))
        created.append(VIEW_NAME)
    return created


def add_lineage(connection: Connection, inspector: sa.Inspector) -> list[str]:
    """Give ``courses`` of a warehouse made before row lineage its ``batch_id`` column.

    The rows already there take the greatest batch id of the manifest: the earlier loader let
    the latest loaded batch win, so no batch older than that may overwrite them now. Adding a
    column with a constant default is instant on every supported database.
    """
    if "batch_id" in {column["name"] for column in inspector.get_columns("courses")}:
        return []
    loaded = connection.execute(sa.select(loaded_batches.c.batch_id)).scalars()
    latest = max(loaded, default="")  # by code point, as the lake orders batch ids
    column = courses.c.batch_id
    kind = column.type.compile(dialect=connection.dialect)
    default = str(latest).replace("'", "''")
    add = dialect_for(connection.dialect.name).add_column
    connection.exec_driver_sql(
        f"ALTER TABLE courses {add} batch_id {kind} NOT NULL DEFAULT '{default}'"
    )
    inspector.clear_cache()
    return ["courses.batch_id"]
