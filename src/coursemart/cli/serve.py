"""``coursemart serve``: the API and the web page, run by uvicorn."""

from __future__ import annotations

import copy
import logging
import os
import re
from typing import Annotated, Any

import typer

from coursemart.cli.app import app, err, say, settings
from coursemart.cli.options import WarehouseOption
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


@app.command()
def serve(
    *,
    warehouse: WarehouseOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: WorkersOption = 1,
) -> None:
    """Serve the read-only API and the web page at http://HOST:PORT (Ctrl-C stops)."""
    import uvicorn

    from coursemart.config import ENV_PREFIX

    if warehouse:  # workers are processes of their own: they read settings from the environment
        os.environ[f"{ENV_PREFIX}WAREHOUSE"] = warehouse
    config = settings()  # a bad setting fails here, with the usual one-line message
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
