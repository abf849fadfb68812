"""Dimension snapshots: a rename is legitimate data and is applied whatever names move where
(swaps, rotations, a retired name reused), on every database; rows a snapshot no longer lists
are kept."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from coursemart import model
from coursemart.errors import LakeError
from coursemart.generate import generate
from coursemart.lake import open_lake
from coursemart.load import load
from tests.conftest import WINDOW, snapshot
from tests.test_load import query


def categories_after(lake_dir: Path, url: str, rows: list[tuple[int, str]]) -> dict[int, str]:
    """Load the seed catalog, then a batch whose categories snapshot holds ``rows``."""
    generate(str(lake_dir), courses=20, seed=1, window=WINDOW)
    load(str(lake_dir), url)
    generate(str(lake_dir), courses=5, seed=2, window=WINDOW)
    ids, names = zip(*rows, strict=True)
    table = pa.table(
        {"category_id": list(ids), "category_name": list(names)}, model.CATEGORIES_SCHEMA
    )
    open_lake(str(lake_dir)).write_dimension("categories", table)
    load(str(lake_dir), url)
    return {
        int(str(k)): str(v)
        for k, v in query(url, "SELECT category_id, category_name FROM categories")
    }


SEED = dict(model.CATEGORIES)


@pytest.mark.parametrize(
    ("snapshot_rows", "expected"),
    [
        (
            [(1, "Business"), (2, "Technology"), (3, "Art"), (4, "Science"), (5, "Health")],
            {**SEED, 1: "Business", 2: "Technology"},
        ),
        (
            [(1, "Art"), (2, "Technology"), (3, "Business"), (4, "Science"), (5, "Health")],
            {**SEED, 1: "Art", 2: "Technology", 3: "Business"},
        ),
        (
            [
                (1, "Computing"),
                (6, "Technology"),
                (2, "Business"),
                (3, "Art"),
                (4, "Science"),
                (5, "Health"),
            ],
            {**SEED, 1: "Computing", 6: "Technology"},
        ),
        ([(1, "Computing"), (3, "Arts")], {**SEED, 1: "Computing", 3: "Arts"}),
    ],
    ids=["a swap", "a rotation", "a retired name reused", "a partial snapshot"],
)
def test_renames_are_applied_whatever_names_move_where(
    lake_dir: Path,
    warehouse_url: str,
    snapshot_rows: list[tuple[int, str]],
    expected: dict[int, str],
) -> None:
    assert categories_after(lake_dir, warehouse_url, snapshot_rows) == expected
    names = query(warehouse_url, "SELECT category_id, category_name FROM vw_most_recent_courses")
    assert all(expected[int(str(k))] == v for k, v in names)


def test_names_that_differ_only_by_case_accents_or_trailing_spaces_are_distinct_everywhere(
    lake_dir: Path, warehouse_url: str
) -> None:
    rows = [*SEED.items(), (6, "ART"), (7, "Straße"), (8, "Strase"), (9, "Health "), (10, "Árt")]

    assert categories_after(lake_dir, warehouse_url, rows) == dict(rows)
    assert len(query(warehouse_url, "SELECT course_id FROM vw_most_recent_courses")) == 25


def test_a_name_still_held_by_a_row_the_snapshot_dropped_is_refused_naming_the_line(
    lake_dir: Path, warehouse_url: str
) -> None:
    with pytest.raises(
        LakeError,
        match=r"categories.csv line 3: category_name 'Health' is still held by category_id 5",
    ):
        categories_after(lake_dir, warehouse_url, [(1, "Technology"), (9, "Health")])

    assert len(snapshot(warehouse_url)["courses"]) == 20  # the second batch did not load
