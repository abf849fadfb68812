"""What one app holds (settings, the catalog and its pool, the caches) and how it answers.

A cacheable answer is built at most once per data version and normalized query: the database is
asked only when the cache has no answer for that pair, and the JSON body and its ETag are made
then, once. A request that repeats one already answered at the current data version (same path,
same query string) is answered before routing from what it was answered with last time.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, TypeVar

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Scope

from coursemart.api import render
from coursemart.api.auth import any_key_is_valid, presented_keys
from coursemart.api.caching import (
    Answer,
    RequestIndex,
    ResponseCache,
    cache_control,
    etag_matches,
    make_etag,
)
from coursemart.api.catalog import Catalog, Dimensions
from coursemart.api.compression import MIN_SIZE, VARY, accepts_gzip, gzip_etag, gzipped
from coursemart.api.freshness import Lag, LakeWatch, lag
from coursemart.api.listing import RecentQuery
from coursemart.api.metrics import Metrics
from coursemart.api.observe import ROUTE_KEY, route_label
from coursemart.api.pagination import next_page_link, signing_key
from coursemart.config import Settings

JSON: Final = "application/json"
#: Threads per app for database reads: as many as a server engine's pool has connections.
THREADS: Final = 20
#: New searches (whose matches are not in memory) read at once per app; the others wait in the
#: event loop, holding neither a thread nor a connection, so that listings, course pages and
#: searches already read keep the rest of the threads and connections however many new
#: searches come at once.
SEARCHES_AT_ONCE: Final = 4
T = TypeVar("T")


@dataclass
class Service:
    """The app's long-lived parts, created once per app."""

    settings: Settings
    catalog: Catalog
    metrics: Metrics = field(default_factory=Metrics)
    cache: ResponseCache = field(default_factory=ResponseCache)
    seen: RequestIndex = field(default_factory=RequestIndex)
    clock: Callable[[], float] = time.time
    threads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(THREADS, thread_name_prefix="coursemart-read"),
        repr=False,
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> Service:
        """A service for the warehouse the settings name; no connection is made yet."""
        return cls(settings, Catalog(settings.warehouse_url), Metrics())

    def __post_init__(self) -> None:
        secret = self.settings.cursor_key or self.settings.warehouse
        self.cursor_key = signing_key(secret.get_secret_value())
        self._private = bool(self.settings.api_keys)
        self._cache_control = cache_control(self.settings.cache_seconds, private=self._private)
        self._inline = self.catalog.dialect.inline_reads
        self.lake = LakeWatch(self.settings.lake)
        self.searches = asyncio.Semaphore(SEARCHES_AT_ONCE)

    def close(self) -> None:
        """Close the pool and stop the reading threads."""
        self.catalog.close()
        self.threads.shutdown(wait=False, cancel_futures=True)

    # -- reads ------------------------------------------------------------------------------

    async def version(self) -> str:
        """The data version, from memory when fresh, else from the database (in a thread)."""
        fresh = self.catalog.fresh_version()
        if fresh is not None:
            return fresh
        return await self.offload(self.catalog.version)

    async def lake_lag(self) -> Lag | None:
        """How far the warehouse is behind the lake (None when the lake cannot be read)."""
        return await self.offload(
            lambda: lag(self.lake, self.catalog.loaded_version), threaded=True
        )

    async def dimensions(self, version: str) -> Dimensions:
        """Categories and levels at ``version``."""
        cached = self.catalog.cached_dimensions(version)
        if cached is not None:
            return cached
        return await self.offload(lambda: self.catalog.dimensions(version))

    async def listing(self, version: str, query: RecentQuery, *, envelope: bool) -> Answer:
        """A page of courses (or the original envelope) at ``version``: from the cache, else
        read and serialized once, in a thread."""
        key = ("legacy", *query.key) if envelope else query.key
        words = query.course_filter.words
        slow = bool(words) and not self.catalog.holds_matches(words)
        return await self._cached(
            version,
            key,
            lambda: self._read_listing(query, envelope),
            threaded=slow,
            limit=self.searches if slow else None,
        )

    async def dimension(self, version: str, which: str) -> Answer:
        """``/v1/categories`` or ``/v1/levels`` at ``version``."""
        dimensions = await self.dimensions(version)

        def build() -> render.Rendered:
            if which == "categories":
                pairs, fields = dimensions.categories, ("category_id", "category_name")
            else:
                pairs, fields = dimensions.levels, ("level_id", "level_name")
            return render.dimension(*fields, pairs)

        return await self._cached(version, (which,), build)

    async def course(self, version: str, course_id: int) -> Answer | None:
        """``/v1/courses/{course_id}`` at ``version``; ``None`` when there is no such course."""

        def build() -> render.Rendered:
            extras = self.catalog.extras  # one snapshot: the row's columns and their names
            return render.course(self.catalog.course(course_id, extras), extras)

        answer = await self._cached(version, ("course", course_id), build)
        return answer if answer.rows else None

    def _read_listing(self, query: RecentQuery, envelope: bool) -> render.Rendered:
        extras = () if envelope else self.catalog.extras  # the seed's answer keeps its fields
        rows = self.catalog.recent(
            query.course_filter,
            limit=query.limit + (0 if envelope else 1),
            cursor=query.cursor,
            descending=query.descending,
            extras=extras,
        )
        if envelope:
            return render.envelope(rows, query.limit)
        return render.course_page(
            rows,
            query.limit,
            descending=query.descending,
            cursor_key=self.cursor_key,
            extras=extras,
        )

    async def _cached(
        self,
        version: str,
        query: Hashable,
        build: Callable[[], render.Rendered],
        *,
        threaded: bool = False,
        limit: asyncio.Semaphore | None = None,
    ) -> Answer:
        """The answer to ``query`` at ``version``: kept, or built (in a thread when
        ``threaded``, once a place under ``limit`` is free) and kept."""
        etag = make_etag(version, query)
        answer = self.cache.get(etag)
        if answer is not None:
            return answer
        async with limit or contextlib.nullcontext():
            answer = self.cache.get(etag)  # built by another request while this one waited
            if answer is None:
                body, rows, next_cursor = await self.offload(build, threaded=threaded)
                answer = Answer(body, etag, rows, next_cursor)
                self.cache.put(etag, answer)
        return answer

    async def offload(self, work: Callable[[], T], *, threaded: bool = False) -> T:
        """Run a database read: on the service's threads for a database server (the wait is
        the network's), in the event loop for SQLite, whose indexed reads take a fraction of a
        millisecond, less than a hand-off to a thread and back (and with no contention for
        the interpreter lock between the threads and the loop, which shows in the slowest
        answers). A search whose matches are not in memory yet runs on a thread: it reads
        them, or scans. The request's context (its id, for logs) goes along."""
        if self._inline and not threaded:
            return work()
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.threads, context.run, work)

    # -- answers ----------------------------------------------------------------------------

    def send(self, scope: Scope, version: str, answer: Answer, expires: float | None) -> Response:
        """The response to a request answered with ``answer`` at ``version``, whichever way it
        came in (a route or the fast path). What this exact request (path and query string) was
        answered with is remembered, with its route (as noted in the scope) and the link to its
        next page, so that a repeat is answered before routing (:meth:`repeat`)."""
        link = None
        if answer.next_cursor is not None:
            link = next_page_link(scope["path"], scope["query_string"], answer.next_cursor)
        seen = (version, answer.etag, expires, route_label(scope), link)
        self.seen.put((scope["path"], scope["query_string"]), seen)
        return self.respond(answer, Headers(scope=scope), link)

    def respond(self, answer: Answer, request: Headers, link: str | None) -> Response:
        """``304`` when the client's ETag is current, else the answer's body, in gzip when the
        client accepts it (each encoding with its ETag: see ``api.compression``); with the next
        page's ``Link`` when there is one."""
        body, etag = answer.body, answer.etag
        headers = {"Cache-Control": self._cache_control, "Vary": VARY}
        if len(body) >= MIN_SIZE and accepts_gzip(request.get("accept-encoding")):
            body, etag = self._gzipped(answer), gzip_etag(etag)
            headers["Content-Encoding"] = "gzip"
        headers["ETag"] = etag
        if link is not None:
            headers["Link"] = link
        if_none_match = request.get("if-none-match")
        if if_none_match and etag_matches(if_none_match, etag):
            headers.pop("Content-Encoding", None)  # a 304 carries no representation metadata
            return Response(status_code=304, headers=headers)
        if answer.rows:
            self.metrics.rows_served.inc(answer.rows)
        return Response(body, media_type=JSON, headers=headers)

    def _gzipped(self, answer: Answer) -> bytes:
        """The answer's body in gzip: compressed on the first request that asks for it, then
        kept beside the plain body in the cache."""
        if answer.gzipped is None:
            answer = dataclasses.replace(answer, gzipped=gzipped(answer.body))
            self.cache.put(answer.etag, answer)
        assert answer.gzipped is not None
        return answer.gzipped

    def key_is_valid(self, scope: Scope, headers: Headers) -> bool:
        """With API keys configured, does the request carry one (in any of the four places)?"""
        if not self._private:
            return True
        presented = presented_keys(headers, scope["query_string"])
        return any_key_is_valid(presented, self.settings.api_keys)

    def repeat(self, scope: Scope) -> Response | None:
        """The answer to a request already answered at the current data version, from memory;
        ``None`` when the app must answer it (new, stale, not cached, or without a valid key)."""
        version = self.catalog.fresh_version()
        if version is None:
            return None
        seen = self.seen.get((scope["path"], scope["query_string"]))
        if seen is None:
            return None
        seen_version, etag, expires, route, link = seen
        if seen_version != version or (expires is not None and self.clock() >= expires):
            return None
        answer = self.cache.get(etag)
        if answer is None:
            return None
        headers = Headers(scope=scope)
        if not self.key_is_valid(scope, headers):
            return None  # the app answers 401
        scope[ROUTE_KEY] = route
        return self.respond(answer, headers, link)
