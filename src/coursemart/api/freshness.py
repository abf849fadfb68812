"""How far the warehouse is behind the lake: the table's latest commit, the latest version
loaded from it, and the lag between them (``/v1/freshness`` and ``/metrics``).

The lake is looked at no more than once a second per app (delta-rs reads only the log's new
entries; on cloud storage one small listing), and only when one of those two routes is asked.
An app that cannot read the lake (none at ``COURSEMART_LAKE``, or unreachable) answers with the
lake's fields null: the API serves the warehouse whether or not it sees the lake.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from coursemart.api.catalog import as_utc
from coursemart.errors import CoursemartError

#: Seconds a look at the lake is reused for.
LAKE_TTL: Final = 1.0


@dataclass(frozen=True)
class LakeHead:
    """The lake table's latest commit."""

    table_id: str
    version: int
    committed_at: datetime


@dataclass(frozen=True)
class Lag:
    """The warehouse against the lake: ``loaded`` is the table's latest version in the
    warehouse's manifest (None when none is), ``waiting_since`` when the oldest commit not
    loaded yet was made (None when every commit is loaded)."""

    head: LakeHead
    loaded: int | None
    waiting_since: datetime | None

    @property
    def versions(self) -> int:
        """Commits in the lake not in the warehouse yet."""
        return self.head.version - (self.loaded if self.loaded is not None else -1)

    def seconds(self, now: float) -> float:
        """How long the oldest commit not loaded yet has waited (0 when none waits)."""
        if self.waiting_since is None:
            return 0.0
        return max(0.0, round(now - self.waiting_since.timestamp(), 3))


class LakeWatch:
    """The lake's latest commit, read at most once per ``ttl`` seconds (thread-safe)."""

    def __init__(
        self, url: str, *, ttl: float = LAKE_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.url = url
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._lake: Any | None = None
        self._table: Any | None = None
        self._head: tuple[float, LakeHead | None] | None = None
        self._times: dict[int, datetime] = {}

    def head(self) -> LakeHead | None:
        """The latest commit, or None when the lake cannot be read."""
        with self._lock:
            if self._head is not None and self._clock() - self._head[0] < self.ttl:
                return self._head[1]
            try:
                found = self._read_head()
            except (CoursemartError, OSError, ValueError, RuntimeError):
                self._table = None  # open it again next time: it may have been replaced
                found = None
            self._head = (self._clock(), found)
            return found

    def committed_at(self, version: int) -> datetime | None:
        """When ``version`` was committed (None when the log no longer holds it)."""
        with self._lock:
            try:
                return self._commit_time(version)
            except (CoursemartError, OSError, ValueError):
                return None

    def _commit_time(self, version: int) -> datetime:
        """When ``version`` was committed, read from its log entry once (the last 64 kept)."""
        if version not in self._times:
            self._times[version] = self._lake_now().commits(version, version)[0].timestamp
            if len(self._times) > 64:
                self._times.pop(next(iter(self._times)))
        return self._times[version]

    def _lake_now(self) -> Any:
        if self._lake is None:
            from coursemart.lake import open_lake

            self._lake = open_lake(self.url)
        return self._lake

    def _read_head(self) -> LakeHead | None:
        lake = self._lake_now()
        if self._table is None:
            if not lake.is_delta():
                return None
            self._table = lake.delta()
        else:
            self._table.update_incremental()
        version = int(self._table.version())
        return LakeHead(str(self._table.metadata().id), version, self._commit_time(version))


def lag(watch: LakeWatch, read_loaded: Callable[[str], int | None]) -> Lag | None:
    """The lag of the warehouse behind the lake (None when the lake cannot be read)."""
    head = watch.head()
    if head is None:
        return None
    loaded = read_loaded(head.table_id)
    waiting_since = None
    if loaded is None or loaded < head.version:
        oldest = 0 if loaded is None else loaded + 1
        waiting_since = watch.committed_at(oldest) or head.committed_at
    return Lag(head, loaded, as_utc(waiting_since) if waiting_since else None)
