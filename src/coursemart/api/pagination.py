"""Keyset cursors: the position after which the next page starts, as an opaque, signed token.

A cursor is the ``(start_date, course_id)`` of the last row of a page and the direction of the
listing, packed into 18 bytes (a version byte, a direction byte and two big-endian 64-bit
integers), followed by an 8-byte HMAC-SHA256 tag, and written as URL-safe base64 without padding
(35 characters). The tag's key is per deployment (see :func:`signing_key`), so every worker and
every instance behind a load balancer accepts the cursors the others wrote, and a cursor a client
edited is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar
from urllib.parse import parse_qsl, quote, urlencode

CURSOR_VERSION: Final = 2
#: Longest cursor accepted; real ones are 35 characters.
MAX_CURSOR_LENGTH: Final = 64
CURSOR_PATTERN: Final = r"^[A-Za-z0-9_-]+$"
NOT_A_CURSOR: Final = "is not a cursor returned by this API (use next_cursor as given)"

_LAYOUT: Final = struct.Struct(">BBqq")
_TAG_BYTES: Final = 8
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_ALPHABET: Final = re.compile(CURSOR_PATTERN)


class CursorError(ValueError):
    """The text is not a cursor this API wrote."""


@dataclass(frozen=True, order=True)
class Cursor:
    """The position after which a page starts, in the listing's direction."""

    start_date: datetime
    course_id: int
    descending: bool = True


Row = TypeVar("Row")


def signing_key(secret: str) -> bytes:
    """The HMAC key for cursors, from a per-deployment secret (``COURSEMART_CURSOR_KEY``, or
    the warehouse URL when none is set: every worker and instance of a deployment shares it)."""
    return hashlib.sha256(b"coursemart cursor\0" + secret.encode()).digest()


def _tag(key: bytes, packed: bytes) -> bytes:
    return hmac.digest(key, packed, "sha256")[:_TAG_BYTES]


def encode_cursor(cursor: Cursor, key: bytes) -> str:
    """``Cursor`` -> opaque signed URL-safe token (``start_date`` must be timezone-aware)."""
    microseconds = (cursor.start_date - _EPOCH) // _MICROSECOND
    packed = _LAYOUT.pack(CURSOR_VERSION, int(cursor.descending), microseconds, cursor.course_id)
    return base64.urlsafe_b64encode(packed + _tag(key, packed)).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, key: bytes) -> Cursor:
    """Opaque token -> ``Cursor``; ``CursorError`` for anything this API did not write with
    ``key``, including a token changed by a single bit."""
    if not token or len(token) > MAX_CURSOR_LENGTH or not _ALPHABET.match(token):
        raise CursorError(NOT_A_CURSOR)
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CursorError(NOT_A_CURSOR) from exc
    if data[:1] != bytes([CURSOR_VERSION]):
        if len(data) == 17 and data[:1] == b"\x01":  # written by the previous, unsigned format
            raise CursorError("comes from another version of this API: start again without it")
        raise CursorError(NOT_A_CURSOR)
    packed, tag = data[: _LAYOUT.size], data[_LAYOUT.size :]
    if len(data) != _LAYOUT.size + _TAG_BYTES or not hmac.compare_digest(tag, _tag(key, packed)):
        raise CursorError(NOT_A_CURSOR)
    _, descending, microseconds, course_id = _LAYOUT.unpack(packed)
    try:
        start_date = _EPOCH + microseconds * _MICROSECOND
    except OverflowError as exc:  # only a cursor signed with a leaked key can hold this
        raise CursorError("holds an impossible date: start again without it") from exc
    return Cursor(start_date, course_id, bool(descending))


def split_page(rows: Sequence[Row], limit: int) -> tuple[Sequence[Row], Row | None]:
    """Split the ``limit + 1`` rows fetched for a page into the page and, when another page
    follows, the page's last row (the cursor's position). The extra row only tells that another
    page exists."""
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, page[-1]


#: Parameters a next page's link does not carry over: the cursor (replaced) and an API key in
#: the query string (the API never writes a key back; a client sends it again, or in a header).
NOT_CARRIED: Final = frozenset({"cursor", "code"})


def next_page_link(path: str, query_string: bytes, cursor: str) -> str:
    """The ``Link`` header (RFC 8288) to the page after this one: the same path and parameters
    as the request's, with ``cursor`` set to ``cursor``. The target is a path, never a URL built
    from the request's ``Host``; a client resolves it against the URL it asked for."""
    pairs = [
        (name, value)
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        if name not in NOT_CARRIED
    ]
    query = urlencode([*pairs, ("cursor", cursor)], quote_via=quote)
    return f'<{quote(path)}?{query}>; rel="next"'
