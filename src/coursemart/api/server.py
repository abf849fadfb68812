"""``coursemart serve``: uvicorn with the app factory, the project's logging, and metrics shared
by every worker.

Workers are processes of their own that build the app from the environment, so what the command
line sets (warehouse, access log, log format) is handed to them as ``COURSEMART_*`` variables.
"""

from __future__ import annotations

import logging
import logging.config
import os
import resource
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from coursemart.api.logs import LogFormat, log_config
from coursemart.api.metrics import MULTIPROCESS_DIR
from coursemart.api.protocol import BoundedHttpToolsProtocol
from coursemart.config import ENV_PREFIX, Settings
from coursemart.masking import mask_url
from coursemart.warehouse import Warehouse

logger = logging.getLogger("coursemart.server")

#: Seconds a worker has to start (import the app, open its pool) and then to answer each of
#: uvicorn's health checks before it is replaced. uvicorn's 5 s is shorter than a worker's start
#: on a busy 2-core machine, where workers were then replaced for ever and none ever served.
WORKER_START_SECONDS: Final = 60


def raise_file_limit() -> None:
    """Let the server hold as many connections as the system allows: the soft limit on open
    files (often 1,024) raised to the hard one, for this process and the workers it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        logger.info("open files: up to %s (was %s)", hard, soft)


@contextmanager
def shared_metrics(workers: int) -> Iterator[str | None]:
    """With several workers, a fresh folder for prometheus-client's multiprocess mode (removed
    afterwards), unless ``PROMETHEUS_MULTIPROC_DIR`` already names one; else nothing."""
    if workers < 2 or os.environ.get(MULTIPROCESS_DIR):
        yield os.environ.get(MULTIPROCESS_DIR)
        return
    folder = tempfile.mkdtemp(prefix="coursemart-metrics-")
    os.environ[MULTIPROCESS_DIR] = folder
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROCESS_DIR, None)
        shutil.rmtree(folder, ignore_errors=True)


def serve(
    *,
    warehouse: str | None,
    host: str,
    port: int,
    workers: int,
    access_log: bool | None,
    log_format: LogFormat | None,
) -> None:
    """Serve the API until interrupted; options left ``None`` come from the settings."""
    import uvicorn

    if warehouse:
        os.environ[f"{ENV_PREFIX}WAREHOUSE"] = warehouse
    if access_log is not None:
        os.environ[f"{ENV_PREFIX}ACCESS_LOG"] = "true" if access_log else "false"
    if log_format is not None:
        os.environ[f"{ENV_PREFIX}LOG_FORMAT"] = log_format
    settings = Settings()  # a bad setting fails here, with the usual one-line message
    raise_file_limit()
    config = log_config(settings.log_format)
    logging.config.dictConfig(config)
    where = f"http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})"
    logger.info("serving %s at %s", mask_url(settings.warehouse_url), where)
    logger.info(
        "access log %s", "on (API keys masked)" if settings.access_log else "off (--access-log)"
    )
    if not settings.api_keys:
        logger.warning("no API keys configured (COURSEMART_API_KEYS): the API is open")
    missing = Warehouse.from_url(settings.warehouse_url).sqlite_file
    if missing is not None and not missing.exists():
        logger.warning(
            "no warehouse at %s yet: run `coursemart load` (or `make run`) to create it; "
            "until then /ready and the API answer 503",
            missing,
        )
    with shared_metrics(workers) as folder:
        if folder:
            logger.info(
                "metrics of the workers in %s (prometheus-client multiprocess mode)", folder
            )
        uvicorn.run(
            "coursemart.api:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            server_header=False,
            access_log=False,  # the app writes its own, masked (COURSEMART_ACCESS_LOG)
            # X-Forwarded-For only from the proxies named (uvicorn believes 127.0.0.1's)
            proxy_headers=bool(settings.forwarded_allow_ips),
            forwarded_allow_ips=",".join(settings.forwarded_allow_ips) or None,
            log_config=config,
            timeout_worker_healthcheck=WORKER_START_SECONDS,
            http=BoundedHttpToolsProtocol,  # a request's head bounded in bytes and time
        )
