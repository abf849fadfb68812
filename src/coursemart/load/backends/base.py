"""What every warehouse backend offers the load frame: a lock, a transaction, merges.

Each database has a file of its own in this package; the generic path here goes through
SQLAlchemy and each backend replaces what it does faster.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coursemart import warehouse
from coursemart.errors import CoursemartError
from coursemart.search import search_names
from coursemart.warehouse.ordering import by_code_point

#: The course columns of the lake.
COURSE_COLUMNS: Final = ("course_id", "course_name", "category_id", "level_id", "start_date")
#: The columns a course row has in the warehouse: the lake's, the name folded for search, and
#: its batch (row lineage).
STORED_COLUMNS: Final = (*COURSE_COLUMNS, "search_name", "batch_id")
#: What a merge may change, ``batch_id`` last (MySQL applies updates left to right).
UPDATED_COLUMNS: Final = STORED_COLUMNS[1:]
#: The stored columns as SQL lists them, and as many DB-API placeholders.
COLUMN_LIST: Final = ", ".join(STORED_COLUMNS)
QMARKS: Final = ", ".join("?" * len(STORED_COLUMNS))
FORMATS: Final = ", ".join(["%s"] * len(STORED_COLUMNS))
LOCK_NAME: Final = "coursemart-load"
#: The lock a follower (``coursemart load --follow``) holds for its whole life.
FOLLOW_LOCK_NAME: Final = "coursemart-follow"
ROWS_PER_STATEMENT: Final = 10_000


class LockBusyError(CoursemartError):
    """Another load holds the warehouse's load lock."""

    exit_code = 3


def busy(url: str, waited: float) -> LockBusyError:
    """The error for a load that waited ``waited`` seconds for another one."""
    return LockBusyError(
        f"another coursemart load is running on {url} (waited {waited:.0f} s): try again "
        "when it has finished, or wait longer with --wait SECONDS (COURSEMART_LOAD_WAIT)"
    )


def naive_utc(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """UTC timestamps without their zone: they format 30x faster than zoned ones."""
    return column.cast(pa.timestamp("us"))


def text_timestamps(column: pa.ChunkedArray | pa.Array) -> list[str]:
    """UTC timestamps as ``YYYY-MM-DD HH:MM:SS.ffffff``, SQLAlchemy's own text format."""
    texts: list[str] = naive_utc(column).cast(pa.string()).to_pylist()
    return texts


def with_lineage(rows: pa.Table, batch_id: str) -> pa.Table:
    """Validated course rows as the warehouse keeps them: with the name folded for search and
    the id of the batch they came from."""
    stored = rows.select(COURSE_COLUMNS).append_column(
        "search_name", search_names(rows["course_name"])
    )
    return stored.append_column("batch_id", pa.array([batch_id] * rows.num_rows, pa.string()))


def row_tuples(table: pa.Table) -> list[tuple[Any, ...]]:
    """Stored course rows as DB-API parameter tuples, timestamps as text."""
    columns = [
        text_timestamps(table[name]) if name == "start_date" else table[name].to_pylist()
        for name in STORED_COLUMNS
    ]
    return list(zip(*columns, strict=True))


class Backend:
    """The generic path, through SQLAlchemy; subclasses replace what they do faster."""

    dialects: ClassVar[tuple[str, ...]] = ()

    def __init__(self, connection: Connection, display_url: str) -> None:
        self.connection = connection
        self.display_url = display_url
        self.max_id: int | None = None

    def split_fresh(self, rows: pa.Table) -> tuple[pa.Table, pa.Table]:
        """(rows whose id is above every id in ``courses``, the others).

        Fresh rows cannot conflict (duplicates inside a batch are refused beforehand), so they
        can take a plain insert or COPY instead of an upsert.
        """
        if self.max_id is None:
            self.max_id = self.largest_course_id()
        fresh = pc.greater(rows["course_id"], pa.scalar(self.max_id, pa.int64()))
        return rows.filter(fresh), rows.filter(pc.invert(fresh))

    def largest_course_id(self) -> int:
        """The largest ``course_id`` in the warehouse (0 when empty)."""
        largest = sa.select(sa.func.coalesce(sa.func.max(warehouse.courses.c.course_id), 0))
        return int(self.connection.execute(largest).scalar_one())

    # locking ------------------------------------------------------------------------------
    def lock(self, wait: float) -> None:
        """Take the one-loader-at-a-time lock, waiting up to ``wait`` seconds."""

    def unlock(self) -> None:
        """Release the lock taken by :meth:`lock`."""

    def hold_follow_lock(self) -> bool:
        """Take the one-follower-per-warehouse lock on this connection, for as long as it is
        open; False when another follower holds it."""
        raise CoursemartError(
            f"{self.connection.dialect.name} warehouses cannot be followed yet: run "
            "`coursemart load` on a schedule instead"
        )

    def begin(self) -> None:
        """Open the load's transaction."""
        self.connection.begin()

    # rows ---------------------------------------------------------------------------------
    def upsert_dimension(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Merge dimension rows on their primary key; the table is never emptied or dropped."""
        key = table.primary_key.columns.values()[0]
        for row in rows:
            updated = self.connection.execute(
                table.update().where(key == row[key.name]).values(**row)
            ).rowcount
            if not updated:
                self.connection.execute(table.insert().values(**row))

    def before_bulk_write(self) -> None:
        """Called before course rows are written in the load's transaction."""

    def write_courses(self, rows: pa.Table) -> None:
        """Write stored course rows (:func:`with_lineage`) of the current batch; where a course
        exists, the row of the greater batch id wins."""
        raise NotImplementedError

    def update_extras(self, batch_id: str, rows: pa.Table) -> None:
        """Set the extra columns (those the lake's table gained) of the rows ``batch_id`` won:
        ``rows`` holds ``course_id`` then those columns."""
        from coursemart.warehouse.columns import kind, sql_type

        names = rows.column_names[1:]  # checked names (warehouse/columns.py): safe unquoted
        assignments = ", ".join(f"{name} = :extra_{name}" for name in names)
        statement = sa.text(
            f"UPDATE courses SET {assignments} "
            "WHERE course_id = :extra_course_id AND batch_id = :extra_batch_id"
        ).bindparams(  # typed, so that each driver gets decimals and instants in its own form
            *(
                sa.bindparam(f"extra_{name}", type_=sql_type(family))
                for name in names
                if (family := kind(rows.schema.field(name).type)) is not None
            )
        )
        columns = {name: rows[name].to_pylist() for name in rows.column_names}
        for offset in range(0, rows.num_rows, ROWS_PER_STATEMENT):
            chunk = [
                {
                    "extra_course_id": columns["course_id"][index],
                    "extra_batch_id": batch_id,
                    **{f"extra_{name}": columns[name][index] for name in names},
                }
                for index in range(offset, min(offset + ROWS_PER_STATEMENT, rows.num_rows))
            ]
            self.connection.execute(statement, chunk)

    def remove_courses(self, rows: pa.Table) -> int:
        """Remove the courses the lake deleted. Each row (``course_id``, ``batch_id``) removes its
        course unless the warehouse holds it from a greater batch (a later row replaced the
        deleted one); returns how many courses were removed."""
        table = warehouse.courses
        statement = table.delete().where(
            table.c.course_id == sa.bindparam("removed_id"),
            by_code_point(table.c.batch_id) <= by_code_point(sa.bindparam("removed_batch")),
        )
        removed = 0
        ids, batches = rows["course_id"].to_pylist(), rows["batch_id"].to_pylist()
        for offset in range(0, rows.num_rows, ROWS_PER_STATEMENT):
            chunk = [
                {"removed_id": course_id, "removed_batch": batch_id}
                for course_id, batch_id in zip(
                    ids[offset : offset + ROWS_PER_STATEMENT],
                    batches[offset : offset + ROWS_PER_STATEMENT],
                    strict=True,
                )
            ]
            result = self.connection.execute(statement, chunk)
            removed += max(int(result.rowcount), 0)
        return removed

    def after_commit(self, rows_loaded: int) -> None:
        """Once the load has committed ``rows_loaded`` rows: upkeep outside its transaction."""

    def merge_courses(self) -> None:
        """Finish the current batch: move staged rows into ``courses``."""
        self.max_id = None  # the next batch may start above the ids this one added
