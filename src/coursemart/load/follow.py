"""``coursemart load --follow``: load what is pending, then each new version of the lake's table
as it appears, until stopped.

- It polls the table's latest version every ``interval`` seconds (delta-rs reads only the log's
  new entries: on cloud storage one small listing per poll). Versions that arrived together
  load in one transaction, through the same load frame as ``coursemart load``.
- One follower per warehouse: it holds a lock of its own for its whole life (the load lock is
  still taken per load, so a one-off ``coursemart load`` beside it waits its turn).
- Trouble does not stop it: the lake or the warehouse unreachable, a damaged file. It retries
  with a backoff (doubling up to ``max_backoff``), with one warning line per outage and one
  when it recovers. A killed follower loses nothing: the next start finds the versions not in
  the manifest (exactly-once by version).
- SIGTERM or Ctrl-C ends it between loads; a load under way finishes first (a second signal
  interrupts it, and its transaction rolls back).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final

from coursemart.errors import CoursemartError, Terminated, failure_text, is_database_error
from coursemart.lake import Lake
from coursemart.load.backends import LockBusyError, backend_for
from coursemart.load.stage import EnginePart, LoadJob, LoadResult, run_load
from coursemart.warehouse import Warehouse

#: Seconds between two looks at the table's log when nothing fails.
DEFAULT_INTERVAL: Final = 0.5
#: The longest wait between two attempts during an outage.
MAX_BACKOFF: Final = 60.0


@dataclass(frozen=True)
class FollowEvents:
    """What a follower tells its caller: each load's result, and warnings (one per outage)."""

    loaded: Callable[[LoadResult], None]
    warn: Callable[[str], None]


class FollowerBusyError(CoursemartError):
    """Another follower holds the warehouse."""

    exit_code = 3


class Stop:
    """Set by SIGTERM/SIGINT: the follower ends between loads. A second signal interrupts."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise Terminated
        self.event.set()

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGTERM and SIGINT while following (in the main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        for sig in previous:
            signal.signal(sig, self)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@contextmanager
def follower_lock(target: Warehouse) -> Iterator[None]:
    """Hold the warehouse's follower lock for the ``with`` block, or refuse at once."""
    engine = target.engine()
    try:
        with engine.connect() as connection:
            backend = backend_for(connection, target.display)
            if not backend.hold_follow_lock():
                raise FollowerBusyError(
                    f"another `coursemart load --follow` is following {target.display}: "
                    "one follower per warehouse; stop it first, or leave it to load"
                )
            yield
    finally:
        engine.dispose()


def latest_version(lake: Lake, table: Any | None, seen: bool) -> tuple[Any | None, int | None]:
    """The table (kept between polls) and its latest version; (None, None) while there is no
    table yet. A table that was ``seen`` and is gone is an outage (:class:`LakeError`)."""
    if table is None:
        if not lake.is_delta():
            if seen:
                raise lake.not_a_table()
            return None, None
        table = lake.delta()
    else:
        table.update_incremental()
    return table, int(table.version())


def follow(
    job: LoadJob,
    make_part: Callable[[], EnginePart],
    events: FollowEvents,
    *,
    interval: float = DEFAULT_INTERVAL,
    max_backoff: float = MAX_BACKOFF,
    stop: Stop | None = None,
) -> None:
    """Load every pending version now, then each new one as it appears, until ``stop``."""
    stop = stop or Stop()
    with stop.installed(), follower_lock(job.warehouse):
        loaded_version: int | None = None
        table: Any | None = None
        outage: tuple[float, str] | None = None
        wait = interval
        while not stop.event.is_set():
            try:
                table, latest = latest_version(job.lake, table, loaded_version is not None)
                if latest is not None and (loaded_version is None or latest > loaded_version):
                    result = run_load(job, make_part())
                    if result.versions:
                        loaded_version = result.versions[-1]
                        events.loaded(result)
                    elif loaded_version is None:
                        loaded_version = latest  # nothing pending at the start
                if outage is not None:
                    events.warn(f"recovered after {time.monotonic() - outage[0]:.0f} s")
                    outage = None
                wait = interval
            except LockBusyError:
                wait = interval  # a one-off load holds the warehouse: its turn, then ours
            except Exception as exc:  # noqa: BLE001 - every failure is retried; bugs too, once shown
                if not retryable(exc):
                    raise
                table = None  # open the table again: it may have been replaced
                if outage is None:
                    outage = (time.monotonic(), failure_text(exc))
                    events.warn(
                        f"{failure_text(exc)} (retrying with a backoff up to {max_backoff:.0f} s;"
                        " one line per outage)"
                    )
                wait = min(max(wait * 2, interval), max_backoff)
            stop.event.wait(wait)


def retryable(exc: BaseException) -> bool:
    """Whether a failure may pass by itself (lake, storage or database trouble)."""
    if isinstance(exc, FollowerBusyError | Terminated):
        return False
    if isinstance(exc, CoursemartError | OSError | TimeoutError):
        return True
    if is_database_error(exc):
        return True
    module = type(exc).__module__.split(".")[0]
    return module in {"deltalake", "fsspec", "adlfs", "azure", "s3fs", "botocore", "aiohttp"}
