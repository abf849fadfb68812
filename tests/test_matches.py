"""A search's matches kept in memory: every page, whatever its filters, cursor and direction,
is the page the database's listing would give (here, the same rows sorted in Python)."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from coursemart.api.matches import Matches, MatchesKept
from coursemart.api.pagination import Cursor
from coursemart.api.queries import CourseFilter

START = datetime(2026, 1, 1, tzinfo=UTC)


def catalog(seed: int, size: int) -> list[tuple[datetime, int, int, int]]:
    """Courses with few distinct instants (many ties) and a few categories and levels."""
    chance = random.Random(seed)
    ids = chance.sample(range(1, size * 10), size)
    return [
        (
            START + timedelta(hours=chance.randrange(40)),
            course_id,
            chance.choice((1, 2, 3)),
            chance.choice((101, 102)),
        )
        for course_id in ids
    ]


def expected(
    rows: list[tuple[datetime, int, int, int]],
    course_filter: CourseFilter,
    cursor: Cursor | None,
    descending: bool,
) -> list[int]:
    kept = [
        row
        for row in rows
        if (course_filter.category_id in (None, row[2]))
        and (course_filter.level_id in (None, row[3]))
        and (course_filter.since is None or row[0] >= course_filter.since)
        and (course_filter.until is None or row[0] < course_filter.until)
    ]
    kept.sort(key=lambda row: (row[0], row[1]), reverse=descending)
    if cursor is not None:
        mark = (cursor.start_date, cursor.course_id)
        kept = [r for r in kept if ((r[0], r[1]) < mark if descending else (r[0], r[1]) > mark)]
    return [row[1] for row in kept]


@pytest.mark.parametrize("seed", range(40))
def test_paging_through_matches_gives_the_listing_in_order(seed: int) -> None:
    chance = random.Random(seed)
    rows = catalog(seed, chance.choice((0, 1, 7, 300)))
    found = Matches.of(rows, "1-a")
    course_filter = CourseFilter(
        category_id=chance.choice((None, 1, 3)),
        level_id=chance.choice((None, 102)),
        since=chance.choice((None, START + timedelta(hours=chance.randrange(-2, 42)))),
        until=chance.choice((None, START + timedelta(hours=chance.randrange(-2, 42)))),
    )
    descending = chance.random() < 0.5
    limit = chance.choice((1, 3, 50))

    walked: list[int] = []
    cursor: Cursor | None = None
    while True:
        page = found.page(course_filter, cursor, descending=descending, limit=limit)
        assert page == expected(rows, course_filter, cursor, descending)[:limit]
        walked.extend(page)
        if len(page) < limit:
            break
        last = next(row for row in rows if row[1] == page[-1])
        cursor = Cursor(last[0], last[1], descending)

    assert walked == expected(rows, course_filter, None, descending)


def test_instants_as_text_naive_or_aware_are_the_same_matches() -> None:
    aware = [(START + timedelta(minutes=i), i, 1, 101) for i in (3, 1, 2)]
    naive = [(moment.replace(tzinfo=None), *rest) for moment, *rest in aware]
    text = [(moment.strftime("%Y-%m-%d %H:%M:%S.%f"), *rest) for moment, *rest in naive]

    pages = [
        Matches.of(rows, "1-a").page(CourseFilter(), None, descending=True, limit=5)  # type: ignore[arg-type]
        for rows in (aware, naive, text)
    ]

    assert pages == [[3, 2, 1]] * 3


def test_kept_matches_stay_within_their_memory_budget() -> None:
    small = Matches.of(catalog(1, 100), "1-a")
    kept = MatchesKept(budget=small.nbytes * 3)
    for word in "abcdef":
        kept.put("v1", (word,), small)
    kept.put("v1", ("many",), None)

    assert kept.get("v1", ("a",)) == (False, None)  # the oldest dropped
    assert kept.get("v1", ("f",)) == (True, small)
    assert kept.get("v1", ("many",)) == (True, None)  # too many: remembered, not kept
    assert kept.get("v2", ("f",)) == (False, None)  # another data version


def test_matches_wanted_by_many_threads_at_once_are_read_once() -> None:
    kept = MatchesKept()
    found = Matches.of(catalog(2, 10), "1-a")
    reads: list[int] = []
    started = threading.Event()

    def read() -> Matches:
        reads.append(1)
        started.set()
        time.sleep(0.2)  # the other threads ask meanwhile
        return found

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(kept.get_or_read, "v1", ("a",), read)
        started.wait(5)
        others = [pool.submit(kept.get_or_read, "v1", ("a",), read) for _ in range(7)]
        answers = [first.result(), *(other.result() for other in others)]

    assert reads == [1]
    assert all(answer is found for answer in answers)


def test_a_failed_read_is_not_kept_and_the_next_asker_reads_again() -> None:
    kept = MatchesKept()
    found = Matches.of(catalog(3, 10), "1-a")

    def fail() -> Matches:
        raise OSError("the database went away")

    with pytest.raises(OSError, match="went away"):
        kept.get_or_read("v1", ("a",), fail)

    assert kept.get("v1", ("a",)) == (False, None)
    assert kept.get_or_read("v1", ("a",), lambda: found) is found
