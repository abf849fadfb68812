"""``coursemart serve``: the API and the web page, run by uvicorn (``coursemart.api.server``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from coursemart.cli.app import app
from coursemart.cli.options import WarehouseOption

HostOption = Annotated[
    str,
    typer.Option(
        "--host",
        help="Address to listen on: 127.0.0.1 is this machine only, 0.0.0.0 every interface.",
    ),
]
PortOption = Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")]
WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers", min=1, help="Worker processes; each has its own connection pool and cache."
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
        help="text, or json (one object per line, with a request id). Default: "
        "COURSEMART_LOG_FORMAT, text.",
        show_default=False,
    ),
]


@app.command()
def serve(
    *,
    warehouse: WarehouseOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: WorkersOption = 1,
    access_log: AccessLogOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Serve the read-only API and the web page at http://HOST:PORT (Ctrl-C stops)."""
    from coursemart.api import server

    server.serve(
        warehouse=warehouse,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_format=log_format.value if log_format is not None else None,
    )
