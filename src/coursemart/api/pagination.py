"""Keyset cursors: the position after which the next page starts, as an opaque, bounded token.

A cursor is the ``(start_date, course_id)`` of the last row of a page, packed into 17 bytes
(a version byte and two big-endian 64-bit integers) and written as URL-safe base64 without padding.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol, TypeVar

CURSOR_VERSION: Final = 1
#: Longest cursor accepted; real ones are 23 characters.
MAX_CURSOR_LENGTH: Final = 64
CURSOR_PATTERN: Final = r"^[A-Za-z0-9_-]+$"

_LAYOUT: Final = struct.Struct(">Bqq")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_ALPHABET: Final = re.compile(CURSOR_PATTERN)


class CursorError(ValueError):
    """The text is not a cursor this API wrote."""


@dataclass(frozen=True, order=True)
class Cursor:
    """The position after which a page starts: rows strictly older than this one come next."""

    start_date: datetime
    course_id: int


class Keyed(Protocol):
    """A row that has a keyset position."""

    @property
    def start_date(self) -> datetime: ...

    @property
    def course_id(self) -> int: ...


Row = TypeVar("Row", bound=Keyed)


def encode_cursor(cursor: Cursor) -> str:
    """``Cursor`` -> opaque URL-safe token (``start_date`` must be timezone-aware)."""
    microseconds = (cursor.start_date - _EPOCH) // _MICROSECOND
    packed = _LAYOUT.pack(CURSOR_VERSION, microseconds, cursor.course_id)
    return base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode_cursor(token: str) -> Cursor:
    """Opaque token -> ``Cursor``; ``CursorError`` for anything this API did not write."""
    if not token or len(token) > MAX_CURSOR_LENGTH or not _ALPHABET.match(token):
        raise CursorError("is not a cursor returned by this API (use next_cursor as given)")
    try:
        packed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        version, microseconds, course_id = _LAYOUT.unpack(packed)
    except (binascii.Error, ValueError, struct.error) as exc:
        raise CursorError(
            "is not a cursor returned by this API (use next_cursor as given)"
        ) from exc
    if version != CURSOR_VERSION:
        raise CursorError("comes from another version of this API: start again without it")
    try:
        start_date = _EPOCH + microseconds * _MICROSECOND
    except OverflowError as exc:
        raise CursorError("holds an impossible date: start again without it") from exc
    return Cursor(start_date, course_id)


def next_cursor(rows: Sequence[Row], limit: int) -> tuple[Sequence[Row], Cursor | None]:
    """Split the ``limit + 1`` rows fetched for a page into the page and the cursor after it.

    The extra row only tells that another page exists; the cursor is the page's last row.
    """
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    last = page[-1]
    return page, Cursor(last.start_date, last.course_id)
