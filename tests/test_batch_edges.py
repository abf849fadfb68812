"""The edges of the lake: odd folder names, incomplete batches, stray files and links. A batch is
loaded whole or not at all, every name is taken literally, and nothing odd is lost silently."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from coursemart.generate import generate
from coursemart.lake import SuccessRecord, open_lake
from coursemart.load import load
from tests.conftest import WINDOW
from tests.test_load import course_count, expected_courses, query, stored_courses


def batch_folder(lake_dir: Path, batch_id: str) -> Path:
    return lake_dir / "courses" / f"batch_id={batch_id}"


def copy_batch(lake_dir: Path, batch_id: str, new_id: str) -> Path:
    """A copy of a committed batch under another folder name (its rows and record unchanged)."""
    target = batch_folder(lake_dir, new_id)
    shutil.copytree(batch_folder(lake_dir, batch_id), target)
    return target


@pytest.mark.parametrize(
    "name",
    [
        "20261127T102455.123456Z-[ab]",
        "20261127T102455.123456Z-*",
        "20261127T102455.123456Z-?",
        "20261127T102455.123456Z-{a,b}",
        "20261127T102455 with space",
        "x" * 65,
        "-starts-with-a-dash",
        "café",
    ],
)
def test_a_folder_whose_name_is_not_a_batch_id_is_skipped_with_a_warning_never_half_read(
    lake_dir: Path, sqlite_url: str, name: str
) -> None:
    first = generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    copy_batch(lake_dir, first.batch_id, name)

    result = load(str(lake_dir), sqlite_url)
    again = load(str(lake_dir), sqlite_url)

    assert result.batches == (first.batch_id,)
    assert result.rows_read == 100 and course_count(sqlite_url) == 100
    assert any(f"skipped courses/batch_id={name}:" in w for w in result.warnings)
    assert any("rename the folder" in w for w in result.warnings)
    assert query(sqlite_url, "SELECT batch_id FROM coursemart_batches") == [(first.batch_id,)]
    assert again.status == "nothing to do" and again.warnings == result.warnings


def test_a_lake_whose_own_path_has_glob_characters_is_read_literally(
    tmp_path: Path, sqlite_url: str
) -> None:
    lake_dir = tmp_path / "lake[1]*"
    generate(str(lake_dir), courses=300, seed=1, window=WINDOW)
    decoy = tmp_path / "lake1x" / "courses"  # what a glob of lake[1]* would also match
    generate(str(tmp_path / "lake1x"), courses=50, seed=2, window=WINDOW)
    assert decoy.exists()

    result = load(str(lake_dir), sqlite_url)

    assert (result.rows_read, course_count(sqlite_url)) == (300, 300)
    assert stored_courses(sqlite_url) == expected_courses(lake_dir)


def test_a_batch_missing_a_part_file_is_refused_then_loaded_once_whole(
    lake_dir: Path, warehouse_url: str
) -> None:
    batch = generate(str(lake_dir), courses=600, seed=1, window=WINDOW, chunk_rows=200)
    part = batch_folder(lake_dir, batch.batch_id) / "part-00002.parquet"
    held = part.read_bytes()
    part.unlink()

    refused = load(str(lake_dir), warehouse_url)
    part.write_bytes(held)
    loaded = load(str(lake_dir), warehouse_url)

    assert (refused.status, refused.refused, refused.batches) == (
        "nothing to do",
        (batch.batch_id,),
        (),
    )
    assert refused.warnings == (
        f"batch {batch.batch_id} does not match its _SUCCESS (part-00002.parquet is missing): "
        "not loaded; it will be loaded once it is whole",
    )
    assert loaded.batches == (batch.batch_id,) and course_count(warehouse_url) == 600
    assert query(warehouse_url, "SELECT COUNT(*) FROM coursemart_batches")[0][0] == 1
    message = query(warehouse_url, "SELECT message FROM coursemart_loads ORDER BY load_id")[0][0]
    assert f"batch {batch.batch_id} does not match its _SUCCESS" in str(message)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("extra part", "part-00009.parquet is not listed in _SUCCESS"),
        ("rows", "600 rows, _SUCCESS says 601"),
        ("part rows", "part-00000.parquet has 200 rows, _SUCCESS says 199"),
        ("size", "part-00001.parquet has "),
        ("old record", "3 part files, _SUCCESS says 4"),
    ],
)
def test_a_batch_that_does_not_match_its_record_is_refused_naming_what_differs(
    lake_dir: Path, sqlite_url: str, change: str, problem: str
) -> None:
    batch = generate(str(lake_dir), courses=600, seed=1, window=WINDOW, chunk_rows=200)
    folder = batch_folder(lake_dir, batch.batch_id)
    marker = folder / "_SUCCESS"
    record = json.loads(marker.read_text())
    if change == "extra part":
        shutil.copy(folder / "part-00000.parquet", folder / "part-00009.parquet")
    elif change == "rows":
        record["rows"] = 601
    elif change == "part rows":
        record["parts"][0]["rows"] = 199
    elif change == "size":
        record["parts"][1]["bytes"] += 1
    else:  # the record coursemart 0.1 wrote: only a count of parts
        record = {"batch_id": batch.batch_id, "rows": 600, "parts": 4}
    marker.write_text(json.dumps(record))

    result = load(str(lake_dir), sqlite_url)

    assert result.refused == (batch.batch_id,)
    assert problem in result.warnings[0]
    assert course_count(sqlite_url) == 0


@pytest.mark.parametrize("marker", [b"", b"not json", b'{"batch_id": "x"}', b"[1, 2]"])
def test_a_success_marker_without_a_record_loads_what_the_folder_holds(
    lake_dir: Path, sqlite_url: str, marker: bytes
) -> None:
    batch = generate(str(lake_dir), courses=300, seed=1, window=WINDOW, chunk_rows=100)
    (batch_folder(lake_dir, batch.batch_id) / "_SUCCESS").write_bytes(marker)

    result = load(str(lake_dir), sqlite_url)

    assert (result.batches, result.rows_loaded) == ((batch.batch_id,), 300)


def test_a_success_record_lists_every_part_with_its_rows_and_bytes(lake_dir: Path) -> None:
    batch = generate(str(lake_dir), courses=250, seed=1, window=WINDOW, chunk_rows=100)
    folder = batch_folder(lake_dir, batch.batch_id)

    record = SuccessRecord.parse((folder / "_SUCCESS").read_bytes())

    assert record.rows == 250
    assert [(p.file, p.rows) for p in record.parts or ()] == [
        ("part-00000.parquet", 100),
        ("part-00001.parquet", 100),
        ("part-00002.parquet", 50),
    ]
    assert all(p.bytes == (folder / p.file).stat().st_size for p in record.parts or ())


@pytest.mark.parametrize(
    "stray", ["notes.txt", ".part-00000.parquet.crc", "_started_123", "part-1.csv"]
)
def test_files_that_are_not_part_files_are_reported_and_never_read(
    lake_dir: Path, sqlite_url: str, stray: str
) -> None:
    batch = generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    (batch_folder(lake_dir, batch.batch_id) / stray).write_text("course_id\n999\n")

    result = load(str(lake_dir), sqlite_url)

    assert result.batches == (batch.batch_id,) and course_count(sqlite_url) == 100
    assert result.warnings == (
        f"batch {batch.batch_id}: {stray} is not a part file (part-*.parquet): not read",
    )


def test_a_batch_folder_that_is_a_symbolic_link_is_refused_with_a_warning(
    lake_dir: Path, tmp_path: Path, sqlite_url: str
) -> None:
    outside = generate(str(tmp_path / "elsewhere"), courses=100, seed=1, window=WINDOW)
    generate(str(lake_dir), courses=10, seed=2, window=WINDOW)
    link = batch_folder(lake_dir, outside.batch_id)
    os.symlink(batch_folder(tmp_path / "elsewhere", outside.batch_id), link)

    result = load(str(lake_dir), sqlite_url)

    assert course_count(sqlite_url) == 10
    assert result.warnings == (
        f"skipped courses/batch_id={outside.batch_id}: is a symbolic link: coursemart does not "
        "follow links in the lake; copy the batch in",
    )
    assert outside.batch_id not in open_lake(str(lake_dir)).committed_batches()
