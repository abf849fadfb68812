"""The warehouse: a value built once from its URL, and the schema every database shares."""

from coursemart.warehouse.connect import (
    DEFAULT_DRIVERS,
    Warehouse,
    create_engine,
    normalize_url,
)
from coursemart.warehouse.dialects import Dialect, dialect_for
from coursemart.warehouse.migrate import ensure_schema
from coursemart.warehouse.schema import (
    VIEW_NAME,
    CourseId,
    Timestamp,
    categories,
    courses,
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
    "Dialect",
    "VIEW_NAME",
    "CourseId",
    "Timestamp",
    "Warehouse",
    "categories",
    "courses",
    "create_engine",
    "dialect_for",
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
