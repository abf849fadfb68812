"""``start_date`` is UTC on every database: the documented recipes give clients a time-zone-aware
column, checked against the instants the lake holds."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from coursemart.generate import generate
from coursemart.load import load
from tests.conftest import WINDOW

API_DOCS = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def documented_recipe() -> str:
    """The pandas recipe of docs/api.md: its Python block that reads the view."""
    blocks = re.findall(r"```python\n(.*?)```", API_DOCS.read_text(encoding="utf-8"), re.DOTALL)
    (recipe,) = [block for block in blocks if "parse_dates" in block]
    return str(recipe)


def lake_instants(lake: Path) -> dict[int, datetime]:
    """Each course's start in the lake (aware UTC, as generate wrote it)."""
    table = pq.read_table(
        [str(path) for path in sorted(lake.glob("courses/*/part-*.parquet"))],
        columns=["course_id", "start_date"],
    )
    return dict(zip(table["course_id"].to_pylist(), table["start_date"].to_pylist(), strict=True))


def test_the_documented_pandas_recipe_gives_aware_utc_instants_from_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(str(tmp_path / "lake"), courses=300, seed=1, window=WINDOW)
    (tmp_path / "data").mkdir()
    load(str(tmp_path / "lake"), f"sqlite:///{tmp_path / 'data' / 'warehouse.db'}")
    monkeypatch.chdir(tmp_path)  # the recipe opens data/warehouse.db, as `make run` makes it

    names: dict[str, Any] = {}
    exec(compile(documented_recipe(), str(API_DOCS), "exec"), names)
    courses = names["courses"]

    assert str(courses["start_date"].dtype).endswith(", UTC]")
    read = dict(zip(courses["course_id"], courses["start_date"], strict=True))
    assert read == lake_instants(tmp_path / "lake")
    assert len(read) == 300


def test_the_same_parse_dates_gives_aware_utc_instants_on_every_database(
    tmp_path: Path, warehouse_url: str
) -> None:
    import pandas as pd
    import sqlalchemy as sa

    generate(str(tmp_path / "lake"), courses=300, seed=1, window=WINDOW)
    load(str(tmp_path / "lake"), warehouse_url)
    engine = sa.create_engine(warehouse_url)
    try:
        courses = pd.read_sql(
            "SELECT * FROM vw_most_recent_courses",
            engine,
            parse_dates={"start_date": {"utc": True}},
        )
    finally:
        engine.dispose()

    assert str(courses["start_date"].dtype).endswith(", UTC]")
    read = dict(zip(courses["course_id"], courses["start_date"], strict=True))
    assert read == lake_instants(tmp_path / "lake")
