"""Outside readers of the lake (DuckDB, Polars, pandas) get exactly the warehouse's catalog.

Each reader runs the snippet docs/lake.md shows for it, as written: what the docs promise is what
is tested. The lake holds rescheduled courses (a course in several batches), a generate's files
written but not committed (with a half-copied part among them), and cancellations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlalchemy as sa

from coursemart import model, warehouse
from coursemart.generate import generate
from coursemart.lake import new_id, open_lake
from tests.conftest import WINDOW, CliResult

Cli = Callable[..., CliResult]

DOC = Path(__file__).resolve().parent.parent / "docs" / "lake.md"
SNIPPET = re.compile(r"<!-- reader: ([\w-]+) -->\n```python\n(.*?)```", re.DOTALL)
READERS = dict(SNIPPET.findall(DOC.read_text(encoding="utf-8")))
COLUMNS = ["course_id", "course_name", "category_id", "level_id", "start_date", "batch_id"]


def test_the_docs_show_each_reader() -> None:
    assert set(READERS) == {"duckdb", "duckdb-over-delta-rs", "polars", "pandas"}


def read_catalog(reader: str, lake: str) -> list[tuple[Any, ...]]:
    """The current catalog as the docs' snippet for ``reader`` gives it, as rows in id order."""
    scope: dict[str, Any] = {"lake": lake}
    exec(compile(READERS[reader], f"docs/lake.md ({reader})", "exec"), scope)
    current = scope["current"]
    if isinstance(current, pa.Table):  # DuckDB
        table = current
    elif hasattr(current, "to_arrow"):  # Polars
        table = current.to_arrow()
    else:  # pandas
        table = pa.Table.from_pandas(current, preserve_index=False)
    table = table.select(COLUMNS)
    instants = table["start_date"].cast(pa.timestamp("us", "UTC"))
    table = table.set_column(COLUMNS.index("start_date"), "start_date", instants)
    table = table.sort_by("course_id")
    return [tuple(row.values()) for row in table.to_pylist()]


def warehouse_catalog(url: str) -> list[tuple[Any, ...]]:
    """The warehouse's courses, their start dates as UTC instants, in id order."""
    engine = warehouse.create_engine(url)
    try:
        with engine.connect() as connection:
            courses = warehouse.metadata.tables["courses"]
            query = sa.select(*(courses.c[name] for name in COLUMNS)).order_by(courses.c.course_id)
            rows = connection.execute(query).all()
    finally:
        engine.dispose()
    return [(*row[:4], as_utc(row[4]), row[5]) for row in rows]


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def loaded_lake(cli: Cli, tmp_path: Path) -> tuple[str, str]:
    """A lake of three batches (the later two moving some courses), loaded into SQLite."""
    lake, url = str(tmp_path / "lake"), f"sqlite:///{tmp_path / 'warehouse.db'}"
    generate(lake, courses=2_000, seed=1, window=WINDOW)
    generate(lake, courses=300, seed=2, window=WINDOW, reschedule=0.2)
    generate(lake, courses=300, seed=3, window=WINDOW, reschedule=0.2)
    loaded = cli("load", "-q", "--lake", lake, "--warehouse", url)
    assert loaded.exit_code == 0, loaded.stderr
    return lake, url


def write_without_commit(lake_url: str) -> str:
    """What a generate has written before its commit: every row of the table a day later, under
    a greater batch id, and a part file cut short by a copy still running. Returns the batch."""
    lake = open_lake(lake_url)
    rows = lake.delta().to_pyarrow_table(columns=model.COURSES_SCHEMA.names)
    later = pc.add(rows["start_date"], pa.scalar(timedelta(days=1), pa.duration("us")))
    writer = lake.batch_writer(new_id(), model.COURSES_SCHEMA)
    written = writer.write_part(rows.set_column(4, "start_date", later))
    with lake.fs.open(written, "rb") as whole:
        data = whole.read()
    with lake.fs.open(written.replace("part-00000", "part-00001"), "wb") as cut:
        cut.write(data[: len(data) // 2])
    assert lake.uncommitted_batches() == [writer.batch_id]
    return writer.batch_id


def rescheduled(lake_url: str, count: int) -> list[int]:
    """``count`` courses that have rows in more than one batch."""
    ids = open_lake(lake_url).delta().to_pyarrow_table(columns=["course_id"])["course_id"]
    counts = pc.value_counts(ids)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    return sorted(repeated.to_pylist())[:count]


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_reader_sees_the_warehouse_while_a_generate_is_uncommitted(
    reader: str, cli: Cli, tmp_path: Path
) -> None:
    lake, url = loaded_lake(cli, tmp_path)
    uncommitted = write_without_commit(lake)

    rows = read_catalog(reader, lake)

    assert rows == warehouse_catalog(url)
    assert len(rows) == 2_600 and uncommitted not in {row[5] for row in rows}
    assert len({row[5] for row in rows}) == 3  # the rows of the greatest batch of each course


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_reader_sees_the_warehouse_after_a_cancel(reader: str, cli: Cli, tmp_path: Path) -> None:
    lake, url = loaded_lake(cli, tmp_path)
    moved = rescheduled(lake, 3)
    cancelled = cli("cancel", "7", "2001", *map(str, moved), "--lake", lake)
    by_date = cli("cancel", "--before", "2026-02-01", "--lake", lake)
    loaded = cli("load", "-q", "--lake", lake, "--warehouse", url)
    assert (cancelled.exit_code, by_date.exit_code, loaded.exit_code) == (0, 0, 0)

    rows = read_catalog(reader, lake)

    assert rows == warehouse_catalog(url)
    ids = {row[0] for row in rows}
    assert len(moved) == 3 and not ids & {7, 2001, *moved}
    assert min(row[4] for row in rows) >= datetime(2026, 2, 1, tzinfo=UTC)
    assert 2_000 < len(rows) < 2_600 - 3
