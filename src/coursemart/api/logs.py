"""The server's logs: text or JSON lines, a request id on each line written during a request,
and API keys masked in logged query strings by the same parsing the server reads them with.

``coursemart serve`` configures logging with :func:`log_config`; the access log is written by
the app (``api.observe``), not by uvicorn, so that its lines can carry the request id and the
masked query, and cost nothing when it is off.
"""

from __future__ import annotations

import contextvars
import logging
import re
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import parse_qsl

import orjson

#: The id of the request being answered, for every log line written while answering it.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "coursemart_request_id", default=None
)
#: Query parameter names whose values are never logged (``code`` is where the API reads a key).
SECRET_PARAMETERS: Final = frozenset({"code", "api_key", "apikey", "key", "x-api-key", "sig"})
#: A request id a client may choose (``X-Request-ID``); anything else is replaced by a new one.
CLIENT_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: Fields of a log record written as their own JSON keys when present.
FIELDS: Final = (
    "request_id",
    "client",
    "method",
    "path",
    "query",
    "status",
    "duration_ms",
    "bytes",
)
MASK: Final = "***"
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

LogFormat = Literal["text", "json"]


def _is_secret(raw_pair: str) -> bool:
    """Does one ``&``-separated piece of a query string carry a secret?

    The name is decoded as the server decodes it (``%63ode`` is ``code``), and each
    ``;``-separated part is looked at too (``a=1;code=KEY``), whether or not the ``;`` was
    percent-encoded.
    """
    for name, value in parse_qsl(raw_pair, keep_blank_values=True):
        for part in (f"{name}={value}").split(";"):
            if part.partition("=")[0].strip().casefold() in SECRET_PARAMETERS:
                return True
    return False


def mask_query(query_string: str) -> str:
    """A query string safe to log: the value of every piece that names a secret parameter is
    ``***``; everything else is kept as sent.

    >>> mask_query("limit=5&%63ode=abc&a=1;code=xyz")
    'limit=5&%63ode=***&a=***'
    """
    if not query_string:
        return query_string
    pieces = []
    for raw_pair in query_string.split("&"):
        if _is_secret(raw_pair):
            name = raw_pair.partition("=")[0]
            pieces.append(f"{name}={MASK}")
        else:
            pieces.append(raw_pair)
    return "&".join(pieces)


class RequestIdFilter(logging.Filter):
    """Gives every record the current request's id (``None`` outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class TextFormatter(logging.Formatter):
    """``time level logger: message [request id]``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [{request_id}]" if request_id else line


def log_config(log_format: LogFormat) -> dict[str, Any]:
    """The logging configuration ``coursemart serve`` hands to uvicorn (and so to every worker):
    uvicorn's and coursemart's loggers in one format; access lines on stdout, the rest on
    stderr."""
    formatter = {"()": f"{__name__}.{'JsonFormatter' if log_format == 'json' else 'TextFormatter'}"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "coursemart": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "coursemart.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
