"""The routes: thin functions that validate input, then hand off to the service and the catalog."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from coursemart.api import render
from coursemart.api.caching import make_etag
from coursemart.api.compression import not_modified
from coursemart.api.listing import MAX_LIMIT, MAX_QUERY_LENGTH, Order, RecentQuery, recent_query
from coursemart.api.metrics import CONTENT_TYPE, DataCollector
from coursemart.api.models import (
    CategoriesPublic,
    CoursePublic,
    CoursesPublic,
    ErrorPublic,
    FreshnessPublic,
    HealthPublic,
    LevelsPublic,
    ReadyPublic,
    RecentCoursesEnvelope,
    with_extra_columns,
)
from coursemart.api.pagination import CURSOR_PATTERN, MAX_CURSOR_LENGTH
from coursemart.api.params import MAX_NAME_LENGTH, Instant, unknown_parameter_message
from coursemart.api.queries import CourseFilter
from coursemart.api.service import Service

STATIC: Final = FilePath(__file__).parent / "static"
#: The original function's route. It matches in any case, as Azure Functions' routes do
#: (ASCII letters only: ``ſ`` is no ``s`` here); see :func:`canonical_path`.
LEGACY_PATH: Final = "/api/GetRecentCourses"
_LEGACY_ANY_CASE: Final = re.compile(f"^{re.escape(LEGACY_PATH)}$", re.IGNORECASE | re.ASCII)
#: Where an API key may be given in the query string (``auth.code_query``).
KEY_PARAMETER: Final = "code"
#: The largest course id there can be (a BIGINT).
MAX_COURSE_ID: Final = 2**63 - 1
#: The page's policy: everything from this origin, nothing framed, no inline script.
PAGE_POLICY: Final = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"


def canonical_path(path: str) -> str:
    """The path routing should see: the original function's route in the case it was declared
    (``/api/getrecentcourses`` -> ``/api/GetRecentCourses``), any other path as it is."""
    if len(path) == len(LEGACY_PATH) and _LEGACY_ANY_CASE.match(path):
        return LEGACY_PATH
    return path


# ---------------------------------------------------------------------------------------------
# Dependencies


async def get_service(request: Request) -> Service:
    """The app's service (settings, catalog, cache)."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_version(service: ServiceDep) -> str:
    """The warehouse's current data version, read once per request."""
    return await service.version()


VersionDep = Annotated[str, Depends(get_version)]

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
QueryParam = Annotated[
    str | None,
    Query(
        max_length=MAX_QUERY_LENGTH,
        description="Search: courses whose name has a word starting with each word given, in "
        "any order, any case, with or without accents (machine learn, café).",
    ),
]
OrderParam = Annotated[
    Order,
    Query(
        description="recent: every course, latest start first (the default); upcoming: from "
        "now (or since) on, soonest first; past: before now (or until), most recent first."
    ),
]


async def recent_query_dep(
    service: ServiceDep,
    version: VersionDep,
    limit: Limit = 50,
    cursor: CursorParam = None,
    category: CategoryParam = None,
    level: LevelParam = None,
    since: SinceParam = None,
    until: UntilParam = None,
    order: OrderParam = Order.recent,
    q: QueryParam = None,
) -> RecentQuery:
    """Check and normalize the parameters of ``/v1/courses/recent``."""
    dimensions = await service.dimensions(version)
    return recent_query(
        limit=limit,
        cursor=cursor,
        category=category,
        level=level,
        since=since,
        until=until,
        order=order,
        q=q,
        categories=dimensions.categories,
        levels=dimensions.levels,
        cursor_key=service.cursor_key,
        now=service.clock(),
    )


RecentQueryDep = Annotated[RecentQuery, Depends(recent_query_dep)]


def query_parameters(dependant: Dependant) -> set[str]:
    """The query parameters a route's dependency tree reads."""
    names = {field.alias for field in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= query_parameters(dependency)
    return names


def accepted_parameters(route: APIRoute) -> tuple[str, ...]:
    """The query parameters ``route`` takes, in order, and ``code`` (where an API key may be)."""
    return (*sorted(query_parameters(route.dependant) - {KEY_PARAMETER}), KEY_PARAMETER)


async def only_known_parameters(request: Request) -> None:
    """Refuse (422) every query parameter the route does not take, naming it and the ones it
    takes: a typo (``categroy=art``) must not give a silently unfiltered list."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    accepted = accepted_parameters(route)
    unknown = [name for name in request.query_params if name not in accepted]
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": unknown_parameter_message(name, accepted, route.path),
                }
                for name in unknown
            ]
        )


CourseId = Annotated[
    int, Path(ge=1, le=MAX_COURSE_ID, description="The course's id (a positive integer).")
]

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
#: A page of a listing: also a ``Link`` to the next page, when there is one.
PAGED: Final[dict[int | str, dict[str, Any]]] = {
    **CACHED,
    200: {
        "headers": {
            **CACHED[200]["headers"],
            "Link": {
                "description": 'The next page (RFC 8288): <path?parameters&cursor=…>; rel="next". '
                "Absent on the last page.",
                "schema": {"type": "string"},
            },
        }
    },
}

# ---------------------------------------------------------------------------------------------
# Routes


legacy = APIRouter(tags=["compatibility"])
v1 = APIRouter(prefix="/v1", tags=["catalog"], dependencies=[Depends(only_known_parameters)])
operations = APIRouter(tags=["operations"])
metrics = APIRouter(tags=["operations"])
page = APIRouter(include_in_schema=False)


@legacy.get(
    LEGACY_PATH,
    response_model=RecentCoursesEnvelope,
    responses=CACHED,
    summary="Most recent courses, as the original function answered",
)
async def get_recent_courses(
    request: Request,
    service: ServiceDep,
    version: VersionDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Courses to return, 1 to {MAX_LIMIT}.")
    ] = 100,
) -> Response:
    """The most recent courses first, in the envelope ``{"message", "status_code", "data"}``.

    With no courses the body says ``"No results found"`` and ``404``; the HTTP status stays 200.
    """
    query = RecentQuery(limit, None, CourseFilter())
    answer = await service.listing(version, query, envelope=True)
    return service.send(request.scope, version, answer, None)


@v1.get("/courses/recent", response_model=CoursesPublic, responses=PAGED)
async def recent_courses(
    request: Request, service: ServiceDep, version: VersionDep, query: RecentQueryDep
) -> Response:
    """Courses in the chosen order (latest start first by default), paged by ``next_cursor``
    and filtered."""
    answer = await service.listing(version, query, envelope=False)
    return service.send(request.scope, version, answer, query.expires)


@v1.get(
    "/courses/{course_id}",
    response_model=CoursePublic,
    responses={
        **CACHED,
        404: {"model": ErrorPublic, "description": "No course has this id."},
    },
)
async def course(
    request: Request, service: ServiceDep, version: VersionDep, course_id: CourseId
) -> Response:
    """One course, by id."""
    answer = await service.course(version, course_id)
    if answer is None:
        raise HTTPException(404, f"no course has course_id {course_id}")
    return service.send(request.scope, version, answer, None)


@v1.get("/categories", response_model=CategoriesPublic, responses=CACHED)
async def categories(request: Request, service: ServiceDep, version: VersionDep) -> Response:
    """Every category, by id."""
    answer = await service.dimension(version, "categories")
    return service.send(request.scope, version, answer, None)


@v1.get("/levels", response_model=LevelsPublic, responses=CACHED)
async def levels(request: Request, service: ServiceDep, version: VersionDep) -> Response:
    """Every level, by id."""
    answer = await service.dimension(version, "levels")
    return service.send(request.scope, version, answer, None)


@v1.get("/freshness", response_model=FreshnessPublic, responses=ERRORS)
async def freshness(service: ServiceDep, version: VersionDep) -> FreshnessPublic:
    """How fresh the data is: its version and when the load that made it finished, and how far
    the warehouse is behind the lake (the table's latest version, the latest loaded, the lag)."""
    loaded_at = service.catalog.loaded_at
    age = None
    if loaded_at is not None:
        age = max(0.0, round(service.clock() - loaded_at.timestamp(), 3))
    answer = FreshnessPublic(data_version=version or None, loaded_at=loaded_at, age_seconds=age)
    behind = await service.lake_lag()
    if behind is not None:
        answer.lake_version = behind.head.version
        answer.lake_committed_at = behind.head.committed_at
        answer.loaded_version = behind.loaded
        answer.lag_versions = behind.versions
        answer.lag_seconds = behind.seconds(service.clock())
    return answer


@operations.get("/health", response_model=HealthPublic)
async def health() -> HealthPublic:
    """The process is up; the database is not consulted."""
    return HealthPublic()


@operations.get("/ready", response_model=ReadyPublic, responses={503: ERRORS[503]})
async def ready(service: ServiceDep) -> ReadyPublic:
    """The warehouse answers a query now (503 otherwise)."""
    version = await run_in_threadpool(service.catalog.read_version)
    return ReadyPublic(data_version=version or None)


@metrics.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "The Prometheus text format.",
        },
        401: ERRORS[401],
        503: ERRORS[503],
    },
)
async def prometheus_metrics(service: ServiceDep, version: VersionDep) -> Response:
    """Requests and latency per route and status, courses served, the data version and the
    last load's time and age, in the Prometheus text format."""

    def read() -> tuple[str, datetime | None]:
        return version, service.catalog.loaded_at

    behind = await service.lake_lag()
    body = service.metrics.exposition(DataCollector(read, behind))
    return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})


def page_file(name: str) -> FileResponse:
    """A static HTML page, never framed, revalidated on each visit."""
    return FileResponse(
        STATIC / name,
        headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"},
    )


@page.get("/")
async def index() -> FileResponse:
    """The web page."""
    return page_file("index.html")


@page.get("/openapi.json")
async def openapi_document(request: Request, service: ServiceDep) -> Response:
    """The OpenAPI document (built once per app by FastAPI, and again when a load adds a
    column to the courses), with an ETag: it is compressed once, and a client that has it gets
    304."""
    state = request.app.state
    try:
        await service.version()  # the columns the courses have now
    except Exception:  # noqa: BLE001 - the document is served whatever the warehouse's state
        pass
    extras = service.catalog.extras
    if getattr(state, "openapi_body", None) is None or state.openapi_extras != extras:
        body = render.dumps(with_extra_columns(request.app.openapi(), extras))
        state.openapi_body, state.openapi_etag = body, make_etag("openapi", body)
        state.openapi_extras = extras
    headers = {"ETag": state.openapi_etag, "Cache-Control": "no-cache"}
    response = Response(state.openapi_body, media_type="application/json", headers=headers)
    return not_modified(request.headers, response) or response


@page.get("/docs")
async def docs() -> FileResponse:
    """The API's interactive documentation (Swagger UI, served from this app)."""
    return page_file("docs.html")
