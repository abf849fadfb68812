"""``/v1/freshness`` and ``/metrics`` say how far the warehouse is behind the lake: the table's
latest version and commit time, the latest version loaded, and the lag (versions and seconds).
Real lakes, real warehouses (SQLite and PostgreSQL), the app over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from coursemart.api import create_app
from coursemart.api.freshness import LAKE_TTL
from coursemart.generate import generate
from coursemart.lake import open_lake
from coursemart.load import load
from tests.conftest import WINDOW, new_warehouse
from tests.test_api import settings_for
from tests.test_api_observability import samples


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from new_warehouse(request.param, tmp_path)


def commit_time(lake: Path, version: int) -> float:
    return open_lake(str(lake)).commits(version, version)[0].timestamp.timestamp()


def test_freshness_gives_the_lakes_latest_version_the_loaded_one_and_the_lag(
    tmp_path: Path, url: str
) -> None:
    lake = tmp_path / "lake"
    generate(str(lake), courses=100, seed=1, window=WINDOW)
    load(str(lake), url)

    with TestClient(create_app(settings_for(url, lake=str(lake)))) as client:
        current = client.get("/v1/freshness").json()
        assert current["lake_version"] == 0
        assert current["loaded_version"] == 0
        assert current["lag_versions"] == 0
        assert current["lag_seconds"] == 0
        committed = datetime.fromisoformat(current["lake_committed_at"]).timestamp()
        assert committed == pytest.approx(commit_time(lake, 0), abs=0.001)

        generate(str(lake), courses=50, seed=2, window=WINDOW)  # version 1, not loaded
        generate(str(lake), courses=50, seed=3, window=WINDOW)  # version 2, not loaded
        time.sleep(LAKE_TTL + 0.1)
        before = time.time()
        behind = client.get("/v1/freshness").json()
        metrics = samples(client.get("/metrics").text)

        assert behind["lake_version"] == 2
        assert behind["loaded_version"] == 0
        assert behind["lag_versions"] == 2
        waited = before - commit_time(lake, 1)  # the oldest version waiting is 1
        assert waited - 1 <= behind["lag_seconds"] <= waited + 5
        assert metrics["coursemart_lake_version", ()] == 2
        assert metrics["coursemart_loaded_lake_version", ()] == 0
        assert metrics["coursemart_lake_lag_versions", ()] == 2
        assert metrics["coursemart_lake_lag_seconds", ()] >= behind["lag_seconds"]
        assert metrics["coursemart_lake_commit_timestamp_seconds", ()] == pytest.approx(
            commit_time(lake, 2), abs=0.001
        )

        load(str(lake), url)
        time.sleep(LAKE_TTL + 0.1)
        caught_up = client.get("/v1/freshness").json()
    assert (caught_up["lake_version"], caught_up["loaded_version"]) == (2, 2)
    assert (caught_up["lag_versions"], caught_up["lag_seconds"]) == (0, 0)


def test_a_warehouse_that_loaded_nothing_of_the_table_waits_since_its_first_commit(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    generate(str(tmp_path / "other"), courses=20, seed=1, window=WINDOW)
    load(str(tmp_path / "other"), url)  # the warehouse loaded another table
    generate(str(lake), courses=20, seed=1, window=WINDOW)

    with TestClient(create_app(settings_for(url, lake=str(lake)))) as client:
        found = client.get("/v1/freshness").json()
    assert found["lake_version"] == 0
    assert found["loaded_version"] is None
    assert found["lag_versions"] == 1
    assert found["lag_seconds"] >= 0


def test_a_server_that_cannot_read_the_lake_answers_with_the_lake_fields_null(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    generate(str(lake), courses=20, seed=1, window=WINDOW)
    load(str(lake), url)

    settings = settings_for(url, lake=str(tmp_path / "no-lake-here"))
    with TestClient(create_app(settings)) as client:
        response = client.get("/v1/freshness")
        metrics = client.get("/metrics").text
    assert response.status_code == 200
    body = response.json()
    assert body["data_version"] is not None
    for field in ("lake_version", "lake_committed_at", "loaded_version", "lag_versions"):
        assert body[field] is None
    assert "coursemart_lake_version" not in metrics
