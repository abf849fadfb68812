"""Response models, layered: one course, a page of courses, the original function's envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CoursePublic(BaseModel):
    """One course of the view ``vw_most_recent_courses``."""

    model_config = ConfigDict(frozen=True)

    course_id: int
    course_name: str
    category_id: int
    category_name: str
    level_id: int
    level_name: str
    start_date: datetime = Field(description="When the course starts, ISO 8601 in UTC.")


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
    data: list[CoursePublic]


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
