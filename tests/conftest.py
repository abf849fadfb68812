"""Shared fixtures: temporary lakes, the CLI in-process, and the real database servers.

A test that needs a server it cannot reach is skipped with the reason, except with ``CI=true``,
where it fails: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from coursemart.cli import main
from coursemart.generate import Window

IN_CI = os.environ.get("CI", "").lower() == "true"

#: A fixed window, so that tests do not depend on today's date.
WINDOW = Window(date(2026, 1, 1), date(2026, 12, 31))


def unavailable(reason: str) -> None:
    """Skip (on a laptop) or fail (in CI) a test whose service cannot be had."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``coursemart ARGS…`` in this process; returns its exit code and output."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


# ---------------------------------------------------------------------------------------------
# Warehouses: a fresh, empty one per test, on each backend.

PG_ADMIN = os.environ.get(
    "COURSEMART_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_ADMIN = os.environ.get(
    "COURSEMART_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test"
)
BACKENDS = ("sqlite", "postgresql", "mariadb")


def _reachable(url: str) -> str | None:
    """None when a connection works, else why not."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{url.split('@')[-1]} is not reachable ({type(exc).__name__})"
    finally:
        engine.dispose()


def new_warehouse(backend: str, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a new empty warehouse on ``backend``; drop it afterwards."""
    import uuid

    import sqlalchemy as sa

    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
        return
    name = f"cm_{uuid.uuid4().hex[:12]}"
    admin_url = PG_ADMIN if backend == "postgresql" else MARIADB_ADMIN
    problem = _reachable(admin_url)
    if problem:
        unavailable(problem)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    if backend == "postgresql":
        create, drop = f"CREATE SCHEMA {name}", f"DROP SCHEMA IF EXISTS {name} CASCADE"
        url = f"{admin_url}?options=-csearch_path%3D{name}"
    else:
        create, drop = f"CREATE DATABASE {name}", f"DROP DATABASE IF EXISTS {name}"
        url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.exec_driver_sql(create)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(drop)
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh warehouse on SQLite, PostgreSQL and MariaDB in turn."""
    yield from new_warehouse(request.param, tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    yield from new_warehouse("postgresql", tmp_path)


def committed(url: str, work: Callable[[Any], object]) -> None:
    """Run ``work`` on a connection to the warehouse inside one transaction, then commit."""
    from coursemart import warehouse

    engine = warehouse.create_engine(url)
    try:
        with engine.begin() as connection:
            work(connection)
    finally:
        engine.dispose()


def empty_warehouse(url: str) -> None:
    """Tables and view, no rows."""
    from coursemart import warehouse

    committed(url, warehouse.ensure_schema)


def execute(url: str, sql: str) -> None:
    """Run one SQL statement on the warehouse, committed (what a DBA's change would do)."""
    committed(url, lambda connection: connection.exec_driver_sql(sql))


def snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every coursemart table, in key order: to prove a warehouse did not change."""
    import sqlalchemy as sa

    from coursemart import warehouse

    engine = warehouse.create_engine(url)
    try:
        with engine.connect() as connection:
            names = set(sa.inspect(connection).get_table_names())
            result = {}
            for table in warehouse.metadata.sorted_tables:
                if table.name in names:
                    query = sa.select(table).order_by(*table.primary_key.columns)
                    result[table.name] = [tuple(row) for row in connection.execute(query)]
            return result
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------
# Azure Blob Storage: Azurite, the emulator, started for the session.

#: The emulator's published development key, the same for every Azurite: not a secret.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def _azurite_binary() -> str | None:
    import shutil

    local = Path(__file__).resolve().parent.parent / ".cache" / "azurite" / "node_modules" / ".bin"
    candidate = local / "azurite-blob"
    return str(candidate) if candidate.exists() else shutil.which("azurite-blob")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Azurite blob service; yields its connection string."""
    import socket
    import time

    binary = _azurite_binary()
    if binary is None:
        unavailable("Azurite is not installed: `make test` installs it with npm (needs Node.js)")
    assert binary is not None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("azurite")
    command = [
        binary,
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(folder),
    ]
    command += ["--silent", "--skipApiVersionCheck", "--loose"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                unavailable(f"Azurite did not start on 127.0.0.1:{port}")
            time.sleep(0.2)
    try:
        yield (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any]) -> None:
    """Ask a server to stop; kill it if it has not within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def azure_lake(azurite: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ``abfs://`` lake URL in a new container of the Azurite service."""
    import uuid

    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    container = f"lake-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(azurite).create_container(container)
    return f"abfs://{container}/coursemart"
