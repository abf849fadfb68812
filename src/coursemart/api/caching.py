"""HTTP caching: strong ETags from the data version, ``304 Not Modified``, and a response cache.

An answer depends only on the warehouse's data version and the request's normalized query, so
both make its ETag, and the ETag keys the in-process cache of serialized answers: between two
loads a repeated query is served from memory, and after a load every key is new.

The caches hold only strings, bytes and flat tuples of them, which Python's garbage collector
does not track: however full they are, a collection pass does not grow with them.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

from coursemart import __version__

#: Answers kept per process at most, and their total size; the least recently used go first.
CACHE_ENTRIES: Final = 4096
CACHE_BYTES: Final = 64 << 20
#: Exact requests remembered per process (for answering repeats before routing), and the bytes
#: they may take; a request longer than ``SEEN_REQUEST_BYTES`` is answered, never remembered
#: (distinct 64 KB query strings would otherwise hold a gigabyte).
SEEN_REQUESTS: Final = 16384
SEEN_BYTES: Final = 16 << 20
SEEN_REQUEST_BYTES: Final = 2048


def make_etag(version: str, query: Hashable) -> str:
    """A strong ETag for the answer to ``query`` at data ``version``."""
    digest = hashlib.blake2b(repr((__version__, version, query)).encode(), digest_size=16)
    return f'"{digest.hexdigest()}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Does an ``If-None-Match`` header match ``etag``? (weak comparison, as RFC 9110 asks)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = (part.strip().removeprefix("W/") for part in if_none_match.split(","))
    return etag in candidates


def cache_control(max_age: int, *, private: bool) -> str:
    """``Cache-Control`` for an answer; ``private`` when API keys guard it."""
    return f"{'private' if private else 'public'}, max-age={max_age}"


@dataclass(frozen=True, slots=True)
class Answer:
    """A serialized answer: its JSON body, its ETag, how many courses it holds, the cursor of
    the page after it (``None``: the last page, or not a page), and the body in gzip once a
    client has asked for it (``None`` before)."""

    body: bytes
    etag: str
    rows: int = 0
    next_cursor: str | None = None
    gzipped: bytes | None = None

    @property
    def size(self) -> int:
        """Bytes it holds, in both encodings."""
        return len(self.body) + (len(self.gzipped) if self.gzipped is not None else 0)


class ResponseCache:
    """A thread-safe LRU map from an ETag (data version and normalized query) to an ``Answer``.

    Bounded in entries and in bytes; a body larger than a quarter of the byte budget is not kept.
    """

    def __init__(self, entries: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[str, Answer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Answer | None:
        """The answer stored under ``key``, marked as recently used; ``None`` if absent."""
        with self._lock:
            answer = self._items.get(key)
            if answer is not None:
                self._items.move_to_end(key)
            return answer

    def put(self, key: str, answer: Answer) -> None:
        """Store ``answer`` (unless its body is too large), dropping the least recently used."""
        if answer.size > self.max_bytes // 4:
            return
        with self._lock:
            previous = self._items.pop(key, None)
            self.size += answer.size - (previous.size if previous is not None else 0)
            self._items[key] = answer
            while len(self._items) > self.entries or self.size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self.size -= dropped.size

    def __len__(self) -> int:
        return len(self._items)


#: What a request was answered with: the data version, the answer's ETag, the epoch second from
#: which the query means something else (``None``: never), the route's label for the metrics
#: (its template, never the path as sent) and the ``Link`` to the next page, if any. A plain
#: tuple of strings and a float, so that the garbage collector does not track it.
Seen = tuple[str, str, float | None, str, str | None]


def seen_size(request: tuple[str, bytes], seen: Seen) -> int:
    """About the bytes a remembered request holds: its path and query, and the texts of what it
    was answered with."""
    texts = (part for part in seen if isinstance(part, str))
    return len(request[0]) + len(request[1]) + sum(len(text) for text in texts)


class RequestIndex:
    """A thread-safe LRU map from an exact request (path, raw query string) to what it was
    answered with; bounded in entries and in bytes."""

    def __init__(self, entries: int = SEEN_REQUESTS, max_bytes: int = SEEN_BYTES) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[tuple[str, bytes], Seen] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, request: tuple[str, bytes]) -> Seen | None:
        """What ``request`` was last answered with, if remembered."""
        with self._lock:
            seen = self._items.get(request)
            if seen is not None:
                self._items.move_to_end(request)
            return seen

    def put(self, request: tuple[str, bytes], seen: Seen) -> None:
        """Remember how ``request`` was answered (unless the request is longer than
        :data:`SEEN_REQUEST_BYTES`), forgetting the least recently used."""
        if len(request[0]) + len(request[1]) > SEEN_REQUEST_BYTES:
            return
        with self._lock:
            previous = self._items.pop(request, None)
            if previous is not None:
                self.size -= seen_size(request, previous)
            self._items[request] = seen
            self.size += seen_size(request, seen)
            while len(self._items) > self.entries or self.size > self.max_bytes:
                dropped, was = self._items.popitem(last=False)
                self.size -= seen_size(dropped, was)

    def __len__(self) -> int:
        return len(self._items)
