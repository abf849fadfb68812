"""What one app holds (settings, the catalog and its pool, the caches) and how it answers.

A cacheable answer is built at most once per data version and normalized query: the database is
asked only when the cache has no body for that pair. A request that repeats one already answered at
the current data version (same path, same query string) is answered before routing: see
``RepeatedRequests``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from coursemart.api.auth import any_key_is_valid
from coursemart.api.caching import (
    RequestIndex,
    ResponseCache,
    Seen,
    cache_control,
    etag_matches,
    make_etag,
)
from coursemart.api.catalog import Catalog, Dimensions
from coursemart.config import Settings

JSON = "application/json"


@dataclass
class Service:
    """The app's long-lived parts, created once per app."""

    settings: Settings
    catalog: Catalog
    cache: ResponseCache = field(default_factory=ResponseCache)
    seen: RequestIndex = field(default_factory=RequestIndex)

    @classmethod
    def from_settings(cls, settings: Settings) -> Service:
        """A service for the warehouse the settings name; no connection is made yet."""
        return cls(settings, Catalog(settings.warehouse_url))

    async def snapshot(self) -> Snapshot:
        """The service at the current data version: what one request reads at."""
        return Snapshot(self, await self.version())

    async def version(self) -> str:
        """The data version, from memory when fresh, else from the database (in a thread)."""
        fresh = self.catalog.fresh_version()
        if fresh is not None:
            return fresh
        return await run_in_threadpool(self.catalog.version)

    async def dimensions(self, version: str) -> Dimensions:
        """Categories and levels at ``version``."""
        cached = self.catalog.cached_dimensions(version)
        if cached is not None:
            return cached
        return await run_in_threadpool(self.catalog.dimensions, version)

    async def answer(
        self,
        request: Request,
        version: str,
        query: Hashable,
        build: Callable[[], BaseModel],
    ) -> Response:
        """The JSON answer to ``query``: ``304`` when the client's ETag is current, else the
        cached body, else ``build()`` run in a thread, serialized and cached."""
        seen = Seen(version, query, make_etag(version, query))
        self.seen.put((request.scope["path"], request.scope["query_string"]), seen)
        if etag_matches(request.headers.get("if-none-match"), seen.etag):
            return self.not_modified(seen.etag)
        key = (version, query)
        body = self.cache.get(key)
        if body is None:
            body = await run_in_threadpool(_serialize, build)
            self.cache.put(key, body)
        return self.json(seen.etag, body)

    def repeat(self, scope: Scope) -> Response | None:
        """The answer to a request already answered at the current data version, from memory;
        ``None`` when the app must answer it (new, stale, not cached, or without a valid key)."""
        version = self.catalog.fresh_version()
        if version is None:
            return None
        seen = self.seen.get((scope["path"], scope["query_string"]))
        if seen is None or seen.version != version:
            return None
        headers = Headers(scope=scope)
        if self.settings.api_keys:
            code = QueryParams(scope["query_string"]).get("code")
            presented = (headers.get("x-api-key"), headers.get("x-functions-key"), code)
            if not any_key_is_valid(presented, self.settings.api_keys):
                return None  # the app answers 401
        if etag_matches(headers.get("if-none-match"), seen.etag):
            return self.not_modified(seen.etag)
        body = self.cache.get((version, seen.query))
        return None if body is None else self.json(seen.etag, body)

    def json(self, etag: str, body: bytes) -> Response:
        """A cacheable JSON answer."""
        return Response(body, media_type=JSON, headers=self._headers(etag))

    def not_modified(self, etag: str) -> Response:
        """``304 Not Modified`` for a client whose ETag is current."""
        return Response(status_code=304, headers=self._headers(etag))

    def _headers(self, etag: str) -> dict[str, str]:
        private = bool(self.settings.api_keys)
        return {
            "ETag": etag,
            "Cache-Control": cache_control(self.settings.cache_seconds, private=private),
        }


@dataclass(frozen=True)
class Snapshot:
    """The service as one request sees it: at one data version, for every read and every key."""

    service: Service
    version: str

    async def dimensions(self) -> Dimensions:
        """Categories and levels at this version."""
        return await self.service.dimensions(self.version)

    async def answer(
        self, request: Request, query: Hashable, build: Callable[[], BaseModel]
    ) -> Response:
        """The JSON answer to ``query`` at this version (see ``Service.answer``)."""
        return await self.service.answer(request, self.version, query, build)


class RepeatedRequests:
    """ASGI middleware: answers a GET that repeats one already answered at the current data
    version from memory, before routing, validation and dependencies; passes anything else on."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            response = self.service.repeat(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _serialize(build: Callable[[], BaseModel]) -> bytes:
    return build().model_dump_json().encode()
