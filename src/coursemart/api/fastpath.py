"""The fast path: catalog requests answered before FastAPI's routing, validation and dependencies.

Only well-formed ``GET`` requests to the four catalog routes are taken here: every parameter in
its plain form (``limit=50``, not ``limit=050``), each at most once, and every value accepted by
the same checks the routes use (``listing.recent_query``, ``params.parse_instant``). Anything
else (a bad or unusual parameter, a missing key, a route not listed) goes on to the app, which
answers it, errors included. So the fast path can only answer what the app would answer, the
same way: the same service builds both answers, and a test compares them.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import parse_qsl

from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from coursemart.api.handlers import unavailable
from coursemart.api.listing import (
    MAX_LIMIT,
    MAX_QUERY_LENGTH,
    Order,
    RecentQuery,
    recent_query,
)
from coursemart.api.observe import ROUTE_KEY
from coursemart.api.pagination import MAX_CURSOR_LENGTH
from coursemart.api.params import MAX_NAME_LENGTH, ParameterError, parse_instant
from coursemart.api.queries import CourseFilter
from coursemart.api.routes import LEGACY_PATH
from coursemart.api.service import Service

RECENT: Final = "/v1/courses/recent"
LEGACY: Final = LEGACY_PATH
DIMENSIONS: Final = {"/v1/categories": "categories", "/v1/levels": "levels"}
#: Default page sizes of the two listings.
RECENT_LIMIT: Final = 50
LEGACY_LIMIT: Final = 100
#: The parameters each ``/v1`` route takes, besides ``code`` (a key): a request with another
#: one is left to the app, which refuses it (``routes.only_known_parameters``).
TAKES: Final = {
    RECENT: frozenset({"limit", "cursor", "category", "level", "since", "until", "order", "q"}),
    **{path: frozenset[str]() for path in DIMENSIONS},
}
_LIMIT: Final = re.compile(r"^[1-9][0-9]{0,3}$")
_CURSOR: Final = re.compile(r"^[A-Za-z0-9_-]+$")


class NotPlain(ValueError):
    """A request the fast path leaves to the app."""


def plain_parameters(query_string: bytes, takes: frozenset[str] | None) -> dict[str, str]:
    """The query's parameters as the app reads them (Starlette's parsing), each at most once,
    and each one the route ``takes`` (or ``code``); ``None`` takes any."""
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in parameters:
            raise NotPlain(f"{name} is repeated")
        if takes is not None and name not in takes and name != "code":
            raise NotPlain(f"{name} is not a parameter of the route")
        parameters[name] = value
    return parameters


def plain_limit(value: str | None, default: int) -> int:
    """``limit`` written plainly and within bounds."""
    if value is None:
        return default
    if not _LIMIT.match(value) or int(value) > MAX_LIMIT:
        raise NotPlain("limit")
    return int(value)


def plain_text(
    value: str | None,
    most: int,
    pattern: re.Pattern[str] | None = None,
    *,
    allow_empty: bool = False,
) -> str | None:
    """A text parameter within the length (and alphabet) the route declares."""
    if value is None:
        return None
    least = 0 if allow_empty else 1
    if not least <= len(value) <= most or (pattern is not None and not pattern.match(value)):
        raise NotPlain("text")
    return value


class FastPath:
    """ASGI middleware: answers plain catalog ``GET`` requests; passes everything else on."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            response = self.service.repeat(scope)
            if response is None:
                response = await self.answer(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def answer(self, scope: Scope) -> Response | None:
        """The answer to a plain catalog request, or ``None`` for the app to answer."""
        path: str = scope["path"]
        if path not in (RECENT, LEGACY) and path not in DIMENSIONS:
            return None
        scope[ROUTE_KEY] = path
        headers = Headers(scope=scope)
        if not self.service.key_is_valid(scope, headers):
            return None
        try:
            parameters = plain_parameters(scope["query_string"], TAKES.get(path))
            version = await self.service.version()
            if path in DIMENSIONS:
                answer = await self.service.dimension(version, DIMENSIONS[path])
                expires = None
            else:
                listing = await self._listing(path, parameters, version)
                if listing is None:
                    return None
                answer = await self.service.listing(version, listing, envelope=path == LEGACY)
                expires = listing.expires
        except SQLAlchemyError as exc:
            return unavailable(scope["method"], path, exc)
        except NotPlain:
            return None
        return self.service.send(scope, version, answer, expires)

    async def _listing(
        self, path: str, parameters: dict[str, str], version: str
    ) -> RecentQuery | None:
        if path == LEGACY:
            limit = plain_limit(parameters.get("limit"), LEGACY_LIMIT)
            return RecentQuery(limit, None, CourseFilter())
        try:
            order = Order(parameters.get("order", Order.recent.value))
            since, until = (parameters.get(name) for name in ("since", "until"))
            dimensions = await self.service.dimensions(version)
            return recent_query(
                limit=plain_limit(parameters.get("limit"), RECENT_LIMIT),
                cursor=plain_text(parameters.get("cursor"), MAX_CURSOR_LENGTH, _CURSOR),
                category=plain_text(parameters.get("category"), MAX_NAME_LENGTH),
                level=plain_text(parameters.get("level"), MAX_NAME_LENGTH),
                since=None if since is None else parse_instant(since),
                until=None if until is None else parse_instant(until),
                order=order,
                q=plain_text(parameters.get("q"), MAX_QUERY_LENGTH, allow_empty=True),
                categories=dimensions.categories,
                levels=dimensions.levels,
                cursor_key=self.service.cursor_key,
                now=self.service.clock(),
            )
        except (ParameterError, ValueError):  # the app answers with its 422
            return None
