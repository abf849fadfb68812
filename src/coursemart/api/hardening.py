"""HTTP hardening for every answer: ``HEAD`` on every ``GET`` route, ``nosniff`` and frame
denial on every response, a bug's 500 included, no error kept by a cache (``no-store``), and the
original function's route in any case.

``HEAD`` is answered as the ``GET`` would be, status and headers included (its
``Content-Length`` too), without the body. The routes themselves only know ``GET``, and the
path as declared (``routes.canonical_path``); the layers outside (metrics, the access log) see
the request as it was sent.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coursemart.api.handlers import internal_error
from coursemart.api.routes import canonical_path

#: Sent with every response: no content sniffing, no framing (a key can be typed on the page
#: and in /docs, so neither may be framed by another site).
SECURITY_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
)
#: Sent with every error (4xx, 5xx) instead of any other ``Cache-Control``.
NO_STORE: Final = (b"cache-control", b"no-store")
#: Keys a router writes into its (copied) scope that the layers outside want to read.
ROUTING_KEYS: Final = ("route", "coursemart.route")


class Hardening:
    """ASGI middleware: ``HEAD`` as a bodiless ``GET``; security headers on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        path = canonical_path(scope["path"])
        # The server's own scope keeps HEAD, so that it sends no body either.
        inner = scope
        if head or path != scope["path"]:
            inner = {**scope, "method": "GET" if head else scope["method"], "path": path}

        started = False

        async def send_hardened(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [*message.get("headers", ()), *SECURITY_HEADERS]
                if message["status"] >= 400:  # an error is not for keeping: ask again
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append(NO_STORE)
                message["headers"] = headers
            elif head and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        try:
            await self.app(inner, receive, send_hardened)
        except Exception as exc:
            if started:
                raise
            # Answered here rather than by Starlette's outermost layer, so that it has the
            # headers (and the request id) every other answer has.
            await internal_error(scope["method"], scope["path"], exc)(scope, receive, send_hardened)
        finally:
            if inner is not scope:
                for key in ROUTING_KEYS:
                    if key in inner:
                        scope[key] = inner[key]
