"""The app factory: one FastAPI app per call, with its own pool, caches, metrics and settings.

uvicorn --factory coursemart.api:create_app

Layers, outermost first: ``Observe`` (request id, metrics, access log), ``Hardening`` (HEAD,
security headers), CORS when configured, ``FastPath`` (plain catalog requests answered before
routing), ``Compression`` (gzip for what the service did not encode itself), then FastAPI's own
error handling and routes.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Security
from fastapi.middleware.cors import CORSMiddleware

from coursemart import __version__
from coursemart.api import handlers, routes
from coursemart.api.auth import require_api_key
from coursemart.api.compression import Compression, StaticFiles
from coursemart.api.fastpath import FastPath
from coursemart.api.hardening import Hardening
from coursemart.api.observe import Observe, RouteLabel
from coursemart.api.service import Service
from coursemart.config import Settings

#: Swagger UI's files, from the fastapi-offline package: /docs needs no other host.
SWAGGER_UI: Final = Path(str(files("fastapi_offline") / "static"))

DESCRIPTION = """\
Read-only access to the course catalog in the warehouse view `vw_most_recent_courses`.

* `GET /v1/courses/recent` pages through courses with `next_cursor`: latest start first, or
  `order=upcoming` (soonest first from now) or `order=past`.
* `GET /api/GetRecentCourses` answers as the original Azure Function did.
* Answers carry an `ETag` that changes when a load changes the data; send it back in
  `If-None-Match` to get `304 Not Modified`.
* Every `GET` route also answers `HEAD`.
"""


def create_app(settings: Settings | None = None, *, fast_path: bool = True) -> FastAPI:
    """The coursemart API for ``settings`` (default: from the environment and ``.env``).

    ``fast_path=False`` leaves every request to FastAPI's routes (for comparison tests).
    """
    settings = settings or Settings()
    service = Service.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.catalog.open()
        # What start-up built lives as long as the process: keep it out of the collector's
        # full passes, which would otherwise stop every request for tens of milliseconds.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="coursemart",
        version=__version__,
        summary="The course catalog, read-only.",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=None,  # served by routes.openapi_document, a route of this app's own
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.service = service
    guard = [Security(require_api_key)] if settings.api_keys else []
    app.include_router(routes.legacy, dependencies=guard)
    app.include_router(routes.v1, dependencies=guard)
    app.include_router(routes.metrics, dependencies=guard)
    app.include_router(routes.operations)
    app.include_router(routes.page)
    for prefix, folder, name in (
        ("/static/swagger-ui", SWAGGER_UI, "swagger-ui"),
        ("/static", routes.STATIC, "static"),
    ):
        app.mount(prefix, RouteLabel(StaticFiles(directory=folder), prefix), name=name)
    handlers.install(app)
    app.add_middleware(Compression)
    if fast_path:
        app.add_middleware(FastPath, service=service)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "HEAD"],
            allow_headers=[
                "authorization",
                "x-api-key",
                "x-functions-key",
                "if-none-match",
                "x-request-id",
            ],
            expose_headers=["ETag", "Link", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(Hardening)
    app.add_middleware(
        Observe,
        metrics=service.metrics,
        access_log=settings.access_log,
        keys=tuple(key.get_secret_value() for key in settings.api_keys),
    )
    return app
