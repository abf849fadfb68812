"""The dimension snapshots merged into the warehouse: rows read and checked from the lake,
renames applied in an order the unique names accept, rows absent from a snapshot kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coursemart import model, warehouse
from coursemart.lake import Lake
from coursemart.load.backends import Backend
from coursemart.load.validate import DimensionError, dimension_rows

Rows = list[dict[str, object]]


@dataclass(frozen=True)
class Dimension:
    """A dimension: its snapshot file's name, its lake schema and its warehouse table."""

    name: str
    schema: object
    table: sa.Table

    @property
    def key(self) -> str:
        return str(self.table.primary_key.columns.values()[0].name)

    @property
    def label(self) -> str:
        return next(c.name for c in self.table.columns if c.name != self.key)


DIMENSIONS: Final = (
    Dimension("categories", model.CATEGORIES_SCHEMA, warehouse.categories),
    Dimension("levels", model.LEVELS_SCHEMA, warehouse.levels),
)


def read_snapshots(lake: Lake) -> dict[str, Rows]:
    """The lake's category and level rows, checked (a bad row fails the load, naming it)."""
    return {
        d.name: dimension_rows(
            lake.read_dimension(d.name, d.schema), d.schema, lake.dimension_path(d.name)
        )
        for d in DIMENSIONS
    }


def merge_snapshots(
    connection: Connection, backend: Backend, lake: Lake, snapshots: dict[str, Rows]
) -> None:
    """Upsert each snapshot; names that move between ids (a rename, a swap, a retired name
    reused) first step aside to names of their own, so the unique constraint never sees two
    rows with one name."""
    for dimension in DIMENSIONS:
        rows = snapshots.get(dimension.name)
        if rows:
            path = lake.dimension_path(dimension.name)
            step_aside(connection, dimension, rows, path)
            backend.upsert_dimension(dimension.table, rows)


def step_aside(connection: Connection, dimension: Dimension, rows: Rows, path: str) -> None:
    """Give every row whose name changes a placeholder name, inside the load's transaction."""
    table, key, label = dimension.table, dimension.key, dimension.label
    current = dict(connection.execute(sa.select(table.c[key], table.c[label])).all())
    listed = {row[key] for row in rows}
    holders = {name: ident for ident, name in current.items()}
    moving = [row for row in rows if row[key] in current and current[row[key]] != row[label]]
    for line, row in enumerate(rows, start=2):
        holder = holders.get(row[label])
        if holder is not None and holder != row[key] and holder not in listed:
            raise DimensionError(
                f"{path} line {line}: {label} {row[label]!r} is still held by {key} {holder}, "
                f"which the file no longer lists: list {key} {holder} with another name"
            )
    for row in moving:
        connection.execute(
            table.update()
            .where(table.c[key] == row[key])
            .values({label: f"~renaming {dimension.name} {row[key]}"})
        )
