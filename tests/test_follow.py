"""``coursemart load --follow``: each new version of the lake's table is loaded as it appears,
through trouble, one follower per warehouse, exactly once however it is stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from coursemart.generate import generate
from tests.conftest import WINDOW
from tests.test_faults import PrivateServer, private_postgres  # noqa: F401 - a fixture
from tests.test_load import course_count, expected_courses, stored_courses

#: Long enough for a loaded 2-core machine; a follower normally answers within seconds.
PATIENCE = 120.0


def follow_command(lake: Path, warehouse: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "coursemart",
        "load",
        "--follow",
        "--interval",
        "0.2",
        "--lake",
        str(lake),
        "--warehouse",
        warehouse,
        *extra,
    ]


class Follower:
    """A follower process whose output is kept in a file (never a full pipe)."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log
        self.handle = log.open("w")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("COURSEMART_")}
        self.process = subprocess.Popen(
            command, stdout=self.handle, stderr=subprocess.STDOUT, text=True, env=environment
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + PATIENCE
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"the follower ended ({what}): {self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {PATIENCE} s: {self.output()}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=PATIENCE)
        self.handle.close()
        return code


@contextmanager
def following(lake: Path, warehouse: str, log: Path) -> Iterator[Follower]:
    follower = Follower(follow_command(lake, warehouse), log)
    try:
        yield follower
    finally:
        follower.stop(signal.SIGKILL)


def test_a_follower_loads_each_new_version_as_it_appears_and_stops_between_loads(
    lake_dir: Path, sqlite_url: str, tmp_path: Path
) -> None:
    generate(str(lake_dir), courses=500, seed=1, window=WINDOW)
    with following(lake_dir, sqlite_url, tmp_path / "follow.log") as follower:
        follower.wait_for(lambda: "loaded 1 batch" in follower.output(), "first load")
        generate(str(lake_dir), courses=300, seed=2, window=WINDOW)
        generate(str(lake_dir), courses=200, seed=3, window=WINDOW, reschedule=0.1)
        follower.wait_for(lambda: course_count(sqlite_url) == 1_000, "new versions loaded")

        code = follower.stop(signal.SIGTERM)

    assert code == 0, follower.output()
    assert stored_courses(sqlite_url) == expected_courses(lake_dir)
    assert "Traceback" not in follower.output()


def test_a_second_follower_of_one_warehouse_says_so_and_exits(
    lake_dir: Path, sqlite_url: str, tmp_path: Path
) -> None:
    generate(str(lake_dir), courses=50, seed=1, window=WINDOW)
    with following(lake_dir, sqlite_url, tmp_path / "first.log") as first:
        first.wait_for(lambda: "loaded 1 batch" in first.output(), "first load")

        second = subprocess.run(
            follow_command(lake_dir, sqlite_url), capture_output=True, text=True, timeout=120
        )

        assert first.process.poll() is None
    assert second.returncode == 3
    assert second.stderr.strip().startswith("coursemart: error: another `coursemart load --follow`")
    assert len(second.stderr.strip().splitlines()) == 1


def test_a_follower_rides_out_a_database_outage_with_one_warning(
    lake_dir: Path,
    tmp_path: Path,
    private_postgres: PrivateServer,  # noqa: F811
) -> None:
    generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    url = private_postgres.url
    with following(lake_dir, url, tmp_path / "follow.log") as follower:
        follower.wait_for(lambda: "loaded 1 batch" in follower.output(), "first load")
        private_postgres.stop()
        generate(str(lake_dir), courses=100, seed=2, window=WINDOW)
        follower.wait_for(lambda: "warning" in follower.output(), "a warning")
        time.sleep(3)  # several failed attempts while the server is down
        private_postgres.start()
        follower.wait_for(lambda: "recovered after" in follower.output(), "recovery")
        follower.wait_for(lambda: course_count(url) == 200, "the version committed meanwhile")
        follower.stop(signal.SIGTERM)

    warnings = [line for line in follower.output().splitlines() if "warning" in line]
    assert len(warnings) == 2, follower.output()  # the outage, then its end
    assert stored_courses(url) == expected_courses(lake_dir)


@pytest.mark.parametrize("kills", [3])
def test_a_killed_follower_is_finished_exactly_by_the_next(
    lake_dir: Path, sqlite_url: str, tmp_path: Path, kills: int
) -> None:
    generate(str(lake_dir), courses=50_000, seed=1, window=WINDOW)
    for round_ in range(kills):
        follower = Follower(follow_command(lake_dir, sqlite_url), tmp_path / f"{round_}.log")
        generate(str(lake_dir), courses=20_000, seed=round_ + 2, window=WINDOW, reschedule=0.05)
        time.sleep(0.5 + round_)  # somewhere in its first loads
        follower.stop(signal.SIGKILL)

    expected = expected_courses(lake_dir)
    with following(lake_dir, sqlite_url, tmp_path / "last.log") as last:
        last.wait_for(lambda: loaded_all(sqlite_url, kills + 1), "catch-up")
        versions = course_versions(sqlite_url)
    assert stored_courses(sqlite_url) == expected
    assert versions == list(range(len(versions)))  # each version once


def loaded_all(url: str, versions: int) -> bool:
    """Whether the warehouse has loaded that many versions (False before it has tables)."""
    try:
        return len(course_versions(url)) == versions
    except Exception:  # noqa: BLE001 - no table yet
        return False


def course_versions(url: str) -> list[int]:
    from tests.test_load import query

    return [int(row[0]) for row in query(url, "SELECT version FROM coursemart_versions ORDER BY 1")]
