"""The app factory: one FastAPI app per call, with its own pool, cache and settings.

uvicorn --factory coursemart.api:create_app
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from coursemart import __version__
from coursemart.api import handlers, routes
from coursemart.api.auth import require_api_key
from coursemart.api.service import RepeatedRequests, Service
from coursemart.config import Settings

DESCRIPTION = """\
Read-only access to the course catalog in the warehouse view `vw_most_recent_courses`.

* `GET /v1/courses/recent` pages through courses, most recent start first, with `next_cursor`.
* `GET /api/GetRecentCourses` answers as the original Azure Function did.
* Answers carry an `ETag` that changes when a load changes the data; send it back in
  `If-None-Match` to get `304 Not Modified`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The coursemart API for ``settings`` (default: from the environment and ``.env``)."""
    settings = settings or Settings()
    service = Service.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.catalog.open()
        try:
            yield
        finally:
            service.catalog.close()

    app = FastAPI(
        title="coursemart",
        version=__version__,
        summary="The course catalog, read-only.",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = service
    guard = [Security(require_api_key)] if settings.api_keys else []
    app.include_router(routes.legacy, dependencies=guard)
    app.include_router(routes.v1, dependencies=guard)
    app.include_router(routes.operations)
    app.include_router(routes.page)
    app.mount("/static", StaticFiles(directory=routes.STATIC), name="static")
    handlers.install(app)
    app.add_middleware(RepeatedRequests, service=service)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET"],
            allow_headers=["x-api-key", "x-functions-key", "if-none-match"],
            expose_headers=["ETag"],
            max_age=600,
        )
    return app
