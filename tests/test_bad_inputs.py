"""The bad-input corpus: odd types, encodings, time units, names, part files, the table's log,
what stands at the lake path, and dimension files, each loaded by ``coursemart load`` on SQLite
and PostgreSQL. Every case ends in one of: rows refused with their exact reasons (read = loaded +
rejected, the rest loads), rows loaded with a warning naming what was odd, or a one-line refusal
naming the file, version or feature with the warehouse as it was. None may end in a traceback
(the command runs in this process: one would fail the test). Files other writers commit go
through add actions, as any Delta writer's do: nothing checks what they hold but the load."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coursemart import model
from coursemart.generate import generate
from coursemart.lake import new_id, open_lake
from tests.conftest import WINDOW, CliResult, new_warehouse, snapshot
from tests.test_load import query, write_raw_batch

NAME = "Applied Machine Learning with Python"
WHEN = datetime(2026, 3, 1, 9, tzinfo=UTC)
MICROSECONDS = 1_772_355_600_000_000  # WHEN in microseconds since 1970
BEYOND = "any date a timestamp holds"


@dataclass(frozen=True)
class Rows:
    """The odd batch loads: ``loaded`` good rows, and one refused row per reason, in order."""

    loaded: int
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Warns:
    """A warning holding ``text``; ``loads`` courses load (none: the odd input is left aside)."""

    text: str
    loads: int = 0


@dataclass(frozen=True)
class Fails:
    """The load stops with one line holding ``text`` (a file's path, by its end) and ``code``;
    the warehouse is as it was."""

    text: str
    code: int = 1


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Path], None]
    outcome: Rows | Warns | Fails
    tags: tuple[str, ...] = field(default_factory=tuple)


def course_table(**columns: pa.Array) -> pa.Table:
    """A one-row-per-value table of course columns; missing columns take good values."""
    rows = len(next(iter(columns.values())))
    good: dict[str, pa.Array] = {
        "course_id": pa.array(range(100, 100 + rows), pa.int64()),
        "course_name": pa.array([NAME] * rows, pa.string()),
        "category_id": pa.array([1] * rows, pa.int32()),
        "level_id": pa.array([101] * rows, pa.int32()),
        "start_date": pa.array([WHEN] * rows, model.TIMESTAMP),
    }
    good.update(columns)
    return pa.table(good)


def batch(**columns: pa.Array) -> Callable[[Path], None]:
    """A setup that commits one part file with these columns."""
    return lambda lake_dir: (write_raw_batch(lake_dir, course_table(**columns)), None)[1]


def table_batch(table: pa.Table) -> Callable[[Path], None]:
    return lambda lake_dir: (write_raw_batch(lake_dir, table), None)[1]


def invalid_utf8(*values: bytes) -> pa.Array:
    """A string array whose bytes are not all UTF-8 (as a careless writer can produce)."""
    offsets, data = [0], b""
    for value in values:
        data += value
        offsets.append(len(data))
    return pa.Array.from_buffers(
        pa.string(),
        len(values),
        [None, pa.array(offsets, pa.int32()).buffers()[1], pa.py_buffer(data)],
    )


def timestamps(values: list[int], unit: str, tz: str | None = None) -> pa.Array:
    return pa.array(values, pa.int64()).cast(pa.timestamp(unit, tz))


# ---------------------------------------------------------------------------------------------
# Values and types inside a file: rows refused with their reason, the rest loaded

VALUE_CASES = [
    Case(
        "null course_id",
        batch(course_id=pa.array([None, 101], pa.int64())),
        Rows(1, ("null course_id",)),
    ),
    Case(
        "null course_name",
        batch(course_name=pa.array([None, NAME])),
        Rows(1, ("null course_name",)),
    ),
    Case(
        "null category_id",
        batch(category_id=pa.array([None, 1], pa.int32())),
        Rows(1, ("null category_id",)),
    ),
    Case(
        "null level_id",
        batch(level_id=pa.array([None, 101], pa.int32())),
        Rows(1, ("null level_id",)),
    ),
    Case(
        "null start_date",
        batch(start_date=pa.array([None, WHEN], model.TIMESTAMP)),
        Rows(1, ("null start_date",)),
    ),
    Case(
        "a course_id twice",
        batch(course_id=pa.array([100, 100, 102], pa.int64())),
        Rows(1, ("duplicate course_id: 100 twice in the batch",) * 2),
    ),
    Case(
        "unknown category",
        batch(category_id=pa.array([9, 1], pa.int32())),
        Rows(1, ("unknown category_id: 9",)),
    ),
    Case(
        "unknown level",
        batch(level_id=pa.array([104, 101], pa.int32())),
        Rows(1, ("unknown level_id: 104",)),
    ),
    Case(
        "start before 1970",
        batch(start_date=pa.array([datetime(1969, 12, 31, tzinfo=UTC), WHEN], model.TIMESTAMP)),
        Rows(
            1, ("impossible start_date: 1969-12-31T00:00:00Z is outside 1970-01-01 to 2100-01-01",)
        ),
    ),
    Case(
        "start in 2100",
        batch(start_date=pa.array([datetime(2100, 1, 1, tzinfo=UTC), WHEN], model.TIMESTAMP)),
        Rows(
            1, ("impossible start_date: 2100-01-01T00:00:00Z is outside 1970-01-01 to 2100-01-01",)
        ),
    ),
    Case("empty name", batch(course_name=pa.array(["", NAME])), Rows(1, ("empty course_name",))),
    Case(
        "blank name", batch(course_name=pa.array([" \t\n", NAME])), Rows(1, ("empty course_name",))
    ),
    Case(
        "a name of 201 characters",
        batch(course_name=pa.array(["é" * 201, "é" * 200])),
        Rows(1, ("over-long course_name: 201 characters, at most 200",)),
    ),
    Case(
        "a NUL in a name",
        batch(course_name=pa.array(["Bad\x00Name", NAME])),
        Rows(1, ("NUL in course_name: Bad\\x00Name",)),
    ),
    Case(
        "a name that is not UTF-8",
        batch(course_name=invalid_utf8(b"Caf\xe9 Latin-1", NAME.encode())),
        Rows(1, ("invalid UTF-8 course_name: Caf\\xe9 Latin-1",)),
    ),
    Case(
        "nanoseconds with a sub-microsecond part",
        batch(start_date=timestamps([MICROSECONDS * 1000 + 1, MICROSECONDS * 1000], "ns", "UTC")),
        Rows(
            1,
            (
                f"sub-microsecond start_date: {MICROSECONDS * 1000 + 1} has nanoseconds; "
                "coursemart keeps microseconds",
            ),
        ),
    ),
    Case(
        "nanoseconds on whole microseconds",
        batch(start_date=timestamps([MICROSECONDS * 1000], "ns")),
        Rows(1),
    ),
    Case(
        "seconds beyond any microsecond timestamp",
        batch(start_date=timestamps([10**15, MICROSECONDS // 10**6], "s")),
        Rows(
            1,
            (  # Parquet keeps seconds as milliseconds
                f"impossible start_date: {10**18} ms from 1970 is beyond {BEYOND}",
            ),
        ),
    ),
    Case(
        "milliseconds beyond any microsecond timestamp",
        batch(start_date=timestamps([-(10**17), MICROSECONDS // 1000], "ms", "UTC")),
        Rows(
            1,
            (f"impossible start_date: {-(10**17)} ms from 1970 is beyond {BEYOND}",),
        ),
    ),
    Case(
        "milliseconds in range", batch(start_date=timestamps([MICROSECONDS // 1000], "ms")), Rows(1)
    ),
    Case(
        "an unsigned id beyond BIGINT",
        batch(course_id=pa.array([2**63, 2**64 - 1, 101], pa.uint64())),
        Rows(
            1,
            (
                f"out-of-range course_id: {2**63} is outside {-(2**63)} to {2**63 - 1}",
                f"out-of-range course_id: {2**64 - 1} is outside {-(2**63)} to {2**63 - 1}",
            ),
        ),
    ),
    Case(
        "unsigned ids all beyond BIGINT (the footer's range lies above it)",
        batch(course_id=pa.array([2**63 + 5, 2**63 + 6], pa.uint64())),
        Rows(
            0,
            tuple(
                f"out-of-range course_id: {2**63 + n} is outside {-(2**63)} to {2**63 - 1}"
                for n in (5, 6)
            ),
        ),
    ),
    Case("an unsigned id in range", batch(course_id=pa.array([101], pa.uint64())), Rows(1)),
    Case(
        "course_id 0",
        batch(course_id=pa.array([0, 101], pa.int64())),
        Rows(1, ("non-positive course_id: 0",)),
    ),
    Case(
        "a negative course_id",
        batch(course_id=pa.array([-5, 101], pa.int64())),
        Rows(1, ("non-positive course_id: -5",)),
    ),
    Case(
        "a category_id beyond INTEGER",
        batch(category_id=pa.array([2**31, 1], pa.int64())),
        Rows(1, (f"out-of-range category_id: {2**31} is outside {-(2**31)} to {2**31 - 1}",)),
    ),
    Case(
        "a level_id beyond INTEGER",
        batch(level_id=pa.array([-(2**40), 101], pa.int64())),
        Rows(1, (f"out-of-range level_id: {-(2**40)} is outside {-(2**31)} to {2**31 - 1}",)),
    ),
    Case("the largest BIGINT id", batch(course_id=pa.array([2**63 - 1], pa.int64())), Rows(1)),
    Case(
        "dictionary-encoded names",
        batch(course_name=pa.array([NAME, NAME, "Ceramics"]).dictionary_encode()),
        Rows(3),
    ),
    Case(
        "dictionary-encoded categories",
        batch(category_id=pa.array([1, 2, 1], pa.int32()).dictionary_encode()),
        Rows(3),
    ),
    Case("large strings", batch(course_name=pa.array([NAME], pa.large_string())), Rows(1)),
    Case(
        "dates instead of timestamps",
        batch(start_date=pa.array([date(2026, 3, 1)], pa.date32())),
        Rows(1),
    ),
    Case(
        "timestamps in Paris time",
        batch(start_date=timestamps([MICROSECONDS], "us", "Europe/Paris")),
        Rows(1),
    ),
    Case("naive timestamps", batch(start_date=timestamps([MICROSECONDS], "us")), Rows(1)),
    Case(
        "narrow integers",
        batch(category_id=pa.array([1], pa.int8()), level_id=pa.array([101], pa.uint16())),
        Rows(1),
    ),
    Case(
        "a name column with no value",
        batch(course_name=pa.array([None, None], pa.null())),
        Rows(0, ("null course_name",) * 2),
    ),
    Case(
        "names with emoji", batch(course_name=pa.array(["Python 🐍 for Data", "🎨" * 200])), Rows(2)
    ),
    Case(
        "names with quotes and escapes",
        batch(course_name=pa.array(["O'Neil's \"C:\\Art\"\ttabs\nlines"])),
        Rows(1),
    ),
    Case(
        "right-to-left and combining names",
        batch(course_name=pa.array(["מבוא לפייתון", "Cafe\u0301 Arts"])),
        Rows(2),
    ),
    Case(
        "columns in another order with extras",
        table_batch(
            course_table(course_id=pa.array([100], pa.int64()))
            .select(["start_date", "level_id", "course_name", "category_id", "course_id"])
            .append_column("extra", pa.array(["x"]))
        ),
        Rows(1),
    ),
    Case("an empty part file", table_batch(model.COURSES_SCHEMA.empty_table()), Rows(0)),
]


def schema_case(name: str, table: pa.Table, problem: str) -> Case:
    return Case(
        name, table_batch(table), Rows(0, (f"schema: {problem}",) * table.num_rows), ("schema",)
    )


SCHEMA_CASES = [
    schema_case(
        "two columns with the same name",
        pa.Table.from_arrays(
            [*course_table(course_id=pa.array([100, 101])).columns, pa.array(["x", "y"])],
            names=[*model.COURSES_SCHEMA.names, "course_name"],
        ),
        "column course_name appears 2 times",
    ),
    schema_case(
        "ids as text",
        course_table(course_id=pa.array(["a", "b"])),
        "column course_id is string, expected int64",
    ),
    schema_case(
        "ids as floats",
        course_table(course_id=pa.array([1.0, 2.5])),
        "column course_id is double, expected int64",
    ),
    schema_case(
        "no name column",
        course_table(course_id=pa.array([100], pa.int64())).drop_columns(["course_name"]),
        "missing column course_name",
    ),
    schema_case(
        "dates as text",
        course_table(start_date=pa.array(["2026-03-01"])),
        "column start_date is string, expected timestamp[us, tz=UTC]",
    ),
    schema_case(
        "dates as integers",
        course_table(start_date=pa.array([MICROSECONDS], pa.int64())),
        "column start_date is int64, expected timestamp[us, tz=UTC]",
    ),
    schema_case(
        "names as bytes",
        course_table(course_name=pa.array([b"x"], pa.binary())),
        "column course_name is binary, expected string",
    ),
    schema_case(
        "names as numbers",
        course_table(course_name=pa.array([7], pa.int64())),
        "column course_name is int64, expected string",
    ),
    schema_case(
        "categories as floats",
        course_table(category_id=pa.array([1.0])),
        "column category_id is double, expected int32",
    ),
    schema_case(
        "times of day",
        course_table(start_date=pa.array([3600], pa.time32("s"))),
        "column start_date is time32[ms], expected timestamp[us, tz=UTC]",  # as Parquet keeps it,
    ),
    schema_case(
        "durations",
        course_table(start_date=pa.array([5], pa.duration("s"))),
        "column start_date is duration[s], expected timestamp[us, tz=UTC]",
    ),
]


# ---------------------------------------------------------------------------------------------
# Part files and the table's log


def generated(courses: int = 300, chunk_rows: int = 100) -> Callable[[Path], Path]:
    """A batch committed by coursemart (version 1 of the table), returning its folder."""

    def make(lake_dir: Path) -> Path:
        result = generate(
            str(lake_dir), courses=courses, seed=7, window=WINDOW, chunk_rows=chunk_rows
        )
        return lake_dir / "courses" / f"batch_id={result.batch_id}"

    return make


def commit_file(lake_dir: Path, data: bytes, partition: str | None, path: str = "") -> str:
    """Commit one file of these bytes through an add action, as another writer could: the
    log names it with ``partition`` as its batch id; nothing checks what it holds. Returns the
    batch id the commit names."""
    from deltalake.transaction import AddAction

    path = path or f"batch_id={new_id()}/part-00000.parquet"
    target = lake_dir / "courses" / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    action = AddAction(path, len(data), {"batch_id": partition}, 0, True, '{"numRecords": 1}')
    batch_id = new_id()
    open_lake(str(lake_dir)).commit_files(batch_id, [action])
    return batch_id


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def log_file(lake_dir: Path, version: int) -> Path:
    return lake_dir / "courses" / "_delta_log" / f"{version:020d}.json"


def cut_short(lake_dir: Path) -> None:
    part = generated()(lake_dir) / "part-00000.parquet"
    part.write_bytes(part.read_bytes()[:500])


def damaged_footer(lake_dir: Path) -> None:
    part = generated()(lake_dir) / "part-00001.parquet"
    data = part.read_bytes()
    part.write_bytes(data[:-40] + b"\xff" * 40)  # same size as the log says


def not_parquet(lake_dir: Path) -> None:
    commit_file(lake_dir, b"course_id,course_name\n1,x\n", "20990101T000000.000000Z-csv0")


def missing_part(lake_dir: Path) -> None:
    (generated()(lake_dir) / "part-00001.parquet").unlink()


def fifo_part(lake_dir: Path) -> None:
    """A part file the log names replaced by a FIFO (reading it would wait forever)."""
    part = generated()(lake_dir) / "part-00001.parquet"
    part.unlink()
    os.mkfifo(part)


def folder_part(lake_dir: Path) -> None:
    part = generated()(lake_dir) / "part-00001.parquet"
    part.unlink()
    part.mkdir()


def extra_part(lake_dir: Path) -> None:
    folder = generated()(lake_dir)
    shutil.copy(folder / "part-00000.parquet", folder / "part-00007.parquet")


def statistics_differ(lake_dir: Path) -> None:
    generated()(lake_dir)
    log = log_file(lake_dir, 1)
    log.write_text(log.read_text().replace('numRecords\\": 100', 'numRecords\\": 99'))
    assert 'numRecords\\": 99' in log.read_text()


def stray_file(lake_dir: Path) -> None:
    (generated()(lake_dir) / "README.txt").write_text("copied by hand")


def unlisted_folder(lake_dir: Path) -> None:
    """Batch folders copied in by hand or linked, beside a committed batch: the log never
    names them."""
    generated()(lake_dir)
    elsewhere = generated()(lake_dir.parent / "elsewhere")
    os.symlink(elsewhere, lake_dir / "courses" / elsewhere.name)
    shutil.copytree(elsewhere, lake_dir / "courses" / "batch_id=20990101T000000.000000Z-copy")


def odd_batch_id(name: str) -> Callable[[Path], None]:
    """A file committed with ``name`` as its partition value."""
    table = course_table(course_id=pa.array([500], pa.int64()))

    def commit(lake_dir: Path) -> None:
        commit_file(lake_dir, parquet_bytes(table), name)

    return commit


def outside_the_table(lake_dir: Path) -> None:
    """A log entry naming a file by an absolute path (outside the table's folder)."""
    elsewhere = generated()(lake_dir.parent / "elsewhere") / "part-00000.parquet"
    commit_file(lake_dir, b"", new_id(), path="batch_id=x/part-00000.parquet")
    log = log_file(lake_dir, 1)
    log.write_text(log.read_text().replace('"batch_id=x/', f'"file://{elsewhere.parent}/'))


def log_cut_short(lake_dir: Path) -> None:
    generated()(lake_dir)
    log = log_file(lake_dir, 1)
    log.write_bytes(log.read_bytes()[:-30])


def log_not_json(lake_dir: Path) -> None:
    generated()(lake_dir)
    log_file(lake_dir, 1).write_text("this commit is not JSON\n")


def courses_replaced_by(table: pa.Table) -> Callable[[Path], None]:
    """Another table written where the courses table was (delta-rs's own writer)."""
    from deltalake import write_deltalake

    def replace(lake_dir: Path) -> None:
        shutil.rmtree(lake_dir / "courses")
        write_deltalake(str(lake_dir / "courses"), table)

    return replace


def plain_parquet(lake_dir: Path) -> None:
    shutil.rmtree(lake_dir / "courses")
    (lake_dir / "courses").mkdir()
    pq.write_table(
        course_table(course_id=pa.array([500], pa.int64())), lake_dir / "courses" / "a.parquet"
    )


def empty_folder(lake_dir: Path) -> None:
    shutil.rmtree(lake_dir / "courses")
    (lake_dir / "courses").mkdir()


def a_file(lake_dir: Path) -> None:
    shutil.rmtree(lake_dir / "courses")
    (lake_dir / "courses").write_text("courses")


def deletion_vectors(lake_dir: Path) -> None:
    """The table's protocol raised to deletion vectors (as Databricks turns them on)."""
    from deltalake import DeltaTable

    table = DeltaTable(str(lake_dir / "courses"))
    table.alter.set_table_properties({"delta.enableDeletionVectors": "true"})
    assert "deletionVectors" in (
        DeltaTable(str(lake_dir / "courses")).protocol().reader_features or []
    )


ODD_ID = "holds characters other than letters, digits"
FILE_CASES = [
    Case("a part file cut short", cut_short, Fails("part-00000.parquet: ")),
    Case("a part file with a damaged footer", damaged_footer, Fails("part-00001.parquet: ")),
    Case("a part file that is not Parquet", not_parquet, Fails("part-00000.parquet: ")),
    Case(
        "a missing part file",
        missing_part,
        Fails("part-00001.parquet is missing, though version 1 of the table names it"),
    ),
    Case(
        "a part file replaced by a FIFO",
        fifo_part,
        Fails("part-00001.parquet: it is not a regular file (a FIFO, a device or a folder)"),
    ),
    Case(
        "a part file replaced by a folder",
        folder_part,
        Fails("part-00001.parquet: it is not a regular file (a FIFO, a device or a folder)"),
    ),
    Case("a part file no commit names", extra_part, Rows(300)),
    Case("statistics unlike the file's rows", statistics_differ, Rows(300)),
    Case("a stray file", stray_file, Rows(300)),
    Case("batch folders no commit names", unlisted_folder, Rows(300)),
    Case("a batch id with brackets", odd_batch_id("2026-[ab]"), Warns(f"'2026-[ab]' {ODD_ID}", 1)),
    Case("a batch id with a star", odd_batch_id("2026-*"), Warns(ODD_ID, 1)),
    Case("a batch id with a question mark", odd_batch_id("2026?"), Warns(ODD_ID, 1)),
    Case("a batch id with braces", odd_batch_id("2026{a,b}"), Warns(ODD_ID, 1)),
    Case("a batch id with a space", odd_batch_id("2026 11 27"), Warns(ODD_ID, 1)),
    Case("a batch id with a dot first", odd_batch_id(".hidden"), Warns(ODD_ID, 1)),
    Case("a batch id with a slash", odd_batch_id("2026/11"), Warns(ODD_ID, 1)),
    Case(
        "a batch id of 65 characters",
        odd_batch_id("2" * 65),
        Warns("is 65 characters long, longer than 64", 1),
    ),
    Case(
        "a log entry naming a file outside the table",
        outside_the_table,
        Fails("part-00000.parquet, outside the table's folder"),
    ),
    Case(
        "a commit cut short",
        log_cut_short,
        Fails("_delta_log/00000000000000000001.json line 4 is not valid JSON"),
    ),
    Case(
        "a commit that is not JSON",
        log_not_json,
        Fails("_delta_log/00000000000000000001.json line 1 is not valid JSON"),
    ),
    Case(
        "a table of another schema",
        courses_replaced_by(pa.table({"isbn": ["978-0"], "title": ["Dune"]})),
        Fails("courses is not a table of courses (no column course_id; no column course_name"),
    ),
    Case(
        "a table whose ids are text",
        courses_replaced_by(
            course_table(course_id=pa.array(["100"])).append_column("batch_id", pa.array(["b"]))
        ),
        Fails("courses is not a table of courses (course_id is string, not int64)"),
    ),
    Case(
        "a folder of Parquet files without a log",
        plain_parquet,
        Fails("courses holds files but no Delta log (_delta_log/): it is not a Delta table"),
    ),
    Case("an empty folder", empty_folder, Fails("courses is not a Delta table: run")),
    Case("a file where the table was", a_file, Fails("courses is a file, not a Delta table")),
    Case(
        "a table with deletion vectors",
        deletion_vectors,
        Fails("needs reader features coursemart cannot honour (deletionVectors"),
    ),
]


# ---------------------------------------------------------------------------------------------
# Dimension files


def dimension(name: str, content: bytes) -> Callable[[Path], None]:
    def write(lake_dir: Path) -> None:
        generated(courses=10)(lake_dir)  # a batch to load, so the snapshots are read
        (lake_dir / f"{name}.csv").write_bytes(content)

    return write


HEADER = b'"category_id","category_name"\n'
DIMENSION_CASES = [
    Case(
        "a category id twice",
        dimension("categories", HEADER + b'1,"Technology"\n1,"Tech"\n'),
        Fails("categories.csv line 3: category_id 1 or category_name 'Tech' repeats"),
    ),
    Case(
        "a category name twice",
        dimension("categories", HEADER + b'1,"Art"\n3,"Art"\n'),
        Fails("categories.csv line 3: category_id 3 or category_name 'Art' repeats"),
    ),
    Case(
        "a category name of 101 characters",
        dimension("categories", HEADER + b'1,"' + b"x" * 101 + b'"\n'),
        Fails("categories.csv line 2: category_name is 101 characters long, at most 100"),
    ),
    Case(
        "a NUL in a category name",
        dimension("categories", HEADER + b'1,"Tech\x00nology"\n'),
        Fails("categories.csv line 2: category_name holds a NUL character"),
    ),
    Case(
        "an empty level name",
        dimension("levels", b'"level_id","level_name"\n101,""\n'),
        Fails("levels.csv line 2: level_id and level_name must both be given"),
    ),
    Case(
        "a levels file without names",
        dimension("levels", b'"level_id"\n101\n'),
        Fails("levels.csv: missing column level_name"),
    ),
    Case(
        "a categories file that is not text",
        dimension("categories", bytes(range(256)) * 4),
        Fails("categories.csv: "),
    ),
    Case(
        "a categories file that is not UTF-8",
        dimension("categories", HEADER + b'1,"Caf\xe9"\n'),
        Fails("categories.csv: "),
    ),
    Case(
        "a category id beyond INTEGER",
        dimension("categories", HEADER + b'4294967296,"Big"\n'),
        Fails("categories.csv: "),
    ),
    Case(
        "a retired name taken while still held",
        dimension("categories", HEADER + b'9,"Health"\n'),
        Fails(
            "categories.csv line 2: category_name 'Health' is still held by category_id 5, "
            "which the file no longer lists"
        ),
    ),
]

CASES = [*VALUE_CASES, *SCHEMA_CASES, *FILE_CASES, *DIMENSION_CASES]


def test_the_corpus_holds_at_least_sixty_bad_inputs() -> None:
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_bad_input_never_crashes_a_load(
    case: Case, backend: str, lake_dir: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    for url in new_warehouse(backend, tmp_path):
        generate(str(lake_dir), courses=10, seed=1, window=WINDOW)  # the dimensions, courses 1-10
        assert cli("load", "-q", "--lake", str(lake_dir), "--warehouse", url).exit_code == 0
        before = snapshot(url)
        case.setup(lake_dir)

        result = cli("load", "--lake", str(lake_dir), "--warehouse", url)

        assert "Traceback" not in result.stderr + result.stdout
        if isinstance(case.outcome, Rows):
            assert_rows(case.outcome, result, lake_dir, url)
        elif isinstance(case.outcome, Warns):
            assert_left_aside(case.outcome, result, before, url)
        else:
            assert_refused(case.outcome, result, before, url)


def assert_rows(expected: Rows, result: CliResult, lake_dir: Path, url: str) -> None:
    assert result.exit_code == 0, result.stderr
    summary = re.search(
        r"load (\S+)\): ([\d,]+) rows read, ([\d,]+) loaded, ([\d,]+) rejected", result.stdout
    )
    assert summary, result.stdout
    load_id, read, loaded, rejected = (
        summary.group(1),
        *(int(g.replace(",", "")) for g in summary.groups()[1:]),
    )
    assert (loaded, rejected) == (expected.loaded, len(expected.reasons))
    assert read == loaded + rejected
    refused = open_lake(str(lake_dir)).read_rejected(load_id)
    assert tuple(row["reason"] for row in refused) == expected.reasons
    assert query(url, "SELECT COUNT(*) FROM courses")[0][0] == 10 + expected.loaded


def assert_left_aside(
    expected: Warns, result: CliResult, before: dict[str, list[tuple[object, ...]]], url: str
) -> None:
    assert result.exit_code == 0, result.stderr
    warnings = [
        line for line in result.stderr.splitlines() if line.startswith("coursemart: warning: ")
    ]
    assert any(expected.text in line for line in warnings), result.stderr
    after = snapshot(url)
    assert len(after["courses"]) == len(before["courses"]) + expected.loads
    if not expected.loads:
        assert after["courses"] == before["courses"]
        assert after["coursemart_batches"] == before["coursemart_batches"]


def assert_refused(
    expected: Fails, result: CliResult, before: dict[str, list[tuple[object, ...]]], url: str
) -> None:
    assert result.exit_code == expected.code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("coursemart: error: "), result.stderr
    assert expected.text in lines[0], lines[0]
    after = snapshot(url)
    assert {k: v for k, v in after.items() if k != "coursemart_loads"} == {
        k: v for k, v in before.items() if k != "coursemart_loads"
    }
    last = after["coursemart_loads"][-1]
    assert last[3] == "failed" and expected.text in str(last[9])
