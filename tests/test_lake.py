"""The lake: batch commit, listing, reading with pushdown, dimensions, rejected rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
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


def commit_with_statistics(lake_dir: Path, ids: list[int], statistics: dict[str, object]) -> None:
    """Commit a part file holding ``ids`` with the Delta statistics another writer chose."""
    from deltalake.transaction import AddAction

    batch_id = new_id()
    folder = lake_dir / "courses" / f"batch_id={batch_id}"
    folder.mkdir(parents=True)
    rows = course_chunk(1, ids[0], len(ids), WINDOW)
    rows = rows.set_column(0, "course_id", pa.array(ids, pa.int64()))
    pq.write_table(rows, folder / "part-00000.parquet")
    size = (folder / "part-00000.parquet").stat().st_size
    stats = json.dumps({"numRecords": len(ids), **statistics})
    action = AddAction(
        f"batch_id={batch_id}/part-00000.parquet", size, {"batch_id": batch_id}, 0, True, stats
    )
    open_lake(str(lake_dir)).commit_files(batch_id, [action])


@pytest.mark.parametrize(
    "statistics",
    [
        {"minValues": {"course_id": 1}, "maxValues": {"course_id": 1}},  # false
        {},  # none
    ],
    ids=["false statistics", "no statistics"],
)
def test_new_ids_follow_the_data_whatever_another_writer_s_statistics_say(
    lake_dir: Path, statistics: dict[str, object]
) -> None:
    """A batch another writer committed holds ids 11-500 with statistics that say 1 (or
    nothing): the next generate starts at 501, so no course is overwritten; and the one after
    it, from coursemart's record, at 511."""
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    commit_with_statistics(lake_dir, list(range(11, 501)), statistics)

    after = generate(str(lake_dir), courses=10, seed=2, window=WINDOW)
    then = generate(str(lake_dir), courses=10, seed=3, window=WINDOW)

    assert (after.first_id, then.first_id) == (501, 511)


def test_ids_of_a_writer_that_committed_meanwhile_are_not_missed(lake_dir: Path) -> None:
    """Another writer commits between coursemart's reading the largest id and its commit: the
    commit's record covers the version it read, and the other writer's ids are read next time."""
    lake = open_lake(str(lake_dir))
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    largest, seen = lake.largest_course_id()
    writer = lake.batch_writer(new_id(), model.COURSES_SCHEMA)
    writer.continue_after(largest, seen)
    writer.write_part(course_chunk(1, largest + 1, 5, WINDOW))
    commit_with_statistics(lake_dir, list(range(100, 200)), {})  # lands first
    writer.commit()

    assert lake.max_course_id() == 199


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
