"""Response models, layered: one course, a page of courses, the original function's envelope."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from coursemart.api.queries import ExtraColumn


class SeedCoursePublic(BaseModel):
    """One course of the original function's answer: the seed's fields, always these."""

    model_config = ConfigDict(frozen=True)

    course_id: int
    course_name: str
    category_id: int
    category_name: str
    level_id: int
    level_name: str
    start_date: datetime = Field(description="When the course starts, ISO 8601 in UTC.")


class CoursePublic(SeedCoursePublic):
    """One course of the view ``vw_most_recent_courses``, with the columns the lake's table
    gained after these (each listed here once a load has added it; null for courses written
    before it)."""


class CoursesPublic(BaseModel):
    """A page of courses, most recent ``start_date`` first."""

    data: list[CoursePublic]
    next_cursor: str | None = Field(
        description="Pass as ``cursor`` for the next page; null on the last page."
    )


class RecentCoursesEnvelope(BaseModel):
    """The original ``GetRecentCourses`` function's answer."""

    message: Literal["successful", "No results found"]
    status_code: Literal[200, 404] = Field(
        description="200 with courses, 404 when the warehouse has none (the HTTP status is 200)."
    )
    data: list[SeedCoursePublic]


class CategoryPublic(BaseModel):
    """One category."""

    category_id: int
    category_name: str


class CategoriesPublic(BaseModel):
    """Every category, by id."""

    data: list[CategoryPublic]


class LevelPublic(BaseModel):
    """One level."""

    level_id: int
    level_name: str


class LevelsPublic(BaseModel):
    """Every level, by id."""

    data: list[LevelPublic]


class HealthPublic(BaseModel):
    """The process is up (the database is not consulted)."""

    status: Literal["ok"] = "ok"


class ReadyPublic(BaseModel):
    """The database answers; ``data_version`` is the latest load that changed it."""

    status: Literal["ready"] = "ready"
    data_version: str | None


class ParameterProblem(BaseModel):
    """What is wrong with one input."""

    parameter: str
    message: str


class ErrorPublic(BaseModel):
    """Every error: a message a person can act on, the HTTP status, and per-parameter problems."""

    message: str
    status_code: int
    errors: list[ParameterProblem] = Field(default_factory=list)


class FreshnessPublic(BaseModel):
    """How fresh the data is."""

    data_version: str | None = Field(
        description="The latest load that changed the data; null before the first load."
    )
    loaded_at: datetime | None = Field(
        description="When that load finished, ISO 8601 in UTC; null before the first load."
    )
    age_seconds: float | None = Field(
        description="Seconds since then, by the server's clock; null before the first load."
    )
    lake_version: int | None = Field(
        default=None,
        description="The latest version of the lake's courses table; null when the server "
        "cannot read the lake (COURSEMART_LAKE).",
    )
    lake_committed_at: datetime | None = Field(
        default=None, description="When that version was committed, ISO 8601 in UTC."
    )
    loaded_version: int | None = Field(
        default=None,
        description="The greatest version of that table this warehouse has loaded; null when "
        "none is (or the lake cannot be read).",
    )
    lag_versions: int | None = Field(
        default=None, description="Versions committed to the lake and not loaded yet."
    )
    lag_seconds: float | None = Field(
        default=None,
        description="How long the oldest version not loaded yet has waited, by the server's "
        "clock; 0 when every version is loaded.",
    )


#: The JSON schema of an extra column's values, by its lake type family.
EXTRA_SCHEMAS: Final[dict[str, dict[str, str]]] = {
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer"},
    "float": {"type": "number"},
    "text": {"type": "string"},
    "timestamp": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
}


def with_extra_columns(document: dict[str, Any], extras: Sequence[ExtraColumn]) -> dict[str, Any]:
    """The OpenAPI ``document`` with ``extras`` as properties of ``CoursePublic`` (a copy: the
    app's own document is left as FastAPI built it)."""
    if not extras:
        return document
    copied = copy.deepcopy(document)
    course = copied["components"]["schemas"]["CoursePublic"]
    for extra in extras:
        kind = EXTRA_SCHEMAS.get(extra.family, {"type": "number"})  # decimal(p,s): a number
        course["properties"][extra.name] = {
            "anyOf": [kind, {"type": "null"}],
            "title": extra.name.replace("_", " ").capitalize(),
            "description": f"A column the lake's table gained ({extra.family}); null for "
            "courses written before it.",
        }
    return copied
