"""The Azure Functions entry point serves the same app: same status, body and ETag."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import pytest
from fastapi.testclient import TestClient

from coursemart.api import create_app
from tests.test_api import fill, settings_for

ROOT = Path(__file__).resolve().parent.parent

REQUESTS = [
    ("GET", "/api/GetRecentCourses"),
    ("GET", "/api/GetRecentCourses?limit=3"),
    ("GET", "/v1/courses/recent?limit=5&category=art&level=Beginner"),
    ("GET", "/v1/courses/recent?since=2026-06-01&until=2026-07-01T00:00:00Z"),
    ("GET", "/v1/categories"),
    ("GET", "/v1/levels"),
    ("GET", "/v1/courses/recent?limit=5000"),
    ("GET", "/v1/courses/recent?cursor=bogus"),
    ("POST", "/api/GetRecentCourses"),
    ("DELETE", "/API/GETRECENTCOURSES"),
    ("GET", "/api/getrecentcourses?limit=2"),
    ("POST", "/v1/courses/recent"),
    ("GET", "/nowhere"),
    ("GET", "/health"),
    ("GET", "/"),
]


def load_function_app() -> ModuleType:
    """Import ``function_app.py`` afresh, as the Functions host does, with today's environment."""
    spec = importlib.util.spec_from_file_location("function_app", ROOT / "function_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def filled_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    fill(tmp_path / "lake", url, courses=200, crowded=50)
    monkeypatch.setenv("COURSEMART_WAREHOUSE", url)
    monkeypatch.delenv("COURSEMART_API_KEYS", raising=False)
    monkeypatch.delenv("COURSEMART_CORS_ORIGINS", raising=False)
    return url


async def through_function(
    requests: list[tuple[str, str]], headers: dict[str, str]
) -> list[func.HttpResponse]:
    """Send requests through the function the app registers, as the Functions host would."""
    function_app = load_function_app().app
    [function] = function_app.get_functions()
    handler = function.get_user_function()
    responses = []
    for method, path in requests:
        url = f"http://localhost:7071{path}"
        request = func.HttpRequest(method, url, headers=headers, body=b"")
        responses.append(await handler(request, None))
    await function_app.middleware.notify_shutdown()
    function_app.startup_task_done = False  # shut down here, not again when garbage-collected
    return responses


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_the_function_answers_as_the_app_does(filled_sqlite: str, encoding: str) -> None:
    headers = {"accept-encoding": encoding}
    responses = asyncio.run(through_function(REQUESTS, headers))
    with TestClient(create_app(settings_for(filled_sqlite)), headers=headers) as client:
        for (method, path), from_function in zip(REQUESTS, responses, strict=True):
            direct = client.request(method, path)
            assert from_function.status_code == direct.status_code, path
            body = from_function.get_body()
            if from_function.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            assert body == direct.content, path
            for header in ("etag", "content-type", "cache-control", "allow", "content-encoding"):
                assert from_function.headers.get(header) == direct.headers.get(header), path
    encoded = {r.headers.get("content-encoding") for r in responses}
    assert encoded == ({None, "gzip"} if encoding == "gzip" else {None})


def test_the_function_is_anonymous_to_the_host_and_catches_every_route() -> None:
    binding: dict[str, Any] = next(
        b
        for b in load_function_app().app.get_functions()[0].get_bindings_dict()["bindings"]
        if b["type"] == "httpTrigger"
    )
    assert binding["authLevel"] == func.AuthLevel.ANONYMOUS
    assert binding["route"] == "/{*route}"


def test_host_json_keeps_the_original_paths() -> None:
    import json

    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensions"]["http"]["routePrefix"] == ""
