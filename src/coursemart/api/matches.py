"""The courses a search matches, kept in memory per data version.

A search's matches are read once through the database's text index: each matching course's
start instant, id, category and level, as arrays in the listing's order. Every page of that
search, whatever its category, level, date range, cursor and direction, is then two binary
searches and a mask over those arrays, and a read of at most one page of rows by id. The same
words come back often (people search for the same things, and a page's "More" asks again), so
the index is asked once per words and data version, not once per page.

A search that matches more than :data:`MAX_MATCHES` courses is not kept: its first page comes
after a short scan of the listing in order (a course in every ``courses / matches``), which the
database does faster than it could hand over the matches.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from coursemart.api.pagination import Cursor
from coursemart.api.queries import CourseFilter

#: Searches matching more courses than this are answered by a scan in the listing's order.
MAX_MATCHES: Final = 100_000
#: PostgreSQL: words that a sample of the listing puts above this many matches are answered by
#: the scan without being counted. Counting and reading that many matches through the text index
#: takes about a second among 10^7 courses (a table row per match), while a page of the scan, read
#: from the listing index alone, comes after a few thousand index entries.
SCAN_MATCHES: Final = 50_000
#: Memory the kept matches may take in each process (32 bytes a match).
BYTES_KEPT: Final = 128 << 20
#: Matches read at once in each process: more only contend for the database's buffers and the
#: interpreter, and finish later.
READS_AT_ONCE: Final = 2
#: What a search that matches too many courses to keep costs in the memory budget.
TOO_MANY_BYTES: Final = 256

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND: Final = timedelta(microseconds=1)

#: One match as the database gives it: start instant (datetime, or ISO text from SQLite), id,
#: category id, level id.
MatchRow = tuple[datetime | str, int, int, int]
Array = npt.NDArray[np.int64]


def microseconds(moment: datetime) -> int:
    """An instant as microseconds since the epoch (naive instants are UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // MICROSECOND


def _instants(values: Sequence[datetime | str]) -> Array:
    """Start instants as microseconds since the epoch, converted at once: ISO text (SQLite's)
    by numpy, datetimes (naive UTC, or aware) by Arrow."""
    if values and isinstance(values[0], str):
        return np.array(values, dtype="datetime64[us]").astype(np.int64)
    instants = pa.array(values, type=pa.timestamp("us", tz="UTC"))
    return np.asarray(instants.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


@dataclass(frozen=True)
class Matches:
    """A search's matches in ascending ``(start, id)`` order, one array per column, and the
    data version they were read at (a page's rows must come from the same one)."""

    starts: Array
    ids: Array
    categories: Array
    levels: Array
    version: str

    @classmethod
    def of(cls, rows: Sequence[MatchRow], version: str) -> Matches:
        """The matches read from the database at ``version``, in any order."""
        if not rows:
            empty = np.empty(0, dtype=np.int64)
            return cls(empty, empty, empty, empty, version)
        starts_, ids_, categories_, levels_ = zip(*rows, strict=True)
        starts = _instants(starts_)
        ids = np.array(ids_, dtype=np.int64)
        order = np.lexsort((ids, starts))
        categories = np.array(categories_, dtype=np.int64)[order]
        levels = np.array(levels_, dtype=np.int64)[order]
        return cls(starts[order], ids[order], categories, levels, version)

    @property
    def nbytes(self) -> int:
        return self.starts.nbytes + self.ids.nbytes + self.categories.nbytes + self.levels.nbytes

    def page(
        self,
        course_filter: CourseFilter,
        cursor: Cursor | None,
        *,
        descending: bool,
        limit: int,
    ) -> list[int]:
        """The ids of up to ``limit`` matches after ``cursor`` in the listing's order."""
        low, high = self._bounds(course_filter, cursor, descending=descending)
        if low >= high:
            return []
        chosen: Array
        if course_filter.category_id is None and course_filter.level_id is None:
            if descending:
                chosen = self.ids[max(low, high - limit) : high][::-1]
            else:
                chosen = self.ids[low : min(high, low + limit)]
            return [int(course_id) for course_id in chosen]
        keep = np.ones(high - low, dtype=bool)
        if course_filter.category_id is not None:
            keep &= self.categories[low:high] == course_filter.category_id
        if course_filter.level_id is not None:
            keep &= self.levels[low:high] == course_filter.level_id
        positions = np.flatnonzero(keep)
        picked = positions[::-1][:limit] if descending else positions[:limit]
        return [int(course_id) for course_id in self.ids[low:high][picked]]

    def _bounds(
        self, course_filter: CourseFilter, cursor: Cursor | None, *, descending: bool
    ) -> tuple[int, int]:
        """The positions ``[low, high)`` within the date range and after the cursor."""
        low, high = 0, len(self.ids)
        if course_filter.since is not None:
            low = int(np.searchsorted(self.starts, microseconds(course_filter.since), "left"))
        if course_filter.until is not None:
            high = int(np.searchsorted(self.starts, microseconds(course_filter.until), "left"))
        if cursor is not None:
            moment = microseconds(cursor.start_date)
            first = int(np.searchsorted(self.starts, moment, "left"))
            last = int(np.searchsorted(self.starts, moment, "right"))
            same = self.ids[first:last]
            if descending:  # before (moment, id): the ids below it at the same moment
                high = min(high, first + int(np.searchsorted(same, cursor.course_id, "left")))
            else:
                low = max(low, first + int(np.searchsorted(same, cursor.course_id, "right")))
        return low, high


class MatchesKept:
    """Matches by ``(data version, words)``, least recently used dropped past a memory budget;
    ``None`` remembered for searches that match too many courses to keep. Safe to share between
    threads: the matches of some words are read by one thread while the others wait for them."""

    def __init__(self, budget: int = BYTES_KEPT) -> None:
        self._budget = budget
        self._used = 0
        self._kept: OrderedDict[tuple[str, tuple[str, ...]], Matches | None] = OrderedDict()
        self._reading: dict[tuple[str, tuple[str, ...]], threading.Event] = {}
        self._lock = threading.Lock()
        self._reads = threading.BoundedSemaphore(READS_AT_ONCE)

    def get(self, version: str, words: tuple[str, ...]) -> tuple[bool, Matches | None]:
        """``(known, matches)``: whether the search is known, and its matches if kept."""
        key = (version, words)
        with self._lock:
            if key not in self._kept:
                return False, None
            self._kept.move_to_end(key)
            return True, self._kept[key]

    def get_or_read(
        self, version: str, words: tuple[str, ...], read: Callable[[], Matches | None]
    ) -> Matches | None:
        """The matches of ``words`` at ``version``: kept, being read by another thread (then
        waited for), or read now by ``read`` and kept."""
        key = (version, words)
        while True:
            with self._lock:
                if key in self._kept:
                    self._kept.move_to_end(key)
                    return self._kept[key]
                other = self._reading.get(key)
                if other is None:
                    mine = self._reading[key] = threading.Event()
                    break
            other.wait()  # then kept, or failed (and this thread reads them)
        try:
            with self._reads:
                found = read()
            self.put(version, words, found)
            return found
        finally:
            with self._lock:
                del self._reading[key]
            mine.set()

    def put(self, version: str, words: tuple[str, ...], matches: Matches | None) -> None:
        key = (version, words)
        with self._lock:
            if key in self._kept:
                return
            self._kept[key] = matches
            self._used += _size(matches)
            while self._used > self._budget and len(self._kept) > 1:
                _, dropped = self._kept.popitem(last=False)
                self._used -= _size(dropped)


def _size(matches: Matches | None) -> int:
    return TOO_MANY_BYTES if matches is None else matches.nbytes + TOO_MANY_BYTES
