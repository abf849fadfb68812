"""Cancelling many courses at once: one Delta commit whatever the count, applied by a load."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlalchemy as sa

from coursemart.generate import generate
from coursemart.lake import open_lake
from coursemart.lake.upkeep import cancel
from coursemart.load import load
from coursemart.load.changes import changes


@pytest.mark.parametrize(
    "cancelled",
    [
        pytest.param(3, id="a few ids"),
        # a delete whose IN list held this many values crashed delta-rs (the whole process):
        # cancel deletes through a MERGE against a table of the ids, whatever their count
        pytest.param(30_000, id="30,000 ids"),
    ],
)
def test_cancelling_many_courses_is_one_commit_the_next_load_applies(
    tmp_path: Path, sqlite_url: str, cancelled: int
) -> None:
    lake_url = str(tmp_path / "lake")
    generate(lake_url, courses=60_000, seed=1)
    load(lake_url, sqlite_url)
    ids = list(range(1, 2 * cancelled, 2))

    result = cancel(open_lake(lake_url), ids, None)

    assert (result.version, result.rows) == (1, cancelled)
    table = open_lake(lake_url).delta()
    assert table.version() == 1
    changes = pa.table(table.load_cdf(starting_version=1).read_all())
    kinds = changes["_change_type"].cast(pa.string())
    deleted = changes["course_id"].filter(pc.equal(kinds, "delete"))
    assert sorted(deleted.to_pylist()) == ids
    loaded = load(lake_url, sqlite_url)
    assert loaded.cancelled == cancelled
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as connection:
        left = set(connection.exec_driver_sql("SELECT course_id FROM courses").scalars())
    engine.dispose()
    assert left == set(range(1, 60_001)) - set(ids)


def test_the_courses_a_load_removes_come_in_course_id_order(tmp_path: Path) -> None:
    """So a warehouse walks its key index in order (the change data is in the files' order)."""
    lake_url = str(tmp_path / "lake")
    generate(lake_url, courses=20_000, seed=1)
    ids = sorted(random.Random(3).sample(range(1, 20_001), 1_000))
    lake = open_lake(lake_url)
    cancel(lake, ids, None)

    (removal,) = changes(lake, lake.commits(1, 1), frozenset()).removals

    assert removal.rows["course_id"].to_pylist() == ids
