"""The lake on Azure Blob Storage (Azurite): the same code as a local folder, end to end."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from coursemart import model
from coursemart.generate import Window, generate
from coursemart.lake import new_id, open_lake
from coursemart.load import load
from tests.conftest import WINDOW, snapshot


def test_generate_and_load_through_an_abfs_lake(azure_lake: str, sqlite_url: str) -> None:
    first = generate(azure_lake, courses=20_000, seed=1, window=WINDOW, chunk_rows=8_000)
    later = Window(date(2027, 1, 1), date(2027, 1, 31))
    second = generate(azure_lake, courses=1_000, seed=1, window=later, reschedule=0.1)

    result = load(azure_lake, sqlite_url)

    lake = open_lake(azure_lake)
    assert not lake.is_local
    assert lake.committed_batches() == [first.batch_id, second.batch_id]
    assert second.first_id == 20_001 and second.rescheduled == 2_000
    assert (result.rows_read, result.rows_loaded) == (23_000, 23_000)
    assert len(snapshot(sqlite_url)["courses"]) == 21_000
    assert load(azure_lake, sqlite_url).status == "nothing to do"


def test_an_uncommitted_abfs_batch_is_invisible_and_dimensions_replace_whole(
    azure_lake: str,
) -> None:
    lake = open_lake(azure_lake, create=True)
    writer = lake.batch_writer(new_id(), model.COURSES_SCHEMA)
    writer.write_part(
        pa.table({name: [] for name in model.COURSES_SCHEMA.names}, model.COURSES_SCHEMA)
    )
    lake.write_dimension("levels", model.levels_table())

    assert lake.committed_batches() == []
    assert lake.uncommitted_batches() == [writer.batch_id]
    levels = lake.read_dimension("levels", model.LEVELS_SCHEMA)
    assert levels.to_pylist() == model.levels_table().to_pylist()


def test_rejected_rows_are_written_to_the_abfs_lake(azure_lake: str, sqlite_url: str) -> None:
    generate(azure_lake, courses=100, seed=1, window=WINDOW)
    lake = open_lake(azure_lake)
    only_art = pa.table({"category_id": [3], "category_name": ["Art"]}, model.CATEGORIES_SCHEMA)
    lake.write_dimension("categories", only_art)

    result = load(azure_lake, sqlite_url)

    rejected = lake.read_rejected(result.load_id)
    assert len(rejected) == result.rows_rejected > 0
    assert {row["reason"].split(":")[0] for row in rejected} == {"unknown category_id"}
    assert result.rejected_path == lake.path("_rejected", f"load_id={result.load_id}")


@pytest.mark.parametrize("url", ["abfs://lake/coursemart", "az://lake/coursemart"])
def test_azure_urls_open_with_adlfs(
    url: str, azurite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)

    lake = open_lake(url)

    assert type(lake.fs).__name__ == "AzureBlobFileSystem"
    assert lake.root == "lake/coursemart"
