"""ETags, the response cache and the data version's time to live."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from coursemart.api.caching import (
    Answer,
    RequestIndex,
    ResponseCache,
    Seen,
    cache_control,
    etag_matches,
    make_etag,
    seen_size,
)
from coursemart.api.catalog import Catalog
from tests.test_api import fill

ETAG = make_etag("20261127T102455Z-3f2a", ("recent", 50, None))


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        (ETAG, True),
        (f"W/{ETAG}", True),
        (f'"other", {ETAG}', True),
        (f'"other",{ETAG} ', True),
        ("*", True),
        ('"other"', False),
        (ETAG.strip('"'), False),
        (ETAG[:-2] + '"', False),
    ],
)
def test_if_none_match_is_compared_weakly(header: str | None, matches: bool) -> None:
    assert etag_matches(header, ETAG) is matches


def test_etags_differ_by_version_and_query_and_are_strong() -> None:
    tags = {
        make_etag("v1", ("recent", 50, None)),
        make_etag("v2", ("recent", 50, None)),
        make_etag("v1", ("recent", 51, None)),
        make_etag("", ("recent", 50, None)),
    }
    assert len(tags) == 4
    assert all(tag.startswith('"') and tag.endswith('"') for tag in tags)
    assert make_etag("v1", ("levels",)) == make_etag("v1", ("levels",))


@pytest.mark.parametrize(
    ("seconds", "private", "header"),
    [
        (10, False, "public, max-age=10"),
        (0, False, "public, max-age=0"),
        (60, True, "private, max-age=60"),
    ],
)
def test_cache_control(seconds: int, private: bool, header: str) -> None:
    assert cache_control(seconds, private=private) == header


def _answer(body: bytes) -> Answer:
    return Answer(body, f'"{body[:8].decode()}"')


def test_the_cache_drops_the_least_recently_used_entry() -> None:
    cache = ResponseCache(entries=2)
    cache.put("a", _answer(b"1"))
    cache.put("b", _answer(b"2"))
    assert cache.get("a") == _answer(b"1")  # now b is the oldest
    cache.put("c", _answer(b"3"))
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (_answer(b"1"), None, _answer(b"3"))
    assert len(cache) == 2


def test_the_cache_is_bounded_in_bytes() -> None:
    cache = ResponseCache(entries=100, max_bytes=100)
    for name in "abcdef":
        cache.put(name, _answer(name.encode() * 20))
    assert cache.size <= 100
    assert [cache.get(name) is not None for name in "abcdef"] == [False] + [True] * 5
    cache.put("huge", _answer(b"x" * 26))  # over a quarter of the budget: served, never kept
    assert cache.get("huge") is None
    cache.put("f", _answer(b"f"))  # replacing an entry frees its old size
    assert cache.size == 4 * 20 + 1


def test_remembered_requests_are_bounded_in_bytes_and_long_ones_are_not_kept() -> None:
    seen = RequestIndex(entries=1000, max_bytes=10_000)
    answered: Seen = ("1-20261127T1", ETAG, None, "/v1/levels", None)
    for number in range(1000):  # distinct 64 KB query strings: served, never remembered
        seen.put(("/v1/levels", b"q=%d&x=" % number + b"a" * 65_536), answered)
    assert len(seen) == 0 and seen.size == 0
    for number in range(1000):
        seen.put(("/v1/levels", b"q=%d&x=" % number + b"a" * 1_000), answered)
    assert 0 < seen.size <= 10_000 and len(seen) < 10
    assert seen.get(("/v1/levels", b"q=999&x=" + b"a" * 1_000)) == answered
    seen.put(("/v1/levels", b"q=999&x=" + b"a" * 1_000), answered)  # again: counted once
    assert seen.size == sum(seen_size(key, value) for key, value in seen._items.items())


def test_what_the_caches_hold_is_not_tracked_by_the_garbage_collector() -> None:
    import gc

    seen = RequestIndex()
    seen.put(("/v1/levels", b"limit=5"), ("1-20261127T1", ETAG, None))
    gc.collect()
    entry = seen.get(("/v1/levels", b"limit=5"))
    assert entry is not None and not gc.is_tracked(entry)
    assert not any(gc.is_tracked(key) for key in seen._items)


def test_the_data_version_is_read_once_per_time_to_live(tmp_path: Path, sqlite_url: str) -> None:
    fill(tmp_path / "lake", sqlite_url, courses=10, crowded=0)
    now = [100.0]
    catalog = Catalog(sqlite_url, version_ttl=1.0, clock=lambda: now[0])
    reads: list[str] = []
    sa.event.listen(
        catalog.open(),
        "before_cursor_execute",
        lambda *a: reads.append(a[2]) if a[2].startswith("SELECT") else None,
    )
    try:
        assert catalog.fresh_version() is None
        version = catalog.version()
        assert version and len(reads) == 1
        now[0] += 0.9
        assert catalog.fresh_version() == catalog.version() == version
        assert len(reads) == 1
        now[0] += 0.2
        assert catalog.fresh_version() is None
        assert catalog.version() == version
        assert len(reads) == 2
    finally:
        catalog.close()
