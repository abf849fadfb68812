"""The loader, against real SQLite, PostgreSQL and MariaDB warehouses."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from coursemart import model, warehouse
from coursemart.errors import LakeError
from coursemart.generate import generate
from coursemart.lake import new_id, open_lake
from coursemart.load import CHECKPOINTS, load
from coursemart.load.validate import DimensionError
from tests.conftest import WINDOW, CliResult, empty_warehouse, new_warehouse, snapshot


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = warehouse.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def course_count(url: str) -> int:
    return int(query(url, "SELECT COUNT(*) FROM courses")[0][0])


def write_raw_batch(lake_dir: Path, *tables: pa.Table, batch_id: str | None = None) -> str:
    """Commit hand-made part files (any schema, nulls allowed) to the lake's Delta table as one
    version, as another writer could: the log names them, nothing checks what they hold."""
    from deltalake.transaction import AddAction

    batch_id = batch_id or new_id()
    lake = open_lake(str(lake_dir), create=True)
    folder = lake_dir / "courses" / f"batch_id={batch_id}"
    folder.mkdir(parents=True)
    actions = []
    for number, table in enumerate(tables):
        path = folder / f"part-{number:05d}.parquet"
        pq.write_table(table, path)
        stats = json.dumps({"numRecords": table.num_rows})
        actions.append(
            AddAction(
                f"batch_id={batch_id}/{path.name}",
                path.stat().st_size,
                {"batch_id": batch_id},
                0,
                True,
                stats,
            )
        )
    lake.commit_files(batch_id, actions)
    return batch_id


def expected_courses(lake_dir: Path) -> dict[int, tuple[object, ...]]:
    """What the warehouse must hold after loading the whole lake: later batches win."""
    lake = open_lake(str(lake_dir))
    latest: dict[int, tuple[object, ...]] = {}
    for _, record_batch in lake.read_batches(lake.committed_batches()):
        for row in record_batch.to_pylist():
            values = tuple(row.values())
            latest[row["course_id"]] = (*values[1:4], values[4].strftime("%Y-%m-%d %H:%M:%S"))
    return latest


def stored_courses(url: str) -> dict[int, tuple[object, ...]]:
    """The warehouse's courses, keyed like :func:`expected_courses`."""
    rows = query(
        url, "SELECT course_id, course_name, category_id, level_id, start_date FROM courses"
    )
    return {row[0]: (*row[1:4], str(row[4])[:19]) for row in rows}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_loading_twice_changes_nothing_the_second_time(lake_dir: Path, warehouse_url: str) -> None:
    generate(str(lake_dir), courses=3_000, seed=1, window=WINDOW)

    first = load(str(lake_dir), warehouse_url)
    before = snapshot(warehouse_url)
    second = load(str(lake_dir), warehouse_url)
    after = snapshot(warehouse_url)

    assert (first.status, first.rows_read, first.rows_loaded) == ("loaded", 3_000, 3_000)
    assert (second.status, second.batches, second.versions) == ("nothing to do", (), ())
    assert second.rows_read == 0
    assert course_count(warehouse_url) == 3_000
    assert before["courses"] == after["courses"]
    assert before["categories"] == after["categories"]
    assert before["coursemart_batches"] == after["coursemart_batches"]
    statuses = [row[3] for row in after["coursemart_loads"]]
    assert statuses == ["loaded", "nothing to do"]


def test_a_new_batch_adds_new_courses_and_a_rescheduled_course_keeps_one_row(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=2_000, seed=1, window=WINDOW)
    load(str(lake_dir), warehouse_url)
    later = generate(str(lake_dir), courses=500, seed=1, window=WINDOW, reschedule=0.1)

    result = load(str(lake_dir), warehouse_url)

    assert result.batches == (later.batch_id,)
    assert (result.rows_read, result.rows_loaded) == (700, 700)
    assert course_count(warehouse_url) == 2_500
    assert query(warehouse_url, "SELECT COUNT(DISTINCT course_id) FROM courses")[0][0] == 2_500
    moved = pa.Table.from_batches(
        [rb for _, rb in open_lake(str(lake_dir)).read_batches([later.batch_id])]
    ).filter(pa.compute.less_equal(pa.compute.field("course_id"), 2_000))
    assert moved.num_rows == 200
    in_warehouse = dict(
        query(warehouse_url, "SELECT course_id, start_date FROM courses WHERE course_id <= 2000")
    )
    for row in moved.to_pylist():
        stored = in_warehouse[row["course_id"]]
        stored = datetime.fromisoformat(str(stored)) if not isinstance(stored, datetime) else stored
        assert stored.replace(tzinfo=UTC) == row["start_date"]


def test_several_pending_batches_load_in_order_later_wins(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=1_000, seed=1, window=WINDOW)
    generate(str(lake_dir), courses=10, seed=2, window=WINDOW, reschedule=0.5)
    last = generate(str(lake_dir), courses=10, seed=3, window=WINDOW, reschedule=0.5)

    result = load(str(lake_dir), warehouse_url)

    assert len(result.batches) == 3
    assert course_count(warehouse_url) == 1_020
    lake = open_lake(str(lake_dir))
    final = {
        r["course_id"]: r["start_date"]
        for _, rb in lake.read_batches([last.batch_id])
        for r in rb.to_pylist()
    }
    stored = dict(query(warehouse_url, "SELECT course_id, start_date FROM courses"))
    for course_id, start in final.items():
        value = stored[course_id]
        value = datetime.fromisoformat(str(value)) if not isinstance(value, datetime) else value
        assert value.replace(tzinfo=UTC) == start


def test_since_loads_only_courses_starting_on_or_after_the_date(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=5_000, seed=1, window=WINDOW)
    since = utc(2026, 7, 1)

    result = load(str(lake_dir), warehouse_url, since=since)

    lake = open_lake(str(lake_dir))
    expected = sum(
        1
        for _, rb in lake.read_batches(lake.committed_batches())
        for r in rb.to_pylist()
        if r["start_date"] >= since
    )
    assert 0 < expected < 5_000
    assert course_count(warehouse_url) == result.rows_loaded == expected
    assert result.rows_skipped == 5_000 - expected
    earliest = query(warehouse_url, "SELECT MIN(start_date) FROM courses")[0][0]
    earliest = (
        datetime.fromisoformat(str(earliest)) if not isinstance(earliest, datetime) else earliest
    )
    assert earliest.replace(tzinfo=UTC) >= since


def bad_rows() -> pa.Table:
    """One good row and one row breaking each rule, in a schema that allows nulls."""
    name = "Applied Machine Learning with Python"
    rows = [
        (1, name, 1, 101, utc(2026, 3, 1, 9), None),
        (None, name, 1, 101, utc(2026, 3, 1, 9), "null course_id"),
        (2, None, 1, 101, utc(2026, 3, 1, 9), "null course_name"),
        (3, name, None, 101, utc(2026, 3, 1, 9), "null category_id"),
        (4, name, 1, None, utc(2026, 3, 1, 9), "null level_id"),
        (5, name, 1, 101, None, "null start_date"),
        (6, name, 1, 101, utc(2026, 3, 1, 9), "duplicate course_id"),
        (6, name, 2, 102, utc(2026, 4, 1, 9), "duplicate course_id"),
        (7, name, 9, 101, utc(2026, 3, 1, 9), "unknown category_id"),
        (8, name, 1, 999, utc(2026, 3, 1, 9), "unknown level_id"),
        (9, name, 1, 101, utc(1066, 10, 14, 9), "impossible start_date"),
        (10, name, 1, 101, utc(9999, 12, 31, 9), "impossible start_date"),
        (11, "x" * 201, 1, 101, utc(2026, 3, 1, 9), "over-long course_name"),
        (12, "   ", 1, 101, utc(2026, 3, 1, 9), "empty course_name"),
        (13, "Watercolor Landscapes for Beginners", 3, 101, utc(2026, 5, 1, 9), None),
    ]
    columns = list(zip(*rows, strict=True))
    return pa.table(
        {
            "course_id": pa.array(columns[0], pa.int64()),
            "course_name": pa.array(columns[1], pa.string()),
            "category_id": pa.array(columns[2], pa.int32()),
            "level_id": pa.array(columns[3], pa.int32()),
            "start_date": pa.array(columns[4], model.TIMESTAMP),
            "expected": pa.array(columns[5], pa.string()),
        }
    )


def test_each_kind_of_bad_row_is_rejected_with_its_reason(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)  # dimensions and 10 courses
    table = bad_rows()
    wrong_schema = pa.table({"course_id": ["a", "b"], "title": ["x", "y"]})
    batch_id = write_raw_batch(lake_dir, table, wrong_schema)

    result = load(str(lake_dir), warehouse_url)

    assert result.rows_read == 10 + table.num_rows + 2
    assert result.rows_read == result.rows_loaded + result.rows_rejected
    assert result.rows_loaded == 10 + 2
    assert result.rows_rejected == 13 + 2
    rejected = open_lake(str(lake_dir)).read_rejected(result.load_id)
    assert result.rejected_path and result.rejected_path.endswith(
        f"_rejected/load_id={result.load_id}"
    )
    assert {row["batch_id"] for row in rejected} == {batch_id}
    from_table = [r for r in rejected if not r["reason"].startswith("schema:")]
    expected = [reason for reason in table["expected"].to_pylist() if reason]
    assert len(from_table) == len(expected) == 13
    for row, reason in zip(from_table, expected, strict=True):
        assert row["reason"].startswith(reason), (row, reason)
    schema_rows = [r for r in rejected if r["reason"].startswith("schema:")]
    assert len(schema_rows) == 2
    assert "missing column course_name" in schema_rows[0]["reason"]
    assert "column course_id is string, expected int64" in schema_rows[0]["reason"]
    assert result.reasons["duplicate course_id"] == 2
    ids = {row[0] for row in query(warehouse_url, "SELECT course_id FROM courses")}
    assert {1, 13} <= ids and not ids & {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} - set(range(1, 11))


def test_text_stored_as_views_loads_like_text(lake_dir: Path, sqlite_url: str) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    rows = bad_rows().slice(0, 1).drop_columns(["expected"])
    viewed = rows.set_column(1, "course_name", rows["course_name"].cast(pa.string_view()))
    write_raw_batch(lake_dir, viewed)  # as DataFusion writes text (a delta-rs delete, Polars)

    result = load(str(lake_dir), sqlite_url)

    assert (result.rows_loaded, result.rows_rejected) == (11, 0)
    assert query(sqlite_url, "SELECT course_name FROM courses WHERE course_id = 1") == [
        ("Applied Machine Learning with Python",)
    ]


def test_an_unreadable_parquet_file_fails_the_load_and_writes_nothing(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=1_000, seed=1, window=WINDOW)
    load(str(lake_dir), warehouse_url)
    before = snapshot(warehouse_url)
    broken = generate(str(lake_dir), courses=200_000, seed=2, window=WINDOW, chunk_rows=100_000)
    path = open_lake(str(lake_dir)).batch_files(broken.batch_id)[1]
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 3] + b"\0" * (len(data) - len(data) // 3))

    with pytest.raises(LakeError, match=f"cannot read {path}"):
        load(str(lake_dir), warehouse_url)

    after = snapshot(warehouse_url)
    assert after["courses"] == before["courses"]
    assert after["coursemart_batches"] == before["coursemart_batches"]
    assert [row[3] for row in after["coursemart_loads"]] == ["loaded", "failed"]
    assert path in after["coursemart_loads"][-1][9]
    assert not (lake_dir / "_rejected").exists()


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_a_file_the_log_names_that_is_damaged_or_missing_fails_the_load_until_it_is_restored(
    lake_dir: Path, warehouse_url: str, cli: Callable[..., CliResult], damage: str
) -> None:
    generate(str(lake_dir), courses=1_000, seed=1, window=WINDOW)
    load(str(lake_dir), warehouse_url)
    before = snapshot(warehouse_url)
    broken = generate(str(lake_dir), courses=200_000, seed=2, window=WINDOW, chunk_rows=100_000)
    path = Path(open_lake(str(lake_dir)).batch_files(broken.batch_id)[1])
    whole = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(whole[: len(whole) // 3])  # a copy still under way
    else:
        path.unlink()

    failed = cli("load", "--lake", str(lake_dir), "--warehouse", warehouse_url)
    after = snapshot(warehouse_url)
    path.write_bytes(whole)
    loaded = load(str(lake_dir), warehouse_url)

    assert failed.exit_code == 1
    assert failed.stderr.startswith("coursemart: error: ") and str(path) in failed.stderr
    said = "is missing, though version 1 of the table names it" if damage == "missing" else ""
    assert said in failed.stderr
    assert failed.stderr.count("\n") == 1 and "from a copy" in failed.stderr
    assert {k: v for k, v in after.items() if k != "coursemart_loads"} == {
        k: v for k, v in before.items() if k != "coursemart_loads"
    }
    assert [row[3] for row in after["coursemart_loads"]] == ["loaded", "failed"]
    assert not (lake_dir / "_rejected").exists()
    assert (loaded.batches, loaded.versions) == ((broken.batch_id,), (1,))
    assert course_count(warehouse_url) == 201_000


def test_a_renamed_category_is_merged_and_missing_ones_are_kept(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    load(str(lake_dir), warehouse_url)
    lake = open_lake(str(lake_dir))
    renamed = pa.table(
        {"category_id": [1, 3], "category_name": ["Computing", "Arts"]}, model.CATEGORIES_SCHEMA
    )
    lake.write_dimension("categories", renamed)
    generate(str(lake_dir), courses=10, seed=2, window=WINDOW)
    lake.write_dimension("categories", renamed)  # generate rewrote the seed rows

    load(str(lake_dir), warehouse_url)

    names = dict(query(warehouse_url, "SELECT category_id, category_name FROM categories"))
    assert names == {1: "Computing", 2: "Business", 3: "Arts", 4: "Science", 5: "Health"}


def test_a_bad_dimension_row_fails_the_load_naming_the_line(
    lake_dir: Path, sqlite_url: str
) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    (lake_dir / "levels.csv").write_text('"level_id","level_name"\n101,"Beginner"\n101,"Again"\n')

    with pytest.raises(DimensionError, match=r"levels.csv line 3: level_id 101 .* repeats"):
        load(str(lake_dir), sqlite_url)
    assert snapshot(sqlite_url)["courses"] == []


def test_schema_creation_is_idempotent(warehouse_url: str) -> None:
    engine = warehouse.create_engine(warehouse_url)
    try:
        with engine.begin() as connection:
            created = warehouse.ensure_schema(connection)
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            before = {t: inspector.get_columns(t) for t in inspector.get_table_names()}
            indexes = inspector.get_indexes("courses")
        with engine.begin() as connection:
            again = warehouse.ensure_schema(connection)
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            after = {t: inspector.get_columns(t) for t in inspector.get_table_names()}
            views = inspector.get_view_names()
    finally:
        engine.dispose()

    search = "courses_search" if warehouse_url.startswith("sqlite") else "ix_courses_search"
    assert set(created) == {
        "categories",
        "levels",
        "courses",
        "coursemart_batches",
        "coursemart_versions",
        "coursemart_columns",
        "coursemart_loads",
        "coursemart_search",
        "vw_most_recent_courses",
        search,
    }
    assert again == []
    assert repr(before) == repr(after)
    assert "vw_most_recent_courses" in views
    assert [
        i["column_names"] for i in indexes if i["name"] == "ix_courses_start_date_course_id"
    ] == [["start_date", "course_id"]]


def test_the_view_joins_names_for_every_course(lake_dir: Path, warehouse_url: str) -> None:
    generate(str(lake_dir), courses=500, seed=1, window=WINDOW)
    load(str(lake_dir), warehouse_url)

    rows = query(
        warehouse_url,
        "SELECT course_id, category_id, category_name, level_id, level_name "
        "FROM vw_most_recent_courses",
    )

    assert len(rows) == 500
    categories, levels = dict(model.CATEGORIES), dict(model.LEVELS)
    assert all(categories[r[1]] == r[2] and levels[r[3]] == r[4] for r in rows)


def load_command(lake_dir: Path, url: str) -> list[str]:
    """``coursemart load`` of ``lake_dir`` into ``url``, as a subprocess command."""
    return [sys.executable, "-m", "coursemart", "load", "--lake", str(lake_dir), "--warehouse", url]


def run_load(lake_dir: Path, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*load_command(lake_dir, url), "-q"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_sigkill_at_any_point_leaves_the_warehouse_as_before_and_the_next_load_completes(
    lake_dir: Path, warehouse_url: str, checkpoint: str
) -> None:
    generate(str(lake_dir), courses=1_000, seed=1, window=WINDOW)
    load(str(lake_dir), warehouse_url)
    generate(str(lake_dir), courses=2_000, seed=2, window=WINDOW, reschedule=0.2)
    generate(str(lake_dir), courses=2_000, seed=3, window=WINDOW, reschedule=0.2)
    before = snapshot(warehouse_url)

    killed = run_load(lake_dir, warehouse_url, COURSEMART_FAILPOINT=checkpoint)

    assert killed.returncode == -9, killed.stderr
    assert snapshot(warehouse_url) == before
    finished = run_load(lake_dir, warehouse_url)
    assert finished.returncode == 0, finished.stderr
    assert course_count(warehouse_url) == 5_000
    assert query(warehouse_url, "SELECT COUNT(*) FROM coursemart_batches")[0][0] == 3
    assert stored_courses(warehouse_url) == expected_courses(lake_dir)


def test_two_loads_started_together_one_loads_the_other_waits(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=300_000, seed=1, window=WINDOW)
    command = [*load_command(lake_dir, warehouse_url), "--wait", "240"]  # a busy machine
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [process.communicate(timeout=300) for process in (first, second)]

    assert [first.returncode, second.returncode] == [0, 0], outputs
    summaries = sorted(out.strip() for out, _ in outputs)
    assert summaries[0].startswith("loaded 1 batch"), summaries
    assert summaries[1].startswith("nothing to do"), summaries
    assert course_count(warehouse_url) == 300_000
    assert query(warehouse_url, "SELECT COUNT(*) FROM coursemart_batches")[0][0] == 1


def test_a_stage_with_rows_staged_twice_merges_one_of_each(postgres_url: str) -> None:
    from coursemart.engines.spark import stage_table
    from coursemart.generate import course_chunk
    from coursemart.load.backends import with_lineage
    from coursemart.load.backends.postgres import PostgresBackend, copy_rows

    engine = warehouse.create_engine(postgres_url)
    stage = stage_table("20261127T000000.000000Z-abcd")
    rows = course_chunk(1, 1, 100, WINDOW)
    stored = with_lineage(rows, "20261127T000000.000000Z-abcd")
    staged = stored.append_column("batch_seq", pa.array([0] * 100, pa.int32()))
    try:
        with engine.connect() as connection:
            backend = PostgresBackend(connection, postgres_url)
            backend.begin()
            warehouse.ensure_schema(connection)
            connection.execute(warehouse.categories.insert(), model.categories_table().to_pylist())
            connection.execute(warehouse.levels.insert(), model.levels_table().to_pylist())
            stage.create(connection)
            raw = connection.connection.driver_connection
            copy_rows(raw, stage.name, staged)
            copy_rows(raw, stage.name, staged.slice(0, 40))  # a retried task, staged again

            backend.merge_stage(stage.name, "batch_seq = 0", distinct=True)
            connection.commit()
    finally:
        engine.dispose()

    assert course_count(postgres_url) == 100


def courses_indexes(url: str) -> list[tuple[object, ...]]:
    """The indexes and key constraints of ``courses`` (PostgreSQL), as their definitions."""
    return query(
        url,
        "SELECT 'index', indexname, replace(indexdef, current_schema() || '.', '') FROM pg_indexes "
        "WHERE tablename = 'courses' AND schemaname = current_schema() "
        "UNION ALL SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'courses'::regclass ORDER BY 1, 2",
    )


def index_oids(url: str) -> set[object]:
    rows = query(url, "SELECT indexrelid FROM pg_index WHERE indrelid = 'courses'::regclass")
    return {row[0] for row in rows}


def test_a_first_load_into_an_empty_table_builds_the_same_indexes_after_the_rows(
    lake_dir: Path, postgres_url: str
) -> None:
    empty_warehouse(postgres_url)
    schema_indexes, schema_oids = courses_indexes(postgres_url), index_oids(postgres_url)
    generate(str(lake_dir), courses=20_000, seed=1, window=WINDOW)
    generate(str(lake_dir), courses=1_000, seed=2, window=WINDOW, reschedule=0.1)

    load(str(lake_dir), postgres_url)  # the second batch's rescheduled rows need the key back

    assert courses_indexes(postgres_url) == schema_indexes
    assert index_oids(postgres_url).isdisjoint(schema_oids)  # built anew, after the rows
    assert [name for kind, name, _ in schema_indexes if kind == "index"] == [
        "courses_pkey",
        "ix_courses_search",
        "ix_courses_start_date_course_id",
    ]
    assert stored_courses(postgres_url) == expected_courses(lake_dir)
    plan = query(
        postgres_url,
        "EXPLAIN SELECT * FROM courses ORDER BY start_date DESC, course_id DESC LIMIT 10",
    )
    assert "ix_courses_start_date_course_id" in str(plan)


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_a_first_load_killed_at_any_point_leaves_the_indexes_in_place(
    lake_dir: Path, postgres_url: str, checkpoint: str
) -> None:
    empty_warehouse(postgres_url)
    schema_indexes = courses_indexes(postgres_url)
    generate(str(lake_dir), courses=5_000, seed=1, window=WINDOW)

    killed = run_load(lake_dir, postgres_url, COURSEMART_FAILPOINT=checkpoint)

    assert killed.returncode == -9, killed.stderr
    assert courses_indexes(postgres_url) == schema_indexes
    assert course_count(postgres_url) == 0


def test_a_first_load_keeps_the_indexes_when_a_reader_holds_the_table(
    lake_dir: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coursemart.load.backends import postgres

    monkeypatch.setattr(postgres, "INDEX_LOCK_WAIT", 1)
    empty_warehouse(postgres_url)
    schema_indexes, schema_oids = courses_indexes(postgres_url), index_oids(postgres_url)
    generate(str(lake_dir), courses=5_000, seed=1, window=WINDOW)
    reader = warehouse.create_engine(postgres_url)
    try:
        with reader.connect() as connection:
            connection.exec_driver_sql("SELECT COUNT(*) FROM courses")  # holds ACCESS SHARE
            result = load(str(lake_dir), postgres_url)
            connection.rollback()
    finally:
        reader.dispose()

    assert result.rows_loaded == 5_000
    assert courses_indexes(postgres_url) == schema_indexes
    assert index_oids(postgres_url) == schema_oids  # kept and updated row by row


def test_into_a_listing_index_larger_than_memory_new_rows_go_in_its_order(
    lake_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coursemart.load.backends.postgres import PostgresBackend

    warehouse_on = contextlib.contextmanager(new_warehouse)
    with (
        warehouse_on("postgresql", tmp_path / "a") as plain,
        warehouse_on("postgresql", tmp_path / "b") as ordered,
    ):
        generate(str(lake_dir), courses=2_000, seed=1, window=WINDOW)
        load(str(lake_dir), plain)
        load(str(lake_dir), ordered)
        second = generate(str(lake_dir), courses=500, seed=2, window=WINDOW, reschedule=0.1)
        generate(str(lake_dir), courses=10, seed=3, window=WINDOW, reschedule=0.5)
        load(str(lake_dir), plain)  # a small warehouse: new rows copied straight in
        monkeypatch.setattr(PostgresBackend, "listing_outgrew_memory", lambda self: True)
        load(str(lake_dir), ordered)

        assert snapshot(ordered)["courses"] == snapshot(plain)["courses"]
        batch = f"batch_id = '{second.batch_id}' AND course_id > 2000"
        in_table = query(ordered, f"SELECT course_id FROM courses WHERE {batch} ORDER BY ctid")
        in_index = query(
            ordered,
            f"SELECT course_id FROM courses WHERE {batch} ORDER BY start_date DESC, course_id DESC",
        )
        assert len(in_table) > 200
        # In the index's order, but for the odd row that PostgreSQL's free-space map puts into
        # room left on an earlier page (the lake's order would put half the neighbours wrong).
        rank = {row: i for i, row in enumerate(in_index)}
        neighbours = list(zip(in_table, in_table[1:], strict=False))
        in_order = sum(1 for a, b in neighbours if rank[a] < rank[b])
        assert in_order >= 0.95 * len(neighbours)
        monkeypatch.undo()
        connection_url = plain
        engine = warehouse.create_engine(connection_url)
        try:
            with engine.begin() as connection:
                backend = PostgresBackend(connection, connection_url)
                assert not backend.listing_outgrew_memory()  # 2,510 courses: far below
        finally:
            engine.dispose()
