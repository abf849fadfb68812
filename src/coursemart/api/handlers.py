"""Exception handlers: every failure is a JSON ``ErrorPublic``; no traceback or SQL ever leaves."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Match

from coursemart.api.auth import CHALLENGE, UnauthorizedError
from coursemart.api.catalog import NeverLoadedError
from coursemart.api.models import ErrorPublic, ParameterProblem
from coursemart.api.params import ParameterError
from coursemart.api.routes import LEGACY_PATH

logger = logging.getLogger("coursemart.api")

UNAVAILABLE_MESSAGE: Final = "the warehouse is unavailable right now; retry in a few seconds"
RETRY_AFTER_SECONDS: Final = 5
#: Every GET route also answers HEAD (``api.hardening``); 405 answers say so.
ALLOWED: Final = "GET, HEAD"
_WHERE: Final = frozenset({"query", "header", "path", "cookie", "body"})


def error_response(
    status_code: int,
    message: str,
    problems: Sequence[ParameterProblem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An ``ErrorPublic`` body with its HTTP status."""
    body = ErrorPublic(message=message, status_code=status_code, errors=list(problems))
    return JSONResponse(body.model_dump(), status_code=status_code, headers=headers)


def parameter_name(location: Sequence[Any]) -> str:
    """``("query", "limit")`` -> ``limit``; nested locations are joined with dots."""
    parts = [str(part) for part in location]
    if parts and parts[0] in _WHERE:
        parts = parts[1:]
    return ".".join(parts) or "request"


def validation_problems(errors: Sequence[Any]) -> list[ParameterProblem]:
    """FastAPI's validation errors as ``parameter: message`` pairs (the input is not echoed)."""
    problems = []
    for error in errors:
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        problems.append(
            ParameterProblem(parameter=parameter_name(error.get("loc", ())), message=message)
        )
    return problems


def summary(problems: Sequence[ParameterProblem]) -> str:
    """One line naming every bad parameter."""
    return "; ".join(f"{problem.parameter}: {problem.message}" for problem in problems)


async def on_validation(_: Request, exc: Exception) -> JSONResponse:
    """422 naming each parameter FastAPI refused."""
    assert isinstance(exc, RequestValidationError)
    problems = validation_problems(exc.errors())
    return error_response(422, summary(problems), problems)


async def on_parameter(_: Request, exc: Exception) -> JSONResponse:
    """422 for a parameter refused after parsing (cursor, category, level, range)."""
    assert isinstance(exc, ParameterError)
    problems = [ParameterProblem(parameter=exc.parameter, message=exc.message)]
    return error_response(422, summary(problems), problems)


async def on_unauthorized(_: Request, exc: Exception) -> JSONResponse:
    """401 saying where a key goes."""
    return error_response(401, str(exc), headers={"WWW-Authenticate": CHALLENGE})


def http_message(status_code: int, detail: str, method: str) -> str:
    """A helpful message for Starlette's own 404 and 405."""
    if status_code == 405:
        return f"{method} is not allowed here: the API is read-only (allowed: {ALLOWED})"
    if status_code == 404 and detail == "Not Found":
        return "no such resource; the API is described at /docs and /openapi.json"
    return detail


def without_trailing_slash(request: Request) -> str | None:
    """For ``/v1/levels/``, the path-only URL of the route it meant (``/v1/levels``, query kept);
    ``None`` when no route has that path. Never a full URL: the request's ``Host`` header is not
    echoed, and ``//host`` paths are never produced."""
    path = request.url.path
    if not path.endswith("/") or path == "/":
        return None
    target = path.rstrip("/")
    if not target.startswith("/") or target.startswith("//"):
        return None
    scope = {"type": "http", "path": target, "method": "GET", "root_path": ""}
    if not any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
        return None
    query = request.url.query
    return f"{target}?{query}" if query else target


def legacy_method_refused(method: str) -> JSONResponse:
    """The original function's answer to a method other than GET: 400, in its envelope."""
    body = {
        "message": f"{method} is not supported: GetRecentCourses answers GET (and HEAD) only",
        "status_code": 400,
        "data": [],
    }
    return JSONResponse(body, status_code=400, headers={"Allow": ALLOWED})


async def on_http(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (404, 405) as JSON, with their headers; a trailing slash redirected
    to the route without it. The original function's route keeps its own answer to a method it
    does not take: 400 in its envelope."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        if getattr(request.scope.get("route"), "path", None) == LEGACY_PATH:
            return legacy_method_refused(request.method)
        headers["Allow"] = ALLOWED
    if exc.status_code == 404:
        target = without_trailing_slash(request)
        if target is not None:
            return RedirectResponse(target, status_code=307)
    message = http_message(exc.status_code, str(exc.detail), request.method)
    return error_response(exc.status_code, message, headers=headers)


def unavailable(method: str, path: str, exc: Exception) -> JSONResponse:
    """503 for any database trouble; the cause goes to the log, not to the client."""
    logger.warning("warehouse unavailable for %s %s: %s", method, path, _brief(exc))
    message = str(exc) if isinstance(exc, NeverLoadedError) else UNAVAILABLE_MESSAGE
    return error_response(503, message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def on_database(request: Request, exc: Exception) -> JSONResponse:
    """503 for any database trouble (see :func:`unavailable`)."""
    return unavailable(request.method, request.url.path, exc)


def internal_error(method: str, path: str, exc: BaseException) -> JSONResponse:
    """500 for a bug, logged with its traceback."""
    logger.error("unexpected error for %s %s", method, path, exc_info=exc)
    return error_response(500, "internal error; it has been logged")


async def on_anything(request: Request, exc: Exception) -> JSONResponse:
    """500 for a bug (see :func:`internal_error`)."""
    return internal_error(request.method, request.url.path, exc)


def _brief(exc: Exception) -> str:
    """The exception's class and its first line, without the SQL SQLAlchemy appends."""
    original = getattr(exc, "orig", None) or exc
    first_line = str(original).strip().splitlines()[0] if str(original).strip() else ""
    return f"{type(original).__name__}: {first_line}"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ParameterError, on_parameter)
    app.add_exception_handler(UnauthorizedError, on_unauthorized)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(SQLAlchemyError, on_database)
    app.add_exception_handler(Exception, on_anything)
