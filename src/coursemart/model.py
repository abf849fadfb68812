"""The schema of the catalog: Arrow schemas for the lake and the seed dimension rows."""

from __future__ import annotations

from typing import Final

import pyarrow as pa

CATEGORIES: Final[tuple[tuple[int, str], ...]] = (
    (1, "Technology"),
    (2, "Business"),
    (3, "Art"),
    (4, "Science"),
    (5, "Health"),
)
LEVELS: Final[tuple[tuple[int, str], ...]] = (
    (101, "Beginner"),
    (102, "Intermediate"),
    (103, "Advanced"),
)

#: Longest course name the warehouse accepts (the column is VARCHAR of this size).
MAX_NAME_LENGTH: Final = 200
#: Longest category or level name (the columns are VARCHAR of this size).
MAX_DIMENSION_NAME_LENGTH: Final = 100
#: Longest batch or load id the warehouse keeps (the manifest's and lineage columns' size).
MAX_ID_LENGTH: Final = 64

TIMESTAMP: Final = pa.timestamp("us", tz="UTC")

COURSES_SCHEMA: Final = pa.schema(
    [
        pa.field("course_id", pa.int64(), nullable=False),
        pa.field("course_name", pa.string(), nullable=False),
        pa.field("category_id", pa.int32(), nullable=False),
        pa.field("level_id", pa.int32(), nullable=False),
        pa.field("start_date", TIMESTAMP, nullable=False),
    ]
)
CATEGORIES_SCHEMA: Final = pa.schema(
    [
        pa.field("category_id", pa.int32(), nullable=False),
        pa.field("category_name", pa.string(), nullable=False),
    ]
)
LEVELS_SCHEMA: Final = pa.schema(
    [
        pa.field("level_id", pa.int32(), nullable=False),
        pa.field("level_name", pa.string(), nullable=False),
    ]
)


def categories_table() -> pa.Table:
    """The seed categories as an Arrow table."""
    ids, names = zip(*CATEGORIES, strict=True)
    return pa.table({"category_id": list(ids), "category_name": list(names)}, CATEGORIES_SCHEMA)


def levels_table() -> pa.Table:
    """The seed levels as an Arrow table."""
    ids, names = zip(*LEVELS, strict=True)
    return pa.table({"level_id": list(ids), "level_name": list(names)}, LEVELS_SCHEMA)
