"""``coursemart serve`` started as users start it, for the tests that need a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.conftest import stop


@dataclass
class Served:
    port: int
    log: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def status(self, path: str) -> int:
        return self.get(path)[0]


@contextmanager
def serving(warehouse: str, *args: str, **env: str) -> Iterator[Served]:
    """``coursemart serve`` over ``warehouse`` on a free port, with no ``COURSEMART_`` setting
    but ``env``; its output ends up in ``log`` once it has stopped."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        served = Served(probe.getsockname()[1])
    command = [sys.executable, "-m", "coursemart", "serve", "--warehouse", warehouse]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COURSEMART_")}
    process = subprocess.Popen(
        [*command, "--port", str(served.port), *args],
        env={**environment, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its workers too can be stopped as one group
    )
    try:
        deadline = time.monotonic() + 90  # a busy machine starts workers slowly
        while True:
            try:
                served.get("/health")
                break
            except OSError:
                assert process.poll() is None, "coursemart serve exited"
                assert time.monotonic() < deadline, "coursemart serve did not answer"
                time.sleep(0.2)
        yield served
    finally:
        stop(process)
        try:  # a worker left behind by a server that had to be killed holds the output open
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        assert process.stdout is not None
        served.log = process.stdout.read()
