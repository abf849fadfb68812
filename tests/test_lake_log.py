"""The table's log as it ages: a checkpoint, and commits that expired behind it."""

from __future__ import annotations

from pathlib import Path

import pytest
from deltalake import DeltaTable

from coursemart.errors import LakeError
from coursemart.generate import generate
from coursemart.lake import open_lake
from coursemart.lake.upkeep import cancel
from coursemart.load import load
from tests.conftest import WINDOW
from tests.test_load import expected_courses, query, stored_courses


def expire_first_commits(lake_dir: Path, count: int) -> None:
    """What delta-rs's log clean-up does once the commits are older than its retention: a
    checkpoint at the latest version, and the oldest commit files gone."""
    DeltaTable(str(lake_dir / "courses")).create_checkpoint()
    for version in range(count):
        (lake_dir / "courses" / "_delta_log" / f"{version:020d}.json").unlink()


def test_a_new_warehouse_loads_a_table_whose_oldest_commits_expired(
    lake_dir: Path, sqlite_url: str
) -> None:
    for seed in (1, 2, 3):
        generate(str(lake_dir), courses=200, seed=seed, window=WINDOW, reschedule=0.1)
    cancel(open_lake(str(lake_dir)), [7, 250], None)
    expire_first_commits(lake_dir, 2)

    result = load(str(lake_dir), sqlite_url)

    assert result.versions == (3,)  # the table as it is at its latest version
    assert stored_courses(sqlite_url) == expected_courses(lake_dir)
    assert 7 not in stored_courses(sqlite_url)
    assert query(sqlite_url, "SELECT version, operation FROM coursemart_versions") == [
        (3, "SNAPSHOT")
    ]


def test_a_warehouse_behind_an_expired_commit_is_told_what_to_do(
    lake_dir: Path, sqlite_url: str
) -> None:
    generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    load(str(lake_dir), sqlite_url)
    generate(str(lake_dir), courses=100, seed=2, window=WINDOW)
    generate(str(lake_dir), courses=100, seed=3, window=WINDOW)
    expire_first_commits(lake_dir, 2)

    with pytest.raises(LakeError, match="no longer holds version 1.*new warehouse"):
        load(str(lake_dir), sqlite_url)
