"""The synthetic catalog: sizes, ids, determinism, realism, rescheduling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from coursemart import model, vocabulary
from coursemart.errors import InputError
from coursemart.generate import Window, course_chunk, default_window, generate
from coursemart.lake import open_lake
from tests.conftest import WINDOW, CliResult


def read_courses(lake_url: str | Path, batch_ids: list[str] | None = None) -> pa.Table:
    lake = open_lake(str(lake_url))
    ids = batch_ids if batch_ids is not None else lake.committed_batches()
    tables = [pa.Table.from_batches([rb]) for _, rb in lake.read_batches(ids)]
    return pa.concat_tables(tables).sort_by("course_id")


def test_one_million_courses_make_one_committed_batch_with_unique_ids(lake_dir: Path) -> None:
    result = generate(str(lake_dir), courses=1_000_000, seed=7, window=WINDOW)

    lake = open_lake(str(lake_dir))
    assert lake.committed_batches() == [result.batch_id]
    courses = read_courses(lake_dir)
    assert courses.num_rows == result.rows == 1_000_000
    ids = courses["course_id"].to_numpy()
    assert len(np.unique(ids)) == 1_000_000
    assert (ids.min(), ids.max()) == (1, 1_000_000)


def test_same_seed_on_empty_lakes_writes_identical_rows(tmp_path: Path) -> None:
    generate(str(tmp_path / "a"), courses=20_000, seed=42, window=WINDOW, chunk_rows=7_000)
    generate(str(tmp_path / "b"), courses=20_000, seed=42, window=WINDOW, chunk_rows=7_000)
    generate(str(tmp_path / "c"), courses=20_000, seed=43, window=WINDOW, chunk_rows=7_000)

    assert read_courses(tmp_path / "a").equals(read_courses(tmp_path / "b"))
    assert not read_courses(tmp_path / "a").equals(read_courses(tmp_path / "c"))


def test_second_run_continues_the_ids(lake_dir: Path) -> None:
    first = generate(str(lake_dir), courses=1_000, seed=1, window=WINDOW)
    second = generate(str(lake_dir), courses=500, seed=1, window=WINDOW)

    assert (second.first_id, second.last_id) == (1_001, 1_500)
    new_rows = read_courses(lake_dir, [second.batch_id])
    assert new_rows["course_id"].to_pylist() == list(range(1_001, 1_501))
    assert open_lake(str(lake_dir)).committed_batches() == [
        first.batch_id,
        second.batch_id,
    ]


def test_names_use_their_category_vocabulary_and_look_real() -> None:
    courses = course_chunk(seed=3, first_id=1, n=5_000, window=WINDOW).to_pylist()

    for row in courses:
        subjects = vocabulary.SUBJECTS[row["category_id"]]
        assert any(subject in row["course_name"] for subject in subjects), row
        assert row["course_name"] == row["course_name"].strip()
        assert "  " not in row["course_name"]
        assert len(row["course_name"]) <= model.MAX_NAME_LENGTH
    names = {row["course_name"] for row in courses}
    assert len(names) > 2_000, "names should vary"
    assert {row["category_id"] for row in courses} == {cid for cid, _ in model.CATEGORIES}
    assert {row["level_id"] for row in courses} == {lid for lid, _ in model.LEVELS}


def test_level_specific_closings_match_the_level() -> None:
    courses = course_chunk(seed=5, first_id=1, n=20_000, window=WINDOW).to_pylist()
    beginner_only = [c for c in courses if c["course_name"].endswith(" for Beginners")]

    assert beginner_only
    assert all(c["level_id"] == 101 for c in beginner_only)


def test_start_dates_fall_inside_the_window_on_quarter_hours() -> None:
    window = Window(date(2025, 3, 1), date(2025, 3, 31))
    dates = course_chunk(seed=1, first_id=1, n=10_000, window=window)["start_date"]

    assert pc.min(dates).as_py() >= datetime(2025, 3, 1, tzinfo=UTC)
    assert pc.max(dates).as_py() < datetime(2025, 4, 1, tzinfo=UTC)
    seconds = pc.cast(dates, pa.int64()).to_numpy() // 1_000_000
    assert np.all(seconds % 900 == 0)
    assert len(np.unique(seconds // 86_400)) == 31, "every day of the window is used"


def test_default_window_spans_past_and_future() -> None:
    window = default_window(date(2026, 11, 27))

    assert window.start < date(2026, 11, 27) < window.end


def test_part_files_are_zstd_parquet_sorted_by_start_date(lake_dir: Path) -> None:
    result = generate(str(lake_dir), courses=25_000, seed=1, window=WINDOW, chunk_rows=10_000)

    lake = open_lake(str(lake_dir))
    parts = lake.batch_files(result.batch_id)
    assert len(parts) == 3, "25,000 rows in chunks of 10,000"
    for part in parts:
        metadata = pq.ParquetFile(part).metadata
        assert metadata.row_group(0).column(0).compression == "ZSTD"
        table = pq.read_table(part)
        assert table.schema.equals(model.COURSES_SCHEMA, check_metadata=False)
        dates = table["start_date"].to_numpy()
        assert np.all(dates[:-1] <= dates[1:])


def test_reschedule_moves_existing_courses_keeping_id_and_name(lake_dir: Path) -> None:
    first = generate(str(lake_dir), courses=10_000, seed=1, window=WINDOW)
    later = Window(date(2027, 6, 1), date(2027, 6, 30))
    second = generate(str(lake_dir), courses=100, seed=1, window=later, reschedule=0.05)

    assert second.rescheduled == 500
    assert second.rows == 600
    original = {r["course_id"]: r for r in read_courses(lake_dir, [first.batch_id]).to_pylist()}
    moved = [
        r for r in read_courses(lake_dir, [second.batch_id]).to_pylist() if r["course_id"] <= 10_000
    ]
    assert len(moved) == 500
    assert len({r["course_id"] for r in moved}) == 500
    for row in moved:
        before = original[row["course_id"]]
        assert row["course_name"] == before["course_name"]
        assert (row["category_id"], row["level_id"]) == (before["category_id"], before["level_id"])
        assert row["start_date"].date() >= date(2027, 6, 1)


def test_reschedule_reads_other_writers_batches_and_keeps_each_course_as_it_stands(
    lake_dir: Path,
) -> None:
    """A batch appended by another Delta writer (nullable columns, large strings, as pyarrow,
    pandas and Spark write them) renames course 1, adds course 11 and leaves course 12 without a
    name. Rescheduling every course keeps the rename, moves course 11, and leaves course 12 (the
    loader would refuse its row) out."""
    from deltalake import write_deltalake

    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    other = pa.table(
        {
            "course_id": pa.array([1, 11, 12], pa.int64()),
            "course_name": pa.array(
                ["Renamed Elsewhere", "Added Elsewhere", None], pa.large_string()
            ),
            "category_id": pa.array([2, 3, 3], pa.int32()),
            "level_id": pa.array([101, 102, 102], pa.int32()),
            "start_date": pa.array([datetime(2026, 5, 1, 9, tzinfo=UTC)] * 3, model.TIMESTAMP),
            "batch_id": ["20990101T000000.000000Z-else"] * 3,
        }
    )
    write_deltalake(str(lake_dir / "courses"), other, mode="append", partition_by=["batch_id"])

    later = Window(date(2027, 6, 1), date(2027, 6, 30))
    moved = generate(str(lake_dir), courses=1, seed=2, window=later, reschedule=1.0)

    rows = {r["course_id"]: r for r in read_courses(lake_dir, [moved.batch_id]).to_pylist()}
    assert moved.rescheduled == 11 and sorted(rows) == [*range(1, 12), 13]
    assert (rows[1]["course_name"], rows[1]["category_id"]) == ("Renamed Elsewhere", 2)
    assert rows[11]["course_name"] == "Added Elsewhere"
    assert all(row["start_date"].date() >= date(2027, 6, 1) for row in rows.values())


def test_reschedule_on_an_empty_lake_moves_nothing(lake_dir: Path) -> None:
    result = generate(str(lake_dir), courses=10, seed=1, window=WINDOW, reschedule=0.5)

    assert (result.rescheduled, result.rows) == (0, 10)


def test_dimension_snapshots_hold_the_seed_rows(lake_dir: Path) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)

    lake = open_lake(str(lake_dir))
    categories = lake.read_dimension("categories", model.CATEGORIES_SCHEMA)
    levels = lake.read_dimension("levels", model.LEVELS_SCHEMA)
    assert [tuple(r.values()) for r in categories.to_pylist()] == list(model.CATEGORIES)
    assert [tuple(r.values()) for r in levels.to_pylist()] == list(model.LEVELS)
    assert (lake_dir / "categories.csv").read_text().splitlines()[
        0
    ] == '"category_id","category_name"'


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"courses": 0}, "--courses must be at least 1"),
        ({"courses": -5}, "--courses must be at least 1"),
        ({"courses": 10, "reschedule": 1.5}, "--reschedule must be a fraction"),
    ],
)
def test_bad_arguments_raise_input_errors(
    lake_dir: Path, kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        generate(str(lake_dir), **kwargs)  # type: ignore[arg-type]
    assert not lake_dir.exists(), "nothing is written for bad input"


def test_window_with_start_after_end_is_refused() -> None:
    with pytest.raises(InputError, match="--start 2026-05-01 is after --end 2026-01-01"):
        Window(date(2026, 5, 1), date(2026, 1, 1))


def test_generate_continues_after_odd_ids_in_the_lake(
    lake_dir: Path, cli: Callable[..., CliResult]
) -> None:
    from tests.test_load import write_raw_batch

    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    beyond = pa.array([0, 2**63 + 7], pa.uint64())  # ids beyond BIGINT are refused on loading
    write_raw_batch(lake_dir, pa.table({"course_id": beyond, "course_name": ["x", "y"]}))
    write_raw_batch(lake_dir, pa.table({"course_id": pa.array([-5], pa.int64())}))
    write_raw_batch(lake_dir, pa.table({"course_id": ["text ids are refused"]}))

    result = generate(str(lake_dir), courses=5, seed=2, window=WINDOW)

    assert (result.first_id, result.last_id) == (11, 15)
    write_raw_batch(lake_dir, pa.table({"course_id": pa.array([2**63 - 3], pa.int64())}))
    full = cli("generate", "-n", "5", "--lake", str(lake_dir))
    assert full.exit_code == 2
    assert "no room below 2^63 for 5 more" in full.stderr
