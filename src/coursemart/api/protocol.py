"""The HTTP/1.1 protocol ``coursemart serve`` speaks: uvicorn's httptools protocol with the two
bounds it lacks against a slow or hostile client.

- **A request's head** (request line and headers) may hold at most ``max_head_bytes``: a longer
  one is answered ``431`` and the connection closed. httptools keeps a header's bytes until the
  header ends, so without it one client's unfinished 50 MB header was 50 MB of the worker's
  memory.
- **It must arrive within ``head_seconds``** of the connection being made (or, on a kept-alive
  connection, of the request's first byte): a connection that sent nothing is then closed, one
  that sent part of a head is answered ``408``. Without it connections that trickle a byte now
  and then held a file descriptor each until none was left for other clients.

Between requests, uvicorn's keep-alive timeout (5 s) closes an idle connection; a body is read
under uvicorn's flow control (the API's routes take none).
"""

from __future__ import annotations

import asyncio
import functools
import http
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from coursemart.config import Settings

#: What a refused head is answered with.
TOO_LARGE: Final = http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
TOO_SLOW: Final = http.HTTPStatus.REQUEST_TIMEOUT


@functools.cache
def limits() -> tuple[int, float]:
    """``(max_head_bytes, head_seconds)`` of this process's settings, read once."""
    settings = Settings()
    return settings.max_head_bytes, settings.head_seconds


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; a request's head bounded in bytes and in time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes, self.head_seconds = limits()
        self.in_head = True  # reading a request's head (or waiting for the first one)
        self.head_bytes = 0  # bytes received since the head began (one read's worth over, at most)
        self.received = False  # whether the current head has a byte yet
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.head_timer = self.loop.call_later(self.head_seconds, self.head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.in_head:
            self.head_bytes += len(data)
            self.received = True
        super().data_received(data)
        if self.in_head and self.head_bytes > self.max_head_bytes:
            self.refuse(TOO_LARGE, f"request head over {self.max_head_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head, self.head_bytes, self.received = True, 0, True
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.head_seconds, self.head_timed_out)

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.stop_head_timer()
        super().on_headers_complete()

    def stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def head_timed_out(self) -> None:
        self.head_timer = None
        if not self.in_head or self.transport.is_closing():
            return
        if self.received:
            self.refuse(TOO_SLOW, f"request head not received within {self.head_seconds:g} s")
        else:
            self.transport.close()

    def refuse(self, status: http.HTTPStatus, reason: str) -> None:
        """Answer ``status`` with ``reason`` and close the connection."""
        if self.transport.is_closing():
            return
        self.in_head = False
        self.stop_head_timer()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        self.logger.warning("%s from %s: closed", reason, client)
        body = f"{status.phrase}: {reason}\n".encode()
        self.transport.write(
            b"".join(
                (
                    f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode(),
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                )
            )
        )
        self.transport.close()
