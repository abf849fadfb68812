"""The server under a slow or hostile client: a request's head is bounded in bytes and in time,
and other clients are served meanwhile (``coursemart serve``, real sockets)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.conftest import empty_warehouse
from tests.serving import Served, serving

HEAD = b"GET /health HTTP/1.1\r\nHost: coursemart\r\n"


@pytest.fixture
def sqlite_warehouse(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    empty_warehouse(url)
    return url


def connect(served: Served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.port), timeout=30)


def answer(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return received


def response(client: socket.socket) -> bytes:
    """One whole response on a kept-alive connection: its head and ``Content-Length`` bytes."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += client.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += client.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_request_head_over_the_limit_is_answered_431_and_others_are_served(
    sqlite_warehouse: str,
) -> None:
    with serving(sqlite_warehouse, COURSEMART_MAX_HEAD_BYTES="4096") as served:
        clients = [connect(served) for _ in range(5)]
        for client in clients:  # headers that never end, as an attacker sends them
            client.sendall(HEAD + b"X-Padding: ")
            try:
                for _ in range(64):
                    client.sendall(b"a" * 8192)
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed by the server: what it should do
        assert served.status("/health") == 200  # meanwhile
        answers = []
        for client in clients:
            try:
                answers.append(answer(client))
            except ConnectionResetError:  # closed with our bytes unread: the answer was sent
                answers.append(b"HTTP/1.1 431 (reset)")
            client.close()
        under = connect(served)
        under.sendall(HEAD + b"X-Padding: " + b"a" * 3000 + b"\r\nConnection: close\r\n\r\n")
        fits = answer(under)
        under.close()
    assert all(received.startswith(b"HTTP/1.1 431 ") for received in answers), answers
    assert fits.startswith(b"HTTP/1.1 200 ")
    assert "request head over 4096 bytes from 127.0.0.1:" in served.log


def test_a_head_sent_too_slowly_is_answered_408_and_a_silent_connection_is_closed(
    sqlite_warehouse: str,
) -> None:
    with serving(sqlite_warehouse, COURSEMART_HEAD_SECONDS="1") as served:
        trickling, silent, prompt = connect(served), connect(served), connect(served)
        trickling.sendall(HEAD)  # and then nothing more
        started = time.monotonic()
        for byte in HEAD + b"Connection: close\r\n\r\n":  # slowly, but within the second
            prompt.sendall(bytes([byte]))
            time.sleep(0.005)
        served_in_time = answer(prompt)
        assert served.status("/health") == 200  # other clients meanwhile
        slow, nothing = answer(trickling), answer(silent)
        waited = time.monotonic() - started
        for client in (trickling, silent, prompt):
            client.close()
    assert served_in_time.startswith(b"HTTP/1.1 200 ")
    assert slow.startswith(b"HTTP/1.1 408 ")
    assert b"not received within 1 s" in slow
    assert nothing == b""
    assert waited < 20


def test_a_kept_alive_connection_gets_the_same_time_for_each_request(
    sqlite_warehouse: str,
) -> None:
    with serving(sqlite_warehouse, COURSEMART_HEAD_SECONDS="1") as served:
        client = connect(served)
        client.sendall(HEAD + b"\r\n")
        first = response(client)
        time.sleep(0.6)
        client.sendall(HEAD + b"\r\n")  # a second request, 0.6 s later: in time again
        second = response(client)
        time.sleep(0.6)
        client.sendall(HEAD)  # a third that never ends
        third = answer(client)
        client.close()
    assert first.startswith(b"HTTP/1.1 200 ")
    assert second.startswith(b"HTTP/1.1 200 ")
    assert third.startswith(b"HTTP/1.1 408 ")
