"""Cancelled courses: a Delta delete in the lake (``coursemart cancel`` by ids or ``--before``, or
any other writer's delete) removes those courses from the warehouse at the next load, exactly
once, on SQLite, PostgreSQL and MariaDB; the view and both API routes stop listing them and
``status`` counts them; a greater batch that holds the course again brings it back, and a new
course never takes a cancelled one's id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable
from fastapi.testclient import TestClient

from coursemart.api import create_app
from coursemart.generate import Window, generate
from coursemart.lake import Lake, open_lake
from coursemart.load import CHECKPOINTS, load
from tests.conftest import WINDOW, CliResult, snapshot
from tests.test_api import settings_for
from tests.test_lineage import MAY, courses
from tests.test_load import expected_courses, query, run_load, stored_courses, write_raw_batch
from tests.test_versions import without_loads

Cli = Callable[..., CliResult]


def listed(url: str) -> dict[str, list[int]]:
    """The course ids that the view, ``/v1/courses/recent`` and ``/api/GetRecentCourses`` list
    (every course: the tests' catalogs are smaller than one page)."""
    view = query(url, "SELECT course_id FROM vw_most_recent_courses")
    with TestClient(create_app(settings_for(url))) as client:
        recent = client.get("/v1/courses/recent", params={"limit": 1000}).json()
        seed = client.get("/api/GetRecentCourses", params={"limit": 1000}).json()
    assert recent["next_cursor"] is None
    return {
        "view": sorted(int(str(row[0])) for row in view),
        "/v1/courses/recent": sorted(course["course_id"] for course in recent["data"]),
        "/api/GetRecentCourses": sorted(course["course_id"] for course in seed["data"]),
    }


def everywhere(ids: set[int]) -> dict[str, list[int]]:
    """What :func:`listed` returns when exactly ``ids`` are listed."""
    return dict.fromkeys(("view", "/v1/courses/recent", "/api/GetRecentCourses"), sorted(ids))


def course_ids(url: str) -> set[int]:
    return {int(str(row[0])) for row in query(url, "SELECT course_id FROM courses")}


def status_line(cli: Cli, lake_dir: Path, url: str) -> str:
    """The ``rows:`` line of ``coursemart status``."""
    result = cli("status", "--lake", str(lake_dir), "--warehouse", url)
    assert result.exit_code == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith("rows:"))


def test_cancelled_courses_leave_the_warehouse_and_every_listing_at_the_next_load(
    lake_dir: Path, warehouse_url: str, cli: Cli
) -> None:
    lake = str(lake_dir)
    generate(lake, courses=200, seed=1, window=WINDOW)
    load(lake, warehouse_url)
    newest = query(
        warehouse_url,
        "SELECT course_id FROM vw_most_recent_courses ORDER BY start_date DESC, course_id DESC",
    )
    gone = {int(str(newest[0][0])), int(str(newest[1][0])), 7}  # the first two listed, and one

    cancelled = cli("cancel", *map(str, sorted(gone)), "--lake", lake)
    untouched = listed(warehouse_url)
    loaded = cli("load", "--lake", lake, "--warehouse", warehouse_url)

    assert cancelled.exit_code == 0, cancelled.stderr
    assert cancelled.stdout.startswith("cancelled 3 course rows (version 1)")
    assert untouched == everywhere(set(range(1, 201)))  # until the next load
    assert loaded.exit_code == 0, loaded.stderr
    assert "(version 1, load " in loaded.stdout and "3 cancelled courses removed" in loaded.stdout
    assert course_ids(warehouse_url) == set(range(1, 201)) - gone
    assert listed(warehouse_url) == everywhere(set(range(1, 201)) - gone)
    assert status_line(cli, lake_dir, warehouse_url).endswith(", cancelled courses 3")


def test_a_cancellation_is_applied_exactly_once(lake_dir: Path, warehouse_url: str) -> None:
    lake = str(lake_dir)
    generate(lake, courses=50, seed=1, window=WINDOW)
    load(lake, warehouse_url)
    open_lake(lake).delete_courses([3, 4])

    first = load(lake, warehouse_url)
    applied = snapshot(warehouse_url)
    second = load(lake, warehouse_url)

    assert (first.versions, first.cancelled) == ((1,), 2)
    assert (second.status, second.versions, second.cancelled) == ("nothing to do", (), 0)
    assert without_loads(snapshot(warehouse_url)) == without_loads(applied)
    cancelled = query(warehouse_url, "SELECT version, rows_cancelled FROM coursemart_versions")
    assert sorted((int(str(v)), int(str(n))) for v, n in cancelled) == [(0, 0), (1, 2)]


def test_cancel_before_a_date_removes_the_courses_whose_current_row_starts_before_it(
    lake_dir: Path, warehouse_url: str, cli: Cli
) -> None:
    lake = str(lake_dir)
    first = generate(lake, courses=300, seed=1, window=WINDOW)
    later = Window(date(2027, 6, 1), date(2027, 6, 30))
    generate(lake, courses=10, seed=2, window=later, reschedule=0.2)  # 60 move to June 2027
    load(lake, warehouse_url)
    starts = {course: row[3] for course, row in stored_courses(warehouse_url).items()}
    early = {course for course, start in starts.items() if str(start) < "2026-04-01"}
    rows = open_lake(lake).read_batches([first.batch_id])
    first_starts = {r["course_id"]: r["start_date"] for _, rb in rows for r in rb.to_pylist()}
    moved_away = {
        course
        for course, start in first_starts.items()
        if start < datetime(2026, 4, 1, tzinfo=UTC) and course not in early
    }

    cancelled = cli("cancel", "--before", "2026-04-01", "--lake", lake)
    load(lake, warehouse_url)

    assert cancelled.exit_code == 0, cancelled.stderr
    assert 0 < len(early) < 300 and moved_away  # rescheduled out of the range: kept
    assert course_ids(warehouse_url) == set(starts) - early
    assert listed(warehouse_url) == everywhere(set(starts) - early)
    assert status_line(cli, lake_dir, warehouse_url).endswith(f", cancelled courses {len(early)}")


def test_a_course_re_added_by_a_greater_batch_comes_back(
    lake_dir: Path, warehouse_url: str, cli: Cli
) -> None:
    lake = str(lake_dir)
    generate(lake, courses=20, seed=1, window=WINDOW)
    load(lake, warehouse_url)
    assert cli("cancel", "5", "7", "9", "--lake", lake).exit_code == 0
    load(lake, warehouse_url)
    back = write_raw_batch(lake_dir, courses((5, "Back After a Load", MAY)))
    assert cli("cancel", "11", "--lake", lake).exit_code == 0
    again = write_raw_batch(lake_dir, courses((11, "Back in the Same Load", MAY)))

    load(lake, warehouse_url)

    assert course_ids(warehouse_url) == set(range(1, 21)) - {7, 9}
    returned = query(warehouse_url, "SELECT course_id, course_name, batch_id FROM courses")
    by_id = {int(str(row[0])): (row[1], row[2]) for row in returned}
    assert by_id[5] == ("Back After a Load", back)
    assert by_id[11] == ("Back in the Same Load", again)
    assert listed(warehouse_url) == everywhere(set(range(1, 21)) - {7, 9})


def test_a_delete_by_another_delta_writer_counts_as_a_cancellation(
    lake_dir: Path, warehouse_url: str, cli: Cli
) -> None:
    lake = str(lake_dir)
    generate(lake, courses=20, seed=1, window=WINDOW)
    load(lake, warehouse_url)

    DeltaTable(str(lake_dir / "courses")).delete("course_id = 5")
    result = load(lake, warehouse_url)

    assert (result.versions, result.cancelled) == ((1,), 1)
    assert course_ids(warehouse_url) == set(range(1, 21)) - {5}
    assert listed(warehouse_url) == everywhere(set(range(1, 21)) - {5})
    assert status_line(cli, lake_dir, warehouse_url).endswith(", cancelled courses 1")


def test_a_generate_after_a_cancellation_reschedules_courses_of_the_file_it_rewrote(
    lake_dir: Path,
) -> None:
    lake = str(lake_dir)
    first = generate(lake, courses=100, seed=1, window=WINDOW)  # one data file
    open_lake(lake).delete_courses([5])  # delta-rs rewrites it (view types)

    later = generate(lake, courses=10, seed=2, window=WINDOW, reschedule=0.5)

    table = open_lake(lake)
    names = {r["course_id"]: r["course_name"] for r in read_rows(table, first.batch_id)}
    moved = [r for r in read_rows(table, later.batch_id) if r["course_id"] <= 100]
    assert later.rescheduled == len(moved) == round(0.5 * 99)
    assert all(names[r["course_id"]] == r["course_name"] for r in moved)
    assert 5 not in names and 5 not in {r["course_id"] for r in moved}


def test_the_id_of_a_cancelled_course_is_never_given_to_a_new_one(lake_dir: Path, cli: Cli) -> None:
    lake = str(lake_dir)
    generate(lake, courses=20, seed=1, window=WINDOW)
    assert cli("cancel", "19", "20", "-q", "--lake", lake).exit_code == 0

    after_cancel = generate(lake, courses=2, seed=2, window=WINDOW)
    DeltaTable(str(lake_dir / "courses")).delete("course_id >= 21")  # another writer's delete
    after_delete = generate(lake, courses=2, seed=3, window=WINDOW)

    assert (after_cancel.first_id, after_cancel.last_id) == (21, 22)
    assert (after_delete.first_id, after_delete.last_id) == (23, 24)


def read_rows(lake: Lake, batch_id: str) -> list[dict[str, object]]:
    return [row for _, rb in lake.read_batches([batch_id]) for row in rb.to_pylist()]


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_a_load_killed_after_removing_cancelled_courses_is_finished_exactly_by_the_next(
    lake_dir: Path, warehouse_url: str, checkpoint: str, cli: Cli
) -> None:
    lake = str(lake_dir)
    generate(lake, courses=1_000, seed=1, window=WINDOW)
    load(lake, warehouse_url)
    assert cli("cancel", "3", "4", "5", "-q", "--lake", lake).exit_code == 0
    generate(lake, courses=200, seed=2, window=WINDOW, reschedule=0.1)  # after the delete
    before = snapshot(warehouse_url)

    killed = run_load(lake_dir, warehouse_url, COURSEMART_FAILPOINT=checkpoint)

    assert killed.returncode == -9, killed.stderr
    assert snapshot(warehouse_url) == before
    finished = run_load(lake_dir, warehouse_url)
    assert finished.returncode == 0, finished.stderr
    assert stored_courses(warehouse_url) == expected_courses(lake_dir)
    assert not course_ids(warehouse_url) & {3, 4, 5}
    versions = query(warehouse_url, "SELECT version, rows_cancelled FROM coursemart_versions")
    assert sorted((int(str(v)), int(str(n))) for v, n in versions) == [(0, 0), (1, 3), (2, 0)]
    assert status_line(cli, lake_dir, warehouse_url).endswith(", cancelled courses 3")


def test_an_update_in_place_by_another_writer_is_named_in_a_warning(
    lake_dir: Path, sqlite_url: str
) -> None:
    """coursemart follows appends and deletes; a row changed in place keeps its batch, so the
    warehouse cannot tell it won: the load says so, naming the version."""
    generate(str(lake_dir), courses=20, seed=1, window=WINDOW)
    load(str(lake_dir), sqlite_url)
    DeltaTable(str(lake_dir / "courses")).update(
        updates={"course_name": "'Renamed'"}, predicate="course_id = 3"
    )

    result = load(str(lake_dir), sqlite_url)

    assert result.versions == (1,)
    assert any(
        warning.startswith("version 1 (UPDATE) changed 1 rows in place")
        for warning in result.warnings
    ), result.warnings
