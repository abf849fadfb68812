"""The lake on Azure Blob Storage (Azurite): the same code as a local folder, end to end, and
the credentials delta-rs's object store is given for each way adlfs is."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from coursemart import model
from coursemart.generate import Window, generate
from coursemart.lake import new_id, open_lake
from coursemart.lake.cloud import DeltaStorage, azure_storage, delta_storage
from coursemart.load import load
from tests.conftest import AZURITE_KEY, WINDOW, CliResult, snapshot

Cli = Callable[..., CliResult]


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


def test_cancel_status_load_and_vacuum_through_an_abfs_lake(
    cli: Cli, azure_lake: str, sqlite_url: str
) -> None:
    window = ["--start", "2026-01-01", "--end", "2026-12-31"]
    for seed in ("1", "2", "3"):  # from the third commit on, delta-rs reads the log from a version
        made = cli("generate", "-q", "-n", "300", "--seed", seed, "--lake", azure_lake, *window)
        assert made.exit_code == 0, made.stderr
    lake = open_lake(azure_lake)
    killed = lake.batch_writer(new_id(), model.COURSES_SCHEMA)
    killed.write_part(courses_table([901, 902]))

    cancelled = cli("cancel", "5", "301", "--lake", azure_lake)
    pending = cli("status", "--lake", azure_lake, "--warehouse", sqlite_url)
    loaded = cli("load", "--lake", azure_lake, "--warehouse", sqlite_url)
    vacuumed = cli("lake", "vacuum", "--retention-hours", "0", "--lake", azure_lake)
    after = cli("status", "--lake", azure_lake, "--warehouse", sqlite_url)

    assert cancelled.stdout == "cancelled 2 course rows (version 3); load to apply\n"
    assert "  version 3  cancel" in pending.stdout
    assert "versions 0–3" in loaded.stdout and "2 cancelled courses removed" in loaded.stdout
    assert vacuumed.stdout.startswith("removed 1 uncommitted batch folders and 2 files")
    assert "cancelled courses 2" in after.stdout
    ids = [row[0] for row in snapshot(sqlite_url)["courses"]]
    assert ids == [i for i in range(1, 901) if i not in (5, 301)]
    assert open_lake(azure_lake).uncommitted_batches() == []
    assert not lake.fs.exists(lake.batch_dir(killed.batch_id))


def courses_table(ids: list[int]) -> pa.Table:
    """Rows for ``ids``, of the lake's schema."""
    start = datetime(2026, 6, 1, 9, tzinfo=UTC)
    return pa.table(
        {
            "course_id": ids,
            "course_name": [f"Course {i}" for i in ids],
            "category_id": [1] * len(ids),
            "level_id": [101] * len(ids),
            "start_date": [start] * len(ids),
        },
        model.COURSES_SCHEMA,
    )


@pytest.fixture
def sas_lake(azure_lake: str, azurite: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The ``azure_lake`` reached with an account SAS in the connection string, not the key."""
    from adlfs import AzureBlobFileSystem
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(
        "devstoreaccount1",
        AZURITE_KEY,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    endpoint = azurite.split("BlobEndpoint=", 1)[1].rstrip(";")
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", f"BlobEndpoint={endpoint};SharedAccessSignature={sas}"
    )
    AzureBlobFileSystem.clear_instance_cache()  # fsspec keeps filesystems made with the key
    yield azure_lake
    AzureBlobFileSystem.clear_instance_cache()


def test_a_sas_connection_string_writes_commits_and_loads(sas_lake: str, sqlite_url: str) -> None:
    for seed in (1, 2, 3):
        generate(sas_lake, courses=100, seed=seed, window=WINDOW)

    result = load(sas_lake, sqlite_url)

    lake = open_lake(sas_lake)
    assert set(lake.storage_options or {}) == {"use_emulator", "account_name", "sas_token"}
    assert (result.rows_loaded, result.versions) == (300, (0, 1, 2))


ACCOUNT_KEY = "a2V5"  # base64, as account keys are


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        (
            {
                "connection_string": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
            },
            DeltaStorage(
                {
                    "use_emulator": "true",
                    "account_name": "devstoreaccount1",
                    "account_key": AZURITE_KEY,
                },
                "http://127.0.0.1:10001",
            ),
        ),
        (
            {"connection_string": "UseDevelopmentStorage=true"},
            DeltaStorage(
                {"use_emulator": "true", "account_name": "devstoreaccount1"},
                "http://127.0.0.1:10000",
            ),
        ),
        (
            {
                "connection_string": "DefaultEndpointsProtocol=https;AccountName=acme;"
                f"AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
            },
            DeltaStorage({"account_name": "acme", "account_key": ACCOUNT_KEY}),
        ),
        (
            {
                "connection_string": "DefaultEndpointsProtocol=https;AccountName=acme;"
                f"AccountKey={ACCOUNT_KEY};EndpointSuffix=core.chinacloudapi.cn"
            },
            DeltaStorage(
                {
                    "azure_storage_endpoint": "https://acme.blob.core.chinacloudapi.cn",
                    "account_name": "acme",
                    "account_key": ACCOUNT_KEY,
                }
            ),
        ),
        (
            {
                "connection_string": "BlobEndpoint=https://acme.blob.core.windows.net/;"
                "SharedAccessSignature=sv=2024-11-04&ss=b&sig=a%2Bb%3D"
            },
            DeltaStorage(
                {
                    "azure_storage_endpoint": "https://acme.blob.core.windows.net",
                    "account_name": "acme",
                    "sas_token": "sv=2024-11-04&ss=b&sig=a%2Bb%3D",
                }
            ),
        ),
        (
            {"account_name": "acme", "account_key": ACCOUNT_KEY},
            DeltaStorage({"account_name": "acme", "account_key": ACCOUNT_KEY}),
        ),
        (
            {"account_name": "acme", "sas_token": "?sv=2024-11-04&sig=x"},
            DeltaStorage({"account_name": "acme", "sas_token": "sv=2024-11-04&sig=x"}),
        ),
        (
            {
                "account_name": "acme",
                "account_key": ACCOUNT_KEY,
                "account_host": "acme.blob.example",
            },
            DeltaStorage(
                {
                    "azure_storage_endpoint": "https://acme.blob.example",
                    "account_name": "acme",
                    "account_key": ACCOUNT_KEY,
                }
            ),
        ),
        (
            {"account_name": "acme", "identity_endpoint": "http://localhost:42356/msi/token"},
            DeltaStorage(
                {"account_name": "acme", "msi_endpoint": "http://localhost:42356/msi/token"}
            ),
        ),
        (
            {
                "account_name": "acme",
                "account_key": ACCOUNT_KEY,
                "identity_endpoint": "http://localhost:42356/msi/token",
            },
            DeltaStorage({"account_name": "acme", "account_key": ACCOUNT_KEY}),
        ),
        ({}, DeltaStorage()),
    ],
    ids=[
        "azurite",
        "development-storage",
        "account-key",
        "other-cloud",
        "sas-connection-string",
        "name-and-key",
        "name-and-sas",
        "account-host",
        "managed-identity",
        "key-over-identity",
        "nothing",
    ],
)
def test_azure_credentials_become_object_store_options(
    credentials: dict[str, str], expected: DeltaStorage
) -> None:
    assert azure_storage(**credentials) == expected


@pytest.mark.parametrize("url", ["s3://bucket/lake", "/srv/lake", "file:///srv/lake"])
def test_other_lakes_give_delta_rs_no_options(url: str) -> None:
    assert delta_storage(url, None) == DeltaStorage()
