"""Keyset cursors: round trips, signatures, refusals, and splitting a fetched page."""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime

import pytest

from coursemart.api.pagination import (
    MAX_CURSOR_LENGTH,
    Cursor,
    CursorError,
    decode_cursor,
    encode_cursor,
    next_page_link,
    signing_key,
    split_page,
)

KEY = signing_key("sqlite:///data/warehouse.db")
OTHER_KEY = signing_key("a-secret-of-another-deployment")


@pytest.mark.parametrize(
    "cursor",
    [
        Cursor(datetime(2026, 3, 1, 9, 0, tzinfo=UTC), 42),
        Cursor(datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC), 2**62),
        Cursor(datetime(1970, 1, 1, tzinfo=UTC), 0, descending=False),
        Cursor(datetime(1901, 12, 31, 23, 59, 59, tzinfo=UTC), 1),
        Cursor(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), 7, descending=False),
    ],
)
def test_cursors_round_trip(cursor: Cursor) -> None:
    token = encode_cursor(cursor, KEY)
    assert len(token) <= MAX_CURSOR_LENGTH
    assert token.replace("-", "").replace("_", "").isalnum()
    assert decode_cursor(token, KEY) == cursor


def test_cursors_of_other_time_zones_encode_the_same_instant() -> None:
    utc = datetime(2026, 3, 1, 9, tzinfo=UTC)
    paris = datetime.fromisoformat("2026-03-01T10:00:00+01:00")
    assert encode_cursor(Cursor(utc, 5), KEY) == encode_cursor(Cursor(paris, 5), KEY)


def _token(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


GOOD = encode_cursor(Cursor(datetime(2026, 3, 1, 9, tzinfo=UTC), 42), KEY)


def _flip(token: str, bit: int) -> str:
    data = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    data[bit // 8] ^= 1 << (bit % 8)
    return _token(bytes(data))


@pytest.mark.parametrize("bit", range(0, 26 * 8, 7))
def test_a_cursor_changed_by_one_bit_is_refused(bit: int) -> None:
    with pytest.raises(CursorError, match="not a cursor"):
        decode_cursor(_flip(GOOD, bit), KEY)


def test_a_cursor_signed_by_another_deployment_is_refused() -> None:
    foreign = encode_cursor(Cursor(datetime(2026, 3, 1, 9, tzinfo=UTC), 42), OTHER_KEY)
    with pytest.raises(CursorError, match="not a cursor"):
        decode_cursor(foreign, KEY)


def test_an_edited_position_with_its_old_tag_is_refused() -> None:
    data = base64.urlsafe_b64decode(GOOD + "=")
    edited = data[:10] + struct.pack(">q", 41) + data[18:]  # another course id, same tag
    with pytest.raises(CursorError, match="not a cursor"):
        decode_cursor(_token(edited), KEY)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "not a cursor"),
        ("abc", "not a cursor"),
        ("A" * (MAX_CURSOR_LENGTH + 1), "not a cursor"),
        (GOOD + "=", "not a cursor"),
        (GOOD[:5] + "/" + GOOD[6:], "not a cursor"),
        (GOOD[:-2], "not a cursor"),
        (GOOD + "AA", "not a cursor"),
        (_token(struct.pack(">Bqq", 1, 0, 1)), "another version"),
        (_token(struct.pack(">BBqq", 3, 1, 0, 1) + b"12345678"), "not a cursor"),
    ],
)
def test_foreign_tokens_are_refused(token: str, message: str) -> None:
    with pytest.raises(CursorError, match=message):
        decode_cursor(token, KEY)


ROWS = [(datetime(2026, 3, day, tzinfo=UTC), 100 - day) for day in range(9, 0, -1)]


@pytest.mark.parametrize(
    ("fetched", "limit", "page", "last"),
    [
        (ROWS[:0], 3, [], None),
        (ROWS[:2], 3, ROWS[:2], None),
        (ROWS[:3], 3, ROWS[:3], None),
        (ROWS[:4], 3, ROWS[:3], ROWS[2]),
        (ROWS[:2], 1, ROWS[:1], ROWS[0]),
    ],
)
def test_a_page_ends_at_its_last_row_when_more_was_fetched(
    fetched: list[tuple[datetime, int]],
    limit: int,
    page: list[tuple[datetime, int]],
    last: tuple[datetime, int] | None,
) -> None:
    assert split_page(fetched, limit) == (page, last)


@pytest.mark.parametrize(
    ("path", "query", "link"),
    [
        ("/v1/courses/recent", b"", '</v1/courses/recent?cursor=NEXT>; rel="next"'),
        (
            "/v1/courses/recent",
            b"limit=5&category=art&cursor=OLD",
            '</v1/courses/recent?limit=5&category=art&cursor=NEXT>; rel="next"',
        ),
        (  # an API key is never written back; the rest as the request had it, re-encoded
            "/v1/courses/recent",
            b"code=s3cret&q=caf%C3%A9+au+lait&since=2026-03-01T09:00:00%2B02:00",
            "</v1/courses/recent?q=caf%C3%A9%20au%20lait&since=2026-03-01T09%3A00%3A00%2B02%3A00"
            '&cursor=NEXT>; rel="next"',
        ),
        (  # nothing a client sends can end the target early or add a parameter
            "/v1/courses/recent",
            b'q=a>b;c"d<e&limit=2',
            '</v1/courses/recent?q=a%3Eb%3Bc%22d%3Ce&limit=2&cursor=NEXT>; rel="next"',
        ),
    ],
)
def test_the_next_page_link_keeps_the_request_s_parameters(
    path: str, query: bytes, link: str
) -> None:
    assert next_page_link(path, query, "NEXT") == link
