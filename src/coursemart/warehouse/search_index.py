"""Each database's own text index over ``courses.search_name`` (the folded course name), kept
up to date inside the loader's transaction:

- SQLite: an FTS5 table with the courses as its content, kept by triggers on ``courses``;
- PostgreSQL: a GIN index on ``to_tsvector('simple', search_name)``;
- MariaDB/MySQL: an InnoDB FULLTEXT index (made without stopwords, so "for" and "with" count);
- SQL Server: none (a search reads ``search_name`` with ``LIKE``).

A warehouse made before search gets the column, filled from the names, and its index; one whose
names an earlier folding made (``coursemart_search`` records the folding) has them folded again,
once (every name read, those that differ written). On MariaDB/MySQL the column compares bytes (a
binary collation): their default collation would take ``ı`` for ``i`` and ``ß`` for ``s``,
unlike the folding and the other databases.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coursemart.warehouse import schema

INDEX: Final = "ix_courses_search"
FTS_TABLE: Final = "courses_search"
BACKFILL_ROWS: Final = 50_000

SQLITE_FTS: Final = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(search_name, content='courses', "
    "content_rowid='course_id', tokenize='unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER {FTS_TABLE}_insert AFTER INSERT ON courses BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, search_name) VALUES (new.course_id, new.search_name); END",
    f"CREATE TRIGGER {FTS_TABLE}_delete AFTER DELETE ON courses BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_name) "
    "VALUES ('delete', old.course_id, old.search_name); END",
    f"CREATE TRIGGER {FTS_TABLE}_update AFTER UPDATE OF search_name ON courses BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_name) "
    "VALUES ('delete', old.course_id, old.search_name); "
    f"INSERT INTO {FTS_TABLE}(rowid, search_name) VALUES (new.course_id, new.search_name); END",
)


def ensure_search(connection: Connection, courses_existed: bool) -> list[str]:
    """Add what is missing of search: the column (filled from the names) and the index."""
    created = []
    columns = {column["name"] for column in sa.inspect(connection).get_columns("courses")}
    filled = False
    if "search_name" not in columns:
        add_column(connection)
        fill(connection)
        created.append("courses.search_name")
        filled = True
    created.extend(ensure_folding(connection, refill=courses_existed and not filled))
    if not has_index(connection):
        create_index(connection, rebuild=courses_existed)
        created.append(FTS_TABLE if connection.dialect.name == "sqlite" else INDEX)
    if connection.dialect.name == "postgresql" and not listing_index_covers(connection):
        cover_listing(connection)
        created.append(f"{schema.LISTING_INDEX} (with {', '.join(schema.LISTING_INCLUDES)})")
    return created


def listing_index_covers(connection: Connection) -> bool:
    """Whether PostgreSQL's listing index holds the columns a search tests."""
    covers = connection.exec_driver_sql(
        "SELECT indnatts > indnkeyatts FROM pg_index WHERE indexrelid = to_regclass(%s)",
        (schema.LISTING_INDEX,),
    ).scalar()
    return bool(covers)


def cover_listing(connection: Connection) -> None:
    """Make PostgreSQL's listing index again, with the columns a search tests (a warehouse made
    before it had them: one index build over the rows there, inside the transaction)."""
    connection.exec_driver_sql(f"DROP INDEX IF EXISTS {schema.LISTING_INDEX}")
    index = next(i for i in schema.courses.indexes if i.name == schema.LISTING_INDEX)
    index.create(connection)


def add_column(connection: Connection) -> None:
    kind = sa.UnicodeText().compile(dialect=connection.dialect)
    add = "ADD" if connection.dialect.name == "mssql" else "ADD COLUMN"
    default = "" if connection.dialect.name in ("mysql", "mariadb") else " DEFAULT ''"
    connection.exec_driver_sql(f"ALTER TABLE courses {add} search_name {kind} NOT NULL{default}")


def ensure_folding(connection: Connection, *, refill: bool) -> list[str]:
    """Make the stored folded names those of today's folding (:data:`search.FOLDING`): on
    MariaDB/MySQL the column's binary collation, then, when ``refill``, every name folded again.
    Once per folding: the warehouse records it."""
    from coursemart.search import FOLDING

    record = schema.search_folding
    if connection.execute(sa.select(record.c.folding)).scalar() == FOLDING:
        return []
    changed = []
    if connection.dialect.name in ("mysql", "mariadb"):
        version = str(connection.exec_driver_sql("SELECT VERSION()").scalar())
        collation = schema.binary_collation(version)
        kind = sa.UnicodeText().compile(dialect=connection.dialect)
        # The change rebuilds the table's FULLTEXT index, with the session's stopwords.
        connection.exec_driver_sql("SET SESSION innodb_ft_enable_stopword = OFF")
        connection.exec_driver_sql(
            f"ALTER TABLE courses MODIFY search_name {kind} "
            f"CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL"
        )
        if refill:
            changed.append(f"courses.search_name ({collation})")
    if refill:
        rows = fill(connection, changed_only=True)
        changed.append(f"courses.search_name (folded again: folding {FOLDING}, {rows:,} rows)")
    connection.execute(record.delete())
    connection.execute(record.insert().values(folding=FOLDING))
    return changed


def fill(connection: Connection, *, changed_only: bool = False) -> int:
    """Fold every stored name into ``search_name``, in chunks by course id; with
    ``changed_only``, write only the rows whose folded name differs from the one stored (a new
    folding changes few). Returns the rows written."""
    from coursemart.search import search_names

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


def has_index(connection: Connection) -> bool:
    dialect = connection.dialect.name
    if dialect == "sqlite":
        found = connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE name = ?", (FTS_TABLE,)
        ).first()
        return found is not None
    if dialect == "mssql":
        return True  # nothing to make
    names = {index["name"] for index in sa.inspect(connection).get_indexes("courses")}
    if dialect == "postgresql":
        found = connection.exec_driver_sql(
            "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = %s",
            (INDEX,),
        ).first()
        return found is not None
    return INDEX in names


def create_index(connection: Connection, *, rebuild: bool) -> None:
    dialect = connection.dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_FTS:
            connection.exec_driver_sql(statement)
        if rebuild:  # index the rows already there
            connection.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
    elif dialect == "postgresql":
        connection.exec_driver_sql(
            f"CREATE INDEX {INDEX} ON courses USING gin (to_tsvector('simple', search_name))"
        )
    elif dialect in ("mysql", "mariadb"):
        connection.exec_driver_sql("SET SESSION innodb_ft_enable_stopword = OFF")
        connection.exec_driver_sql(f"ALTER TABLE courses ADD FULLTEXT INDEX {INDEX} (search_name)")
