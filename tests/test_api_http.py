"""HTTP hardening: HEAD on every GET route, security headers on every answer, a redirect that
never names a host, API keys that work in every place or are refused when read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from coursemart.api import create_app
from coursemart.api.logs import mask_query
from tests.conftest import CliResult
from tests.test_api import fill, settings_for


@pytest.fixture(scope="module")
def sqlite_warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("http")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    fill(folder / "lake", url, courses=200, crowded=0)
    return url


@pytest.fixture(params=["", "the-key"], ids=["open", "keyed"])
def client(request: pytest.FixtureRequest, sqlite_warehouse: str) -> Iterator[TestClient]:
    app = create_app(settings_for(sqlite_warehouse, api_keys=request.param))
    headers = {"x-api-key": request.param} if request.param else {}
    with TestClient(app, headers={**headers, "x-request-id": "fixed"}) as test_client:
        yield test_client


def get_paths(client: TestClient) -> list[str]:
    """Every GET operation of the OpenAPI document, the pages and static files."""
    documented = client.get("/openapi.json").json()["paths"]
    operations = [path for path, methods in documented.items() if "get" in methods]
    pages = ["/", "/docs", "/openapi.json", "/static/app.js", "/static/swagger-ui/swagger-ui.css"]
    return operations + pages


def test_every_get_route_answers_head_with_its_status_and_headers_and_no_body(
    client: TestClient,
) -> None:
    paths = get_paths(client)
    assert {"/health", "/ready", "/metrics", "/v1/freshness", "/v1/courses/recent"} <= set(paths)
    for path in paths:
        got = client.get(path)
        head = client.head(path)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        ignored = {"x-request-id", "date"}
        if path in ("/metrics", "/v1/freshness"):  # counts and ages move between two requests
            ignored |= {"content-length"}
        same = {k: v for k, v in got.headers.items() if k not in ignored}
        assert {k: v for k, v in head.headers.items() if k not in ignored} == same, path


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/courses/recent"),
        ("GET", "/v1/courses/recent?limit=0"),
        ("GET", "/nowhere"),
        ("DELETE", "/v1/levels"),
        ("GET", "/"),
        ("GET", "/docs"),
        ("GET", "/static/app.js"),
        ("GET", "/static/missing.js"),
        ("HEAD", "/health"),
        ("GET", "/metrics"),
    ],
)
def test_every_answer_forbids_sniffing_and_framing(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_the_pages_where_a_key_can_be_typed_cannot_be_framed(client: TestClient, path: str) -> None:
    policy = client.get(path).headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/v1/levels/", "/v1/levels"),
        ("/v1/courses/recent/?limit=2&category=art", "/v1/courses/recent?limit=2&category=art"),
        ("/health//", "/health"),
    ],
)
def test_a_trailing_slash_redirects_to_a_path_never_to_the_host_the_client_named(
    client: TestClient, path: str, location: str
) -> None:
    response = client.get(path, headers={"host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == location
    assert "evil" not in response.text
    assert client.get(path, follow_redirects=True).status_code == 200


def raw_get(app: Any, path: str) -> tuple[int, dict[str, str]]:
    """GET ``path`` exactly as written (HTTP clients would read ``//host/`` as a host)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"evil.example")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    start = messages[0]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


@pytest.mark.parametrize("path", ["//evil.example/", "/nowhere/", "/v1/", "///v1/levels/"])
def test_a_trailing_slash_on_no_route_is_404_not_a_redirect(client: TestClient, path: str) -> None:
    status, headers = raw_get(client.app, path)
    assert status == 404
    assert "location" not in headers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/static/missing.js", 404),
        ("GET", "/v1/courses/9000000", 404),
        ("DELETE", "/v1/levels", 405),
        ("POST", "/api/GetRecentCourses", 400),
        ("GET", "/v1/courses/recent?limit=0", 422),
        ("GET", "/v1/courses/recent?limit=050&categroy=art", 422),
        ("GET", "/v1/courses/recent?limit=5&category=art&categroy=art", 422),
        ("GET", "/v1/courses/recent?cursor=AAAA", 422),
    ],
)
def test_no_error_answer_is_kept_by_a_cache(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["cache-control"] == "no-store"


def test_a_refused_key_is_not_kept_by_a_cache_and_good_answers_are(sqlite_warehouse: str) -> None:
    with TestClient(create_app(settings_for(sqlite_warehouse, api_keys="k1"))) as client:
        for path in ("/v1/levels", "/metrics", "/v1/courses/recent?limit=2"):
            refused = client.get(path, headers={"x-api-key": "wrong"})
            assert (refused.status_code, refused.headers["cache-control"]) == (401, "no-store")
        good = client.get("/v1/levels", headers={"x-api-key": "k1"})
        assert good.headers["cache-control"] == "private, max-age=10"
        etag = {"x-api-key": "k1", "if-none-match": good.headers["etag"]}
        assert client.get("/v1/levels", headers=etag).headers["cache-control"] == (
            "private, max-age=10"
        )


@pytest.mark.parametrize("path", ["/v1/courses/recent?limit=3", "/v1/courses/recent?limit=050"])
def test_a_bug_is_a_500_with_the_same_headers_and_no_traceback(
    sqlite_warehouse: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings_for(sqlite_warehouse))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in reading courses")

    with TestClient(app, raise_server_exceptions=False) as client:
        app.state.service.catalog.recent = broken  # the one place a bug is made up
        response = client.get(path, headers={"x-request-id": "bug-1"})
    assert response.status_code == 500
    assert response.json()["message"] == "internal error; it has been logged"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-request-id"] == "bug-1"
    assert response.headers["cache-control"] == "no-store"
    assert "Traceback" not in response.text
    assert any("a bug in reading courses" in r.getMessage() or r.exc_info for r in caplog.records)


def test_the_request_id_is_echoed_or_made(sqlite_warehouse: str) -> None:
    with TestClient(create_app(settings_for(sqlite_warehouse))) as client:
        assert client.get("/health", headers={"x-request-id": "abc-123"}).headers[
            "x-request-id"
        ] == ("abc-123")
        made = {client.get("/health").headers["x-request-id"] for _ in range(3)}
        assert len(made) == 3
        for odd in ("a b", "x" * 65, "line\\nbreak", '"quoted"'):
            made_here = client.get("/health", headers={"x-request-id": odd}).headers
            assert made_here["x-request-id"] != odd


# ---------------------------------------------------------------------------------------------
# API keys: masked in logs as the server parses them; ASCII or refused


@pytest.mark.parametrize(
    ("query", "masked"),
    [
        ("code=k3y&limit=1", "code=***&limit=1"),
        ("limit=1&%63ode=k3y", "limit=1&%63ode=***"),
        ("limit=1&%43ODE=k3y", "limit=1&%43ODE=***"),
        ("limit=1;code=k3y", "limit=***"),  # the whole piece: the server reads it as limit
        ("a=1%3Bcode%3Dk3y&b=2", "a=***&b=2"),
        ("c%6fde=k3y", "c%6fde=***"),
        ("co+de=k3y", "co+de=k3y"),  # "co de" is no parameter the server reads, nor is it a key
        ("api_key=k3y", "api_key=***"),
        ("codex=1&decode=2", "codex=1&decode=2"),
        ("", ""),
    ],
)
def test_logged_queries_hide_keys_however_the_parameter_is_spelled(query: str, masked: str) -> None:
    assert mask_query(query) == masked


@pytest.mark.parametrize("spelling", ["code", "%63ode", "%63%6F%64%65"])
def test_the_server_reads_the_key_under_each_spelling_the_log_masks(
    sqlite_warehouse: str, spelling: str
) -> None:
    with TestClient(create_app(settings_for(sqlite_warehouse, api_keys="k3y"))) as client:
        assert client.get(f"/v1/levels?{spelling}=k3y").status_code == 200
    assert "k3y" not in mask_query(f"{spelling}=k3y")


@pytest.mark.parametrize(
    "keys", ["caf\u00e9-key", "good,b\u00e4d", "tab\tkey", "with space", "x" * 513]
)
def test_keys_that_could_not_match_everywhere_are_refused_when_settings_are_read(
    sqlite_warehouse: str, keys: str
) -> None:
    with pytest.raises(ValidationError, match="api_keys") as raised:
        settings_for(sqlite_warehouse, api_keys=keys)
    assert keys not in str(raised.value)


def test_the_command_refuses_a_non_ascii_key_in_one_line(
    cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COURSEMART_API_KEYS", "fine-key,cl\u00e9")
    result = cli("serve", "--warehouse", f"sqlite:///{tmp_path / 'w.db'}", "--port", "1")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("coursemart: error: COURSEMART_API_KEYS: ")
    assert "printable ASCII" in lines[0] and "cl\u00e9" not in lines[0]
