"""gzip for clients that ask for it (``Accept-Encoding``), made once per answer, not per request.

The catalog's answers are compressed by the service that caches them (``Service.respond``): the
gzip body is kept beside the plain one, so a cached answer is compressed once, on the first
request that asks for it. Everything else the app sends (``/openapi.json``, the page and its
static files, ``/metrics``) goes through :class:`Compression`, which compresses a response with
an ``ETag`` once per ETag and keeps it, and one without each time.

Each encoding of an answer has its own strong ETag (RFC 9110, 8.8.3): the gzip one is the plain
one with ``-gzip`` inside the quotes. ``If-None-Match`` is compared with the ETag of the encoding
the request gets (:func:`selected_etag`), by whoever answers ``304``: the service, the OpenAPI
route, :class:`StaticFiles`. Every answer that could be compressed says
``Vary: Accept-Encoding``, compressed or not, so that shared caches keep the two apart.
brotli and zstd are not offered: no library for them is installed with coursemart, and gzip
already takes a page of 1,000 courses from 190 KB to 17 KB.
"""

from __future__ import annotations

import functools
import gzip
import os
from typing import Final

from starlette import staticfiles
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, PathLike
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coursemart.api.caching import Answer, ResponseCache, etag_matches

#: Bodies smaller than this are sent as they are: gzip would save next to nothing.
MIN_SIZE: Final = 1024
#: Bodies larger than this are sent as they are by :class:`Compression` (none is, today).
MAX_SIZE: Final = 8 << 20
#: zlib's default level: a page of 1,000 courses in about 2 ms, 17 KB (level 9: 5 ms, 16.4 KB).
LEVEL: Final = 6
GZIP_SUFFIX: Final = "-gzip"
VARY: Final = "Accept-Encoding"
#: Content types worth compressing (``text/*`` besides).
COMPRESSIBLE: Final = frozenset(
    {"application/json", "application/javascript", "text/javascript", "image/svg+xml"}
)


@functools.lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str | None) -> bool:
    """Does an ``Accept-Encoding`` header accept gzip (RFC 9110, 12.5.3)? ``gzip``, its alias
    ``x-gzip``, or ``*``, with a q-value above 0; a named ``gzip`` wins over ``*``."""
    if not accept_encoding:
        return False
    named: bool | None = None
    anything = False
    for item in accept_encoding.split(","):
        coding, *parameters = (part.strip() for part in item.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        coding = coding.lower()
        if coding in ("gzip", "x-gzip"):
            named = weight > 0
        elif coding == "*":
            anything = weight > 0
    return anything if named is None else named


def gzipped(body: bytes) -> bytes:
    """``body`` in gzip, the same bytes every time (no timestamp in the header)."""
    return gzip.compress(body, LEVEL, mtime=0)


def gzip_etag(etag: str) -> str:
    """The ETag of the gzip encoding of the answer whose ETag is ``etag`` (weak stays weak)."""
    return f'{etag[:-1]}{GZIP_SUFFIX}"' if etag.endswith('"') else etag


def compressible(headers: Headers) -> bool:
    """May a ``200`` with these headers be compressed here? Of a type worth it, not encoded
    already, not one whose encoding its sender chose (``Vary: Accept-Encoding``), and neither
    too small nor too large."""
    if "content-encoding" in headers or VARY.lower() in headers.get("vary", "").lower():
        return False
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if not (media_type.startswith("text/") or media_type in COMPRESSIBLE):
        return False
    length = headers.get("content-length")
    return length is None or MIN_SIZE <= int(length) <= MAX_SIZE


def selected_etag(request: Headers, response: Headers) -> str | None:
    """The ETag of what :class:`Compression` makes of a ``200`` with these headers for this
    request: the gzip encoding's, or the response's own."""
    etag = response.get("etag")
    if etag is not None and accepts_gzip(request.get("accept-encoding")) and compressible(response):
        return gzip_etag(etag)
    return etag


def not_modified(request: Headers, response: Response) -> Response | None:
    """The ``304`` for ``response`` when the request's ``If-None-Match`` holds the ETag of the
    encoding it would get; ``None`` when the response is to be sent."""
    etag = selected_etag(request, response.headers)
    if etag is None or not etag_matches(request.get("if-none-match"), etag):
        return None
    headers = MutableHeaders(headers=NotModifiedResponse(response.headers).headers)
    headers["etag"] = etag
    if compressible(response.headers):
        headers.add_vary_header(VARY)
    return Response(status_code=304, headers=dict(headers))


class StaticFiles(staticfiles.StaticFiles):
    """Starlette's static files, whose ``304`` compares the ETag of the encoding the request
    gets (by date only when the request has no ``If-None-Match``)."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        request = Headers(scope=scope)
        response = FileResponse(full_path, status_code=status_code, stat_result=stat_result)
        if status_code != 200:
            return response
        if request.get("if-none-match"):
            return not_modified(request, response) or response
        return super().file_response(full_path, stat_result, scope, status_code)


class Compression:
    """ASGI middleware: gzip for the responses the service did not encode itself."""

    def __init__(self, app: ASGIApp, cache: ResponseCache | None = None) -> None:
        self.app = app
        #: Compressed bodies by path and ETag (as :class:`Answer`: the gzip body, its ETag).
        self.cache = cache or ResponseCache(entries=256, max_bytes=32 << 20)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = accepts_gzip(Headers(scope=scope).get("accept-encoding"))
        start: Message | None = None
        chunks: list[bytes] = []

        async def send_encoded(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                if message["status"] == 200 and compressible(headers):
                    headers.add_vary_header(VARY)
                    if wanted:  # held until the whole body is here
                        start = {**message, "headers": headers.raw}
                        return
                await send({**message, "headers": headers.raw})
            elif start is None or message["type"] != "http.response.body":
                await send(message)
            else:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send_gzipped(scope["path"], start, b"".join(chunks), send)

        await self.app(scope, receive, send_encoded)

    async def _send_gzipped(self, path: str, start: Message, body: bytes, send: Send) -> None:
        headers = MutableHeaders(raw=start["headers"])
        etag = headers.get("etag")
        if len(body) < MIN_SIZE:  # a response that did not say its length, and was short
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        key = f"{path}\0{etag}"
        kept = self.cache.get(key) if etag else None
        if kept is None:
            kept = Answer(gzipped(body), gzip_etag(etag) if etag else "")
            if etag:
                self.cache.put(key, kept)
        headers["content-encoding"] = "gzip"
        headers["content-length"] = str(len(kept.body))
        if etag:
            headers["etag"] = kept.etag
        await send({**start, "headers": headers.raw})
        await send({"type": "http.response.body", "body": kept.body})
