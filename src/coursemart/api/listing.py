"""What a course listing asks for, checked and normalized: one rule for the routes and the fast
path alike.

``order`` picks the direction and, unless ``since``/``until`` say otherwise, a bound at the
current minute:

* ``recent`` (the default, and the original function's order): every course, latest start first;
* ``upcoming``: courses starting from now on, soonest first;
* ``past``: courses that started before now, most recent first.

"Now" is the current minute (UTC), so that the same request asked twice within a minute is the
same query (one cache entry, one ETag); the listing moves on at the next minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from coursemart.api.pagination import Cursor, CursorError, decode_cursor
from coursemart.api.params import ParameterError, check_range, resolve_dimension
from coursemart.api.queries import CourseFilter
from coursemart.search import query_words

#: Largest page a listing returns.
MAX_LIMIT: Final = 1000
#: Longest search text accepted (``q``).
MAX_QUERY_LENGTH: Final = 200
#: Seconds an implicit "now" bound stays the same.
NOW_STEP: Final = 60


class Order(StrEnum):
    """The listings a client can ask for."""

    recent = "recent"
    upcoming = "upcoming"
    past = "past"

    @property
    def descending(self) -> bool:
        """Latest start first (``recent``, ``past``) or soonest first (``upcoming``)."""
        return self is not Order.upcoming


@dataclass(frozen=True)
class RecentQuery:
    """A checked listing request; ``key`` is its normalized form (what it means, not how it was
    spelled), which keys the answer cache and the ETag."""

    limit: int
    cursor: Cursor | None
    course_filter: CourseFilter
    descending: bool = True
    #: Epoch second at which an implicit "now" bound moves (the query means something else
    #: from then on); ``None`` when the query does not depend on the time.
    expires: float | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[object, ...]:
        return ("recent", self.limit, self.cursor, self.course_filter, self.descending)


def current_minute(now: float) -> datetime:
    """The start of the minute holding epoch second ``now``, aware UTC."""
    return datetime.fromtimestamp(now - now % NOW_STEP, UTC)


def recent_query(
    *,
    limit: int,
    cursor: str | None,
    category: str | None,
    level: str | None,
    since: datetime | None,
    until: datetime | None,
    order: Order,
    q: str | None = None,
    categories: Sequence[tuple[int, str]],
    levels: Sequence[tuple[int, str]],
    cursor_key: bytes,
    now: float,
) -> RecentQuery:
    """Check and normalize a listing's parameters (already parsed: ``since``/``until`` aware);
    ``ParameterError`` names the first bad one."""
    expires = None
    if order is Order.upcoming and since is None:
        since, expires = current_minute(now), now - now % NOW_STEP + NOW_STEP
    elif order is Order.past and until is None:
        until, expires = current_minute(now), now - now % NOW_STEP + NOW_STEP
    position = None
    if cursor is not None:
        try:
            position = decode_cursor(cursor, cursor_key)
        except CursorError as exc:
            raise ParameterError("cursor", str(exc)) from exc
        if position.descending != order.descending:
            raise ParameterError(
                "cursor", f"belongs to a listing in the other direction than order={order.value}"
            )
    check_range(since, until)
    words: tuple[str, ...] = ()
    if q is not None and q.strip():
        words = query_words(q)
        if not words:
            raise ParameterError("q", "holds no letter or digit to search for")
    course_filter = CourseFilter(
        category_id=None
        if category is None
        else resolve_dimension("category", category, categories),
        level_id=None if level is None else resolve_dimension("level", level, levels),
        since=since,
        until=until,
        words=words,
    )
    return RecentQuery(limit, position, course_filter, order.descending, expires)
