"""/metrics in the Prometheus text format, and the server's logs: access lines off by default,
masked when on, JSON with a request id as an option. Real servers, real HTTP."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from coursemart.api import create_app
from tests.serving import serving
from tests.test_api import fill, settings_for


@pytest.fixture(scope="module")
def sqlite_warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("observability")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    fill(folder / "lake", url, courses=200, crowded=0)
    return url


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, read by prometheus-client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def requests_of(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], **labels: str
) -> float:
    key = ("coursemart_http_requests_total", tuple(sorted(labels.items())))
    return found.get(key, 0.0)


def test_metrics_count_requests_per_route_and_status_and_the_data_they_served(
    sqlite_warehouse: str,
) -> None:
    with TestClient(create_app(settings_for(sqlite_warehouse))) as client:
        first = client.get("/v1/courses/recent?limit=7")
        client.get("/v1/courses/recent?limit=7")  # a repeat, answered from memory
        client.get("/v1/courses/recent?limit=7", headers={"if-none-match": first.headers["etag"]})
        client.get("/v1/courses/recent?limit=0")
        client.get("/no/such/path/1")
        client.get("/no/such/path/2")
        client.head("/health")
        response = client.get("/metrics")
        ready = client.get("/ready").json()
        freshness = client.get("/v1/freshness").json()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    recent = {"route": "/v1/courses/recent", "method": "GET"}
    assert requests_of(found, **recent, status="200") == 2
    assert requests_of(found, **recent, status="304") == 1
    assert requests_of(found, **recent, status="422") == 1
    assert requests_of(found, route="unmatched", method="GET", status="404") == 2
    assert requests_of(found, route="/health", method="HEAD", status="200") == 1
    latency = ("coursemart_http_request_duration_seconds_count", (("route", "/v1/courses/recent"),))
    assert found[latency] == 4
    assert found["coursemart_rows_served_total", ()] == 14  # two answers of 7; the 304 sent none
    info = ("coursemart_data_version_info", (("version", ready["data_version"]),))
    assert found[info] == 1
    loaded = datetime.fromisoformat(freshness["loaded_at"]).timestamp()
    assert found["coursemart_last_load_timestamp_seconds", ()] == pytest.approx(loaded)
    age = found["coursemart_last_load_age_seconds", ()]
    assert 0 <= age < time.time() - loaded + 5


def test_pages_static_files_and_the_documents_have_their_own_route_labels(
    sqlite_warehouse: str,
) -> None:
    with TestClient(create_app(settings_for(sqlite_warehouse))) as client:
        for path in ("/static/app.js", "/static/style.css", "/static/nothing.js", "/openapi.json"):
            client.get(path)
        client.head("/static/app.js")
        client.get("/docs")
        client.get("/static/swagger-ui/swagger-ui.css")
        found = samples(client.get("/metrics").text)
    assert requests_of(found, route="/static", method="GET", status="200") == 2
    assert requests_of(found, route="/static", method="GET", status="404") == 1
    assert requests_of(found, route="/static", method="HEAD", status="200") == 1
    assert requests_of(found, route="/openapi.json", method="GET", status="200") == 1
    assert requests_of(found, route="/docs", method="GET", status="200") == 1
    assert requests_of(found, route="/static/swagger-ui", method="GET", status="200") == 1
    assert requests_of(found, route="unmatched", method="GET", status="200") == 0


def test_metrics_report_the_process_cpu_memory_and_open_files(sqlite_warehouse: str) -> None:
    with TestClient(create_app(settings_for(sqlite_warehouse))) as client:
        found = samples(client.get("/metrics").text)
    assert found["process_cpu_seconds_total", ()] > 0
    assert found["process_resident_memory_bytes", ()] > 10 << 20
    assert 3 <= found["process_open_fds", ()] <= found["process_max_fds", ()]
    assert found["process_start_time_seconds", ()] <= time.time()


def test_metrics_are_behind_the_api_key_when_keys_are_set(sqlite_warehouse: str) -> None:
    with TestClient(create_app(settings_for(sqlite_warehouse, api_keys="k1"))) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"x-api-key": "k1"}).status_code == 200
        assert client.get("/metrics?code=k1").status_code == 200
        # as Prometheus sends it: authorization: {type: Bearer, credentials_file: ...}
        assert client.get("/metrics", headers={"authorization": "Bearer k1"}).status_code == 200


# ---------------------------------------------------------------------------------------------
# The server as users start it


KEY = "k3y-s3cret"
KEYED_PATHS = [f"/v1/levels?code={KEY}", f"/v1/levels?%63ode={KEY}", f"/v1/levels?x=1;code={KEY}"]


def test_the_access_log_is_off_by_default(sqlite_warehouse: str) -> None:
    with serving(sqlite_warehouse, COURSEMART_API_KEYS=KEY) as served:
        assert served.get(KEYED_PATHS[0])[0] == 200
    assert "access log off" in served.log
    assert "/v1/levels" not in served.log
    assert KEY not in served.log


def test_the_access_log_masks_keys_however_they_are_sent(sqlite_warehouse: str) -> None:
    with serving(sqlite_warehouse, "--access-log", COURSEMART_API_KEYS=KEY) as served:
        statuses = [served.get(path)[0] for path in KEYED_PATHS]
        bearer = served.get("/v1/categories", Authorization=f"Bearer {KEY}")[0]
    assert statuses == [200, 200, 401]  # ";code=" is not a key to the server, nor in the log
    assert bearer == 200
    assert KEY not in served.log
    assert '"GET /v1/categories HTTP/1.1" 200' in served.log
    assert '"GET /v1/levels?code=*** HTTP/1.1" 200' in served.log
    assert '"GET /v1/levels?%63ode=*** HTTP/1.1" 200' in served.log
    assert '"GET /v1/levels?x=*** HTTP/1.1" 401' in served.log


FORGED = "/v1/levels%0D%0AFAKE-LINE%20GET%20/admin%20200%1B[31m"
#: A key where the server never reads one: in another parameter's value, encoded, in the path.
MISPLACED_KEYS = [
    f"/v1/levels?x=code={KEY}",
    f"/v1/levels?code%3D{KEY}",
    f"/v1/{KEY}/levels",
    "/v1/levels?q=%6B3y-s3cret",
]


def test_no_request_can_forge_an_access_line_or_leave_a_key_in_it(sqlite_warehouse: str) -> None:
    with serving(sqlite_warehouse, "--access-log", COURSEMART_API_KEYS=KEY) as served:
        forged = served.status(FORGED)
        misplaced = [served.status(path) for path in MISPLACED_KEYS]
        served.get(f"/v1/levels?code={KEY}", **{"X-Forwarded-For": "203.0.113.9"})
    lines = served.log.splitlines()

    assert forged == 404 and misplaced == [401, 401, 404, 401]
    assert not any(line.startswith("FAKE-LINE") for line in lines)
    assert "\x1b" not in served.log and "\r" not in served.log
    assert any("/v1/levels\\x0d\\x0aFAKE-LINE GET /admin 200\\x1b[31m" in line for line in lines)
    assert KEY not in served.log and "%6B3y-s3cret" not in served.log
    assert sum("***" in line for line in lines if "coursemart.access" in line) == 5
    assert "203.0.113.9" not in served.log  # a client cannot choose its logged address


def test_forwarded_addresses_are_believed_from_the_proxies_named(sqlite_warehouse: str) -> None:
    with serving(
        sqlite_warehouse, "--access-log", COURSEMART_FORWARDED_ALLOW_IPS="127.0.0.1"
    ) as served:
        served.get("/v1/levels", **{"X-Forwarded-For": "203.0.113.9"})

    assert '203.0.113.9:0 "GET /v1/levels HTTP/1.1" 200' in served.log


def test_json_logs_carry_the_request_id(tmp_path: Path, sqlite_warehouse: str) -> None:
    missing = f"sqlite:///{tmp_path / 'nowhere' / 'warehouse.db'}"
    with serving(missing, "--access-log", "--log-format", "json") as served:
        status, headers, _ = served.get("/v1/levels", **{"X-Request-ID": "trace-42"})
        assert status == 503
        assert headers["x-request-id"] == "trace-42"
        _, made, _ = served.get("/health")
    entries = [json.loads(line) for line in served.log.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    about_42 = [entry for entry in entries if entry.get("request_id") == "trace-42"]
    assert {entry["logger"] for entry in about_42} == {"coursemart.api", "coursemart.access"}
    warning = next(entry for entry in about_42 if entry["logger"] == "coursemart.api")
    assert warning["level"] == "warning" and "warehouse unavailable" in warning["message"]
    access = next(entry for entry in about_42 if entry["logger"] == "coursemart.access")
    assert (access["method"], access["path"], access["status"]) == ("GET", "/v1/levels", 503)
    assert any(entry.get("request_id") == made["x-request-id"] for entry in entries)


def worker_pids(text: str) -> set[str]:
    """The workers whose process metrics an exposition holds."""
    return {
        dict(labels)["pid"]
        for (name, labels) in samples(text)
        if name == "process_resident_memory_bytes"
    }


def test_several_workers_report_every_worker_s_counts(sqlite_warehouse: str) -> None:
    with serving(sqlite_warehouse, "--workers", "2") as served:
        deadline = time.monotonic() + 90  # a busy machine starts the second worker late
        while len(worker_pids(served.get("/metrics")[2].decode())) < 2:
            assert time.monotonic() < deadline, "the second worker did not start in 90 s"
            time.sleep(0.2)
        for number in range(40):  # new connections: both workers get some
            assert served.get(f"/v1/courses/recent?limit={number % 5 + 1}")[0] == 200
        texts = [served.get("/metrics")[2].decode() for _ in range(6)]
    counted = {
        requests_of(samples(text), route="/v1/courses/recent", method="GET", status="200")
        for text in texts
    }
    assert counted == {40.0}  # whichever worker answered /metrics
    # each worker's own CPU, memory and open files, labelled by its pid, whichever answered
    memory = [
        {labels: value for (name, labels), value in samples(text).items()
         if name == "process_resident_memory_bytes"}
        for text in texts
    ]  # fmt: skip
    pids = {labels for found in memory for labels in found}
    assert len(pids) == 2 and all(set(found) == pids for found in memory)
    assert all(value > 10 << 20 for found in memory for value in found.values())
    started = set(re.findall(r"Started server process \[(\d+)\]", served.log))
    assert {dict(labels)["pid"] for labels in pids} <= started
    folder = next(
        line.split("metrics of the workers in ")[1].strip()
        for line in served.log.splitlines()
        if "metrics of the workers in " in line
    )
    assert not Path(folder).exists()  # removed when the server stopped
