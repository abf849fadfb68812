"""Columns the lake's table gained after coursemart made it (additive schema evolution).

A column another writer (or coursemart) added to the courses table through Delta's schema merge
is added to ``courses`` and to the view on every database, nullable, by idempotent DDL; its lake
type is kept in ``coursemart_columns`` so that a later change of type, or the column's
disappearance from the table, is refused by name before anything is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coursemart.errors import LakeError
from coursemart.warehouse.dialects import dialect_for
from coursemart.warehouse.schema import (
    VIEW_NAME,
    Timestamp,
    courses,
    extra_columns_table,
    view_ddl,
)

#: A column name every database takes unquoted, and that is not one of coursemart's own.
NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
RESERVED: Final = frozenset({*courses.c.keys(), "category_name", "level_name", "reason"})


@dataclass(frozen=True)
class Extra:
    """A column of the lake's table beyond the catalog's own: its name and lake type."""

    name: str
    lake_type: str


def kind(arrow_type: pa.DataType) -> str | None:
    """The family a lake type belongs to (what decides the warehouse type), or None."""
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_date(arrow_type):
        return "date"
    return None


def sql_type(family: str) -> sa.types.TypeEngine[object]:
    """The warehouse type of a lake type family."""
    if family.startswith("decimal("):
        precision, scale = (int(part) for part in family[8:-1].split(","))
        return sa.Numeric(precision, scale)  # type: ignore[return-value]
    types: dict[str, sa.types.TypeEngine[object]] = {
        "boolean": sa.Boolean(),  # type: ignore[dict-item]
        "integer": sa.BigInteger(),  # type: ignore[dict-item]
        "float": sa.Float(53),  # type: ignore[dict-item]
        "text": sa.UnicodeText(),  # type: ignore[dict-item]
        "timestamp": Timestamp,  # type: ignore[dict-item]
        "date": sa.Date(),  # type: ignore[dict-item]
    }
    return types[family]


def lake_extras(schema: pa.Schema, core: set[str]) -> list[Extra]:
    """The table's columns beyond ``core``, checked: each must have a name every database takes
    and a type coursemart can keep; otherwise refused by name."""
    extras = []
    for field in schema:
        if field.name in core:
            continue
        family = kind(field.type)
        if not NAME.fullmatch(field.name) or field.name in RESERVED:
            raise LakeError(
                f"the lake's table has a column {field.name!r} whose name the warehouse cannot "
                "take (lower-case letters, digits and _, at most 63, not one of coursemart's "
                "own): nothing loaded; rename it in the table"
            )
        if family is None:
            raise LakeError(
                f"the lake's table has a column {field.name} of type {field.type}, which the "
                "warehouse cannot hold: nothing loaded; cast it to a number, text or time"
            )
        extras.append(Extra(field.name, family))
    return extras


def known_extras(connection: Connection) -> list[Extra]:
    """The extra columns the warehouse already has, oldest first."""
    table = extra_columns_table
    rows = connection.execute(
        sa.select(table.c.column_name, table.c.lake_type).order_by(table.c.added_at)
    )
    return [Extra(str(name), str(family)) for name, family in rows]


def refusals(known: list[Extra], found: list[Extra]) -> list[str]:
    """How the table's extra columns break the warehouse's: a column gone or retyped."""
    present = {extra.name: extra.lake_type for extra in found}
    problems = []
    for extra in known:
        if extra.name not in present:
            problems.append(f"column {extra.name} disappeared from the lake's table")
        elif present[extra.name] != extra.lake_type:
            problems.append(
                f"column {extra.name} changed type from {extra.lake_type} to {present[extra.name]}"
            )
    return problems


def check_extras(connection: Connection, found: list[Extra]) -> None:
    """Refuse, naming the column, a table whose extra columns dropped or changed one the
    warehouse already holds."""
    problems = refusals(known_extras(connection), found)
    if problems:
        raise LakeError(
            "; ".join(problems)
            + ": nothing loaded (coursemart adds columns, never drops or retypes one; restore "
            "the column in the table, or load into a new warehouse)"
        )


def add_extras(connection: Connection, found: list[Extra]) -> list[str]:
    """Add the table's new extra columns to ``courses`` and the view; returns their names.
    Running it again with the same columns changes nothing."""
    known = {extra.name for extra in known_extras(connection)}
    added = [extra for extra in found if extra.name not in known]
    if not added:
        return []
    add = dialect_for(connection.dialect.name).add_column
    present = {column["name"] for column in sa.inspect(connection).get_columns("courses")}
    for extra in added:
        if extra.name not in present:
            kind_sql = sql_type(extra.lake_type).compile(dialect=connection.dialect)
            connection.exec_driver_sql(f"ALTER TABLE courses {add} {extra.name} {kind_sql} NULL")
        connection.execute(
            extra_columns_table.insert().values(
                column_name=extra.name, lake_type=extra.lake_type, added_at=datetime.now(UTC)
            )
        )
    replace_view(connection, [extra.name for extra in [*known_extras(connection)]])
    return [extra.name for extra in added]


def replace_view(connection: Connection, extras: list[str]) -> None:
    """The view again, with the extra columns after the catalog's own."""
    connection.exec_driver_sql(f"DROP VIEW IF EXISTS {VIEW_NAME}")
    connection.exec_driver_sql(view_ddl(connection.dialect, extras))
