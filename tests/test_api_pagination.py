"""Keyset cursors: round trips, refusals, and splitting a fetched page."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from coursemart.api.pagination import (
    MAX_CURSOR_LENGTH,
    Cursor,
    CursorError,
    decode_cursor,
    encode_cursor,
    next_cursor,
)


@pytest.mark.parametrize(
    "cursor",
    [
        Cursor(datetime(2026, 3, 1, 9, 0, tzinfo=UTC), 42),
        Cursor(datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC), 2**62),
        Cursor(datetime(1970, 1, 1, tzinfo=UTC), 0),
        Cursor(datetime(1901, 12, 31, 23, 59, 59, tzinfo=UTC), 1),
        Cursor(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), 7),
    ],
)
def test_cursors_round_trip(cursor: Cursor) -> None:
    token = encode_cursor(cursor)
    assert len(token) <= MAX_CURSOR_LENGTH
    assert token.replace("-", "").replace("_", "").isalnum()
    assert decode_cursor(token) == cursor


def test_cursors_of_other_time_zones_encode_the_same_instant() -> None:
    utc = datetime(2026, 3, 1, 9, tzinfo=UTC)
    paris = datetime.fromisoformat("2026-03-01T10:00:00+01:00")
    assert encode_cursor(Cursor(utc, 5)) == encode_cursor(Cursor(paris, 5))


def _token(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "not a cursor"),
        ("abc", "not a cursor"),
        ("A" * (MAX_CURSOR_LENGTH + 1), "not a cursor"),
        ("AQAGb1KA2XQAAAAAAAAAATQ=", "not a cursor"),
        ("AQAGb1KA2XQ/AAAAAAAAATQ", "not a cursor"),
        (_token(struct.pack(">Bqq", 2, 0, 1)), "another version"),
        (_token(struct.pack(">Bqq", 1, 2**63 - 1, 1)), "impossible date"),
        (_token(struct.pack(">Bqq", 1, 0, 1) + b"x"), "not a cursor"),
    ],
)
def test_foreign_tokens_are_refused(token: str, message: str) -> None:
    with pytest.raises(CursorError, match=message):
        decode_cursor(token)


@dataclass(frozen=True)
class Row:
    start_date: datetime
    course_id: int


ROWS = [Row(datetime(2026, 3, day, tzinfo=UTC), 100 - day) for day in range(9, 0, -1)]


@pytest.mark.parametrize(
    ("fetched", "limit", "page", "cursor"),
    [
        (ROWS[:0], 3, [], None),
        (ROWS[:2], 3, ROWS[:2], None),
        (ROWS[:3], 3, ROWS[:3], None),
        (ROWS[:4], 3, ROWS[:3], Cursor(ROWS[2].start_date, ROWS[2].course_id)),
        (ROWS[:2], 1, ROWS[:1], Cursor(ROWS[0].start_date, ROWS[0].course_id)),
    ],
)
def test_next_cursor_is_the_last_row_when_more_was_fetched(
    fetched: list[Row], limit: int, page: list[Row], cursor: Cursor | None
) -> None:
    assert next_cursor(fetched, limit) == (page, cursor)
