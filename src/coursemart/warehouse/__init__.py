"""The warehouse: a value built once from its URL, and the schema every database shares."""

from coursemart.warehouse.connect import (
    DEFAULT_DRIVERS,
    Warehouse,
    create_engine,
    dialect_name,
    normalize_url,
)
from coursemart.warehouse.schema import (
    VIEW_NAME,
    CourseId,
    Timestamp,
    categories,
    courses,
    ensure_schema,
    levels,
    loaded_batches,
    loaded_versions,
    loads,
    metadata,
    view_ddl,
    view_query,
)

__all__ = [
    "DEFAULT_DRIVERS",
    "VIEW_NAME",
    "CourseId",
    "Timestamp",
    "Warehouse",
    "categories",
    "courses",
    "create_engine",
    "dialect_name",
    "ensure_schema",
    "levels",
    "loaded_batches",
    "loaded_versions",
    "loads",
    "metadata",
    "normalize_url",
    "view_ddl",
    "view_query",
]
