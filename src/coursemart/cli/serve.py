"""``coursemart serve``: the API and the web page, run by uvicorn."""

from __future__ import annotations

import copy
import logging
import os
import re
import socket
from typing import Annotated, Any

import typer

from coursemart.cli.app import app, err, say, settings
from coursemart.cli.options import WarehouseOption
from coursemart.errors import InputError
from coursemart.masking import mask_url

HostOption = Annotated[
    str,
    typer.Option(
        "--host",
        metavar="ADDRESS",
        help="Address to listen on: 127.0.0.1 is this machine only, 0.0.0.0 every interface.",
    ),
]
PortOption = Annotated[
    int, typer.Option("--port", min=1, max=65535, metavar="PORT", help="TCP port to listen on.")
]
WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        metavar="N",
        help="Worker processes; each has its own connection pool and cache.",
    ),
]


class HideQuerySecrets(logging.Filter):
    """Masks ``?code=<API key>`` (and other secret query values) in access-log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                hide_query_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def access_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, its access lines passed through HideQuerySecrets."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["hide_secrets"] = {"()": f"{__name__}.HideQuerySecrets"}
    config["handlers"]["access"]["filters"] = ["hide_secrets"]
    return config


def hide_query_secrets(path: str) -> str:
    """``/api/x?code=abc&limit=5`` -> ``/api/x?code=***&limit=5``."""
    return re.sub(r"(?i)([?&](?:code|api_key|key)=)[^&\s]*", r"\1***", path)


CheckOption = Annotated[
    bool,
    typer.Option(
        "--check",
        help="Only check the settings and that HOST:PORT is free, then exit (0 when serving "
        "would start).",
    ),
]


def check_address(host: str, port: int) -> None:
    """Refuse, in one line, an address another server already listens on: before any work."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(
            f"--host {host}: {exc.strerror}; give an address such as 127.0.0.1"
        ) from exc
    family, kind, _, _, address = found[0]
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InputError(
                f"port {port} on {host} is taken ({exc.strerror}): stop what uses it, or choose "
                f"another port with --port (make run PORT={port + 1})"
            ) from exc


@app.command()
def serve(
    *,
    warehouse: WarehouseOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: WorkersOption = 1,
    check: CheckOption = False,
) -> None:
    """Serve the read-only API and the web page at http://HOST:PORT (Ctrl-C stops)."""
    from coursemart.config import ENV_PREFIX

    if warehouse:  # workers are processes of their own: they read settings from the environment
        os.environ[f"{ENV_PREFIX}WAREHOUSE"] = warehouse
    config = settings()  # a bad setting fails here, with the usual one-line message
    check_address(host, port)
    if check:
        return
    import uvicorn

    where = f"http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})"
    say(f"serving {mask_url(config.warehouse_url)} at {where}")
    if not config.api_keys:
        err.print("coursemart: no API keys configured (COURSEMART_API_KEYS): the API is open")
    uvicorn.run(
        "coursemart.api:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        log_config=access_log_config(),
    )
