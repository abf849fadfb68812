"""``coursemart serve``: the API and the web page, run by uvicorn (``coursemart.api.server``)."""

from __future__ import annotations

import socket
from enum import StrEnum
from typing import Annotated

import typer

from coursemart.cli.app import app, settings
from coursemart.cli.options import WarehouseOption
from coursemart.errors import InputError

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


AccessLogOption = Annotated[
    bool | None,
    typer.Option(
        "--access-log/--no-access-log",
        help="One log line per request, API keys masked. Default: COURSEMART_ACCESS_LOG, off.",
        show_default=False,
    ),
]


class LogFormat(StrEnum):
    text = "text"
    json = "json"


LogFormatOption = Annotated[
    LogFormat | None,
    typer.Option(
        "--log-format",
        metavar="text|json",
        help="text, or json (one object per line, with a request id). Default: "
        "COURSEMART_LOG_FORMAT, text.",
        show_default=False,
    ),
]


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
    access_log: AccessLogOption = None,
    log_format: LogFormatOption = None,
    check: CheckOption = False,
) -> None:
    """Serve the read-only API and the web page at http://HOST:PORT (Ctrl-C stops)."""
    from coursemart.api import server

    if check:  # the settings as serving reads them, then the address
        config = settings()
        from coursemart.warehouse import Warehouse

        Warehouse.from_url(warehouse or config.warehouse_url)
        check_address(host, port)
        return
    check_address(host, port)

    server.serve(
        warehouse=warehouse,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_format=log_format.value if log_format is not None else None,
    )
