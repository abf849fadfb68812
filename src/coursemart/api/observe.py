"""The outermost layer: a request id, the request's latency and status in the metrics, and, when
turned on, one access-log line per request with API keys masked."""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coursemart.api.logs import CLIENT_REQUEST_ID, REQUEST_ID, mask_query
from coursemart.api.metrics import UNMATCHED, Metrics
from coursemart.masking import escape_controls, mask_values

access_logger = logging.getLogger("coursemart.access")
#: Where the fast path notes the route it answered (it answers before routing).
ROUTE_KEY: Final = "coursemart.route"
REQUEST_ID_HEADER: Final = b"x-request-id"
#: New request ids: random per process, then counted (unique without a random draw each).
_PROCESS: Final = secrets.token_hex(6)
_COUNTER: Final = itertools.count(1)


def route_label(scope: Scope) -> str:
    """The route template that answered (``/v1/courses/recent``, ``/static``), never the raw
    path: label values stay few whatever clients ask."""
    noted = scope.get(ROUTE_KEY)
    if noted is not None:
        return str(noted)
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RouteLabel:
    """ASGI wrapper that notes the route label of an app mounted under a prefix (``/static``):
    only FastAPI's own routes leave their route in the scope for :func:`route_label`."""

    def __init__(self, app: ASGIApp, label: str) -> None:
        self.app = app
        self.label = label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[ROUTE_KEY] = self.label
        await self.app(scope, receive, send)


def request_id(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when it is a short safe token, else a new random one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            text: str = value.decode("latin-1")
            if CLIENT_REQUEST_ID.match(text):
                return text
            break
    return f"{_PROCESS}-{next(_COUNTER):x}"


class Observe:
    """ASGI middleware: request id (echoed in ``X-Request-ID``), metrics, access log."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, *, access_log: bool, keys: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        #: The API keys: masked wherever a request put one (the query, the path, encoded).
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        token = REQUEST_ID.set(rid)
        header = (REQUEST_ID_HEADER, rid.encode("latin-1"))
        status = 500
        sent = 0

        async def send_observed(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe(route_label(scope), scope["method"], status, seconds)
            if self.access_log:
                self._log(scope, status, seconds, sent)
            REQUEST_ID.reset(token)

    def _log(self, scope: Scope, status: int, seconds: float, sent: int) -> None:
        """One access line. What the client sent is logged with the API keys masked (by name
        in the query, by value anywhere) and control characters escaped, so that no request
        can forge a line, recolour a terminal or leave a key in the log."""
        client = scope.get("client")
        address = f"{client[0]}:{client[1]}" if client else "-"
        query = self._shown(mask_query(scope["query_string"].decode("latin-1")))
        path = self._shown(scope["path"])
        target = f"{path}?{query}" if query else path
        duration_ms = round(seconds * 1000, 3)
        access_logger.info(
            '%s "%s %s HTTP/%s" %d %.1f ms',
            address,
            scope["method"],
            target,
            scope.get("http_version", "1.1"),
            status,
            duration_ms,
            extra={
                "client": address,
                "method": scope["method"],
                "path": path,
                "query": query or None,
                "status": status,
                "duration_ms": duration_ms,
                "bytes": sent,
            },
        )

    def _shown(self, text: str) -> str:
        return escape_controls(mask_values(text, self.keys))
