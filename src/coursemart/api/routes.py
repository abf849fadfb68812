"""The routes: thin functions that validate input, then hand off to the service and the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from coursemart.api.catalog import Catalog
from coursemart.api.models import (
    CategoriesPublic,
    CategoryPublic,
    CoursesPublic,
    ErrorPublic,
    HealthPublic,
    LevelPublic,
    LevelsPublic,
    ReadyPublic,
    RecentCoursesEnvelope,
)
from coursemart.api.pagination import (
    CURSOR_PATTERN,
    MAX_CURSOR_LENGTH,
    Cursor,
    CursorError,
    decode_cursor,
    encode_cursor,
    next_cursor,
)
from coursemart.api.params import (
    MAX_NAME_LENGTH,
    Instant,
    ParameterError,
    check_range,
    resolve_dimension,
)
from coursemart.api.queries import CourseFilter
from coursemart.api.service import Service, Snapshot

STATIC: Final = Path(__file__).parent / "static"
MAX_LIMIT: Final = 1000

# ---------------------------------------------------------------------------------------------
# Dependencies


async def get_service(request: Request) -> Service:
    """The app's service (settings, catalog, cache)."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_snapshot(request: Request) -> Snapshot:
    """The app's service at the warehouse's current data version, read once per request."""
    service: Service = request.app.state.service
    return await service.snapshot()


SnapshotDep = Annotated[Snapshot, Depends(get_snapshot)]


@dataclass(frozen=True)
class RecentQuery:
    """A checked ``/v1/courses/recent`` request; ``key`` is its normalized form."""

    limit: int
    cursor: Cursor | None
    course_filter: CourseFilter

    @property
    def key(self) -> tuple[object, ...]:
        return ("recent", self.limit, self.cursor, self.course_filter)


Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Courses per page, 1 to {MAX_LIMIT}.")
]
CursorParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        pattern=CURSOR_PATTERN,
        description="The previous page's next_cursor; omit for the first page.",
    ),
]
CategoryParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Only this category: its id (1) or its name (technology, any case).",
    ),
]
LevelParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Only this level: its id (101) or its name (beginner, any case).",
    ),
]
SinceParam = Annotated[
    Instant | None,
    Query(description="Only courses starting at or after this instant (ISO 8601; naive = UTC)."),
]
UntilParam = Annotated[
    Instant | None,
    Query(description="Only courses starting before this instant (ISO 8601; naive = UTC)."),
]


async def recent_query(
    snapshot: SnapshotDep,
    limit: Limit = 50,
    cursor: CursorParam = None,
    category: CategoryParam = None,
    level: LevelParam = None,
    since: SinceParam = None,
    until: UntilParam = None,
) -> RecentQuery:
    """Check and normalize the parameters of ``/v1/courses/recent``."""
    try:
        position = decode_cursor(cursor) if cursor is not None else None
    except CursorError as exc:
        raise ParameterError("cursor", str(exc)) from exc
    check_range(since, until)
    dimensions = await snapshot.dimensions()
    course_filter = CourseFilter(
        category_id=None
        if category is None
        else resolve_dimension("category", category, dimensions.categories),
        level_id=None if level is None else resolve_dimension("level", level, dimensions.levels),
        since=since,
        until=until,
    )
    return RecentQuery(limit, position, course_filter)


RecentQueryDep = Annotated[RecentQuery, Depends(recent_query)]

# ---------------------------------------------------------------------------------------------
# Documentation of the answers every route shares

ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    401: {"model": ErrorPublic, "description": "API keys are configured and none was valid."},
    422: {"model": ErrorPublic, "description": "A parameter is invalid; the message names it."},
    503: {"model": ErrorPublic, "description": "The warehouse is unavailable; retry later."},
}
CACHED: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "headers": {
            "ETag": {
                "description": "Changes when a load changes the data.",
                "schema": {"type": "string"},
            },
            "Cache-Control": {"description": "max-age in seconds.", "schema": {"type": "string"}},
        }
    },
    304: {"description": "Not modified: the If-None-Match ETag is still current."},
    **ERRORS,
}

# ---------------------------------------------------------------------------------------------
# Routes

legacy = APIRouter(tags=["compatibility"])
v1 = APIRouter(prefix="/v1", tags=["catalog"])
operations = APIRouter(tags=["operations"])
page = APIRouter(include_in_schema=False)


def envelope(courses: CoursesPublic) -> RecentCoursesEnvelope:
    """The original function's envelope: ``404`` in the body when there are no courses."""
    if not courses.data:
        return RecentCoursesEnvelope(message="No results found", status_code=404, data=[])
    return RecentCoursesEnvelope(message="successful", status_code=200, data=courses.data)


def course_page(catalog: Catalog, query: RecentQuery) -> CoursesPublic:
    """One page of courses and the cursor to the next one."""
    rows = catalog.recent(query.course_filter, limit=query.limit + 1, cursor=query.cursor)
    data, following = next_cursor(rows, query.limit)
    return CoursesPublic(
        data=list(data), next_cursor=encode_cursor(following) if following else None
    )


@legacy.get(
    "/api/GetRecentCourses",
    response_model=RecentCoursesEnvelope,
    responses=CACHED,
    summary="Most recent courses, as the original function answered",
)
async def get_recent_courses(
    request: Request,
    snapshot: SnapshotDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Courses to return, 1 to {MAX_LIMIT}.")
    ] = 100,
) -> Response:
    """The most recent courses first, in the envelope ``{"message", "status_code", "data"}``.

    With no courses the body says ``"No results found"`` and ``404``; the HTTP status stays 200.
    """
    query = RecentQuery(limit, None, CourseFilter())
    catalog = snapshot.service.catalog
    return await snapshot.answer(
        request, ("legacy", *query.key), lambda: envelope(course_page(catalog, query))
    )


@v1.get("/courses/recent", response_model=CoursesPublic, responses=CACHED)
async def recent_courses(
    request: Request, snapshot: SnapshotDep, query: RecentQueryDep
) -> Response:
    """Courses, most recent ``start_date`` first, paged by ``next_cursor`` and filtered."""
    catalog = snapshot.service.catalog
    return await snapshot.answer(request, query.key, lambda: course_page(catalog, query))


@v1.get("/categories", response_model=CategoriesPublic, responses=CACHED)
async def categories(request: Request, snapshot: SnapshotDep) -> Response:
    """Every category, by id."""
    dimensions = await snapshot.dimensions()
    return await snapshot.answer(
        request,
        ("categories",),
        lambda: CategoriesPublic(
            data=[CategoryPublic(category_id=k, category_name=n) for k, n in dimensions.categories]
        ),
    )


@v1.get("/levels", response_model=LevelsPublic, responses=CACHED)
async def levels(request: Request, snapshot: SnapshotDep) -> Response:
    """Every level, by id."""
    dimensions = await snapshot.dimensions()
    return await snapshot.answer(
        request,
        ("levels",),
        lambda: LevelsPublic(
            data=[LevelPublic(level_id=k, level_name=n) for k, n in dimensions.levels]
        ),
    )


@operations.get("/health", response_model=HealthPublic)
async def health() -> HealthPublic:
    """The process is up; the database is not consulted."""
    return HealthPublic()


@operations.get("/ready", response_model=ReadyPublic, responses={503: ERRORS[503]})
async def ready(service: ServiceDep) -> ReadyPublic:
    """The warehouse answers a query now (503 otherwise)."""
    version = await run_in_threadpool(service.catalog.read_version)
    return ReadyPublic(data_version=version or None)


@page.get("/")
async def index() -> FileResponse:
    """The web page."""
    return FileResponse(
        STATIC / "index.html",
        headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        },
    )
