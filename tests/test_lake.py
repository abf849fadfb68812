"""The lake: batch commit, listing, reading with pushdown, dimensions, rejected rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from coursemart import model
from coursemart.errors import LakeError
from coursemart.generate import course_chunk, generate
from coursemart.lake import new_id, open_lake
from tests.conftest import WINDOW


def test_a_batch_is_invisible_until_committed(lake_dir: Path) -> None:
    lake = open_lake(str(lake_dir), create=True)
    writer = lake.batch_writer(new_id(), model.COURSES_SCHEMA)
    writer.write_part(course_chunk(1, 1, 100, WINDOW))

    assert lake.committed_batches() == []
    assert lake.uncommitted_batches() == [writer.batch_id]
    writer.commit()
    assert lake.committed_batches() == [writer.batch_id]
    assert lake.uncommitted_batches() == []


def test_an_error_while_writing_leaves_no_batch(lake_dir: Path) -> None:
    lake = open_lake(str(lake_dir), create=True)
    with (
        pytest.raises(RuntimeError),
        lake.batch_writer(new_id(), model.COURSES_SCHEMA) as writer,
    ):
        writer.write_part(course_chunk(1, 1, 100, WINDOW))
        raise RuntimeError("disk full")

    assert lake.committed_batches() == []
    assert not (lake_dir / "courses" / f"batch_id={writer.batch_id}").exists()


def test_ids_sort_by_time() -> None:
    earlier = new_id(datetime(2026, 11, 27, 10, 24, 55, 1, tzinfo=UTC))
    later = new_id(datetime(2026, 11, 27, 10, 24, 55, 2, tzinfo=UTC))

    assert earlier.startswith("20261127T102455.000001Z-")
    assert earlier < later


def test_a_file_url_lake_is_written_and_read_like_its_folder(lake_dir: Path) -> None:
    url = f"file://{lake_dir}"
    result = generate(url, courses=3_000, seed=2, window=WINDOW, chunk_rows=1_000)

    lake = open_lake(url)
    assert lake.committed_batches() == [result.batch_id]
    assert open_lake(str(lake_dir)).committed_batches() == [result.batch_id]
    rows = sum(rb.num_rows for _, rb in lake.read_batches([result.batch_id]))
    assert rows == 3_000
    assert lake.max_course_id() == 3_000
    assert lake.read_dimension("levels").num_rows == 3
    assert DeltaTable(str(lake_dir / "courses")).version() == 0


def test_since_filter_is_pushed_down_and_exact(lake_dir: Path) -> None:
    result = generate(str(lake_dir), courses=300_000, seed=4, window=WINDOW, chunk_rows=300_000)
    lake = open_lake(str(lake_dir))
    since = datetime(2026, 10, 1, tzinfo=UTC)
    (path,) = lake.batch_files(result.batch_id)

    kept = pa.Table.from_batches(list(lake.read_file_batches(path, since=since)))
    everything = pa.Table.from_batches(list(lake.read_file_batches(path)))
    expected = everything.filter(pc.greater_equal(everything["start_date"], pa.scalar(since)))
    assert kept.num_rows == expected.num_rows > 0
    assert pc.min(kept["start_date"]).as_py() >= since


def test_max_course_id_reads_footers_of_committed_batches_only(lake_dir: Path) -> None:
    generate(str(lake_dir), courses=1_234, seed=1, window=WINDOW)
    lake = open_lake(str(lake_dir))
    orphan = lake.batch_writer(new_id(), model.COURSES_SCHEMA)
    orphan.write_part(course_chunk(1, 50_000, 10, WINDOW))  # never committed

    assert lake.max_course_id() == 1_234


def test_a_truncated_part_file_is_named_in_the_error(lake_dir: Path) -> None:
    result = generate(str(lake_dir), courses=1_000, seed=1, window=WINDOW)
    lake = open_lake(str(lake_dir))
    (path,) = lake.batch_files(result.batch_id)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])

    with pytest.raises(LakeError, match=rf"cannot read {path}"):
        list(lake.read_batches([result.batch_id]))


def test_dimensions_are_replaced_without_leaving_temporary_files(lake_dir: Path) -> None:
    lake = open_lake(str(lake_dir), create=True)
    lake.write_dimension("levels", model.levels_table())
    renamed = pa.table({"level_id": [101], "level_name": ["Novice"]}, model.LEVELS_SCHEMA)
    lake.write_dimension("levels", renamed)

    assert lake.read_dimension("levels").to_pylist() == [{"level_id": 101, "level_name": "Novice"}]
    assert sorted(p.name for p in lake_dir.iterdir()) == ["levels.csv"]


def test_a_missing_dimension_says_to_generate_first(lake_dir: Path) -> None:
    lake = open_lake(str(lake_dir), create=True)

    with pytest.raises(
        LakeError, match="categories.csv is missing: run `coursemart generate` first"
    ):
        lake.read_dimension("categories")


def test_rejected_rows_round_trip_with_their_reason(lake_dir: Path) -> None:
    lake = open_lake(str(lake_dir), create=True)
    rows = pa.table({"course_id": [1, 2], "reason": ["unknown category 9", "null course_name"]})

    path = lake.write_rejected("L1", rows)
    hidden = lake.read_rejected("L1")
    lake.publish_rejected("L1")

    assert path.endswith("_rejected/load_id=L1/part-00000.parquet")
    assert hidden == []  # until the load commits
    assert lake.read_rejected("L1") == rows.to_pylist()


def test_an_empty_part_file_does_not_stop_the_next_generate(lake_dir: Path) -> None:
    import pyarrow.parquet as pq

    first = generate(str(lake_dir), courses=50, seed=1, window=WINDOW)
    folder = lake_dir / "courses" / f"batch_id={first.batch_id}"
    pq.write_table(model.COURSES_SCHEMA.empty_table(), folder / "part-99999.parquet")

    second = generate(str(lake_dir), courses=10, seed=1, window=WINDOW)

    assert second.first_id == 51
