"""The HTTP API against real warehouses: paging, the original envelope, errors, keys, caching."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from coursemart import warehouse
from coursemart.api import create_app
from coursemart.api.auth import any_key_is_valid, key_is_valid
from coursemart.api.catalog import VERSION_TTL
from coursemart.config import Settings
from coursemart.generate import Window, generate
from coursemart.load import load
from coursemart.warehouse.dialects.postgres import READ_LOCK_TIMEOUT_MS
from tests.conftest import BACKENDS, WINDOW, empty_warehouse, new_warehouse

#: A one-day window: 48 quarter-hour slots for hundreds of courses, so many share a start.
CROWDED_DAY = Window(date(2026, 6, 15), date(2026, 6, 15))
ERROR_MARKERS = ("Traceback", 'File "', "SELECT ", "sqlalchemy", "psycopg", "pymysql")


# ---------------------------------------------------------------------------------------------
# Helpers (shared with the other test_api_* modules)


def settings_for(url: str, **overrides: Any) -> Settings:
    """Settings for ``url`` that ignore the environment's keys and origins."""
    values: dict[str, Any] = {"warehouse": url, "api_keys": (), "cors_origins": ()}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def fill(lake: Path, url: str, *, courses: int = 1000, crowded: int = 300) -> None:
    """Generate a catalog (plus a crowded day of tied start dates) and load it into ``url``."""
    generate(str(lake), courses=courses, seed=1, window=WINDOW)
    if crowded:
        generate(str(lake), courses=crowded, seed=2, window=CROWDED_DAY)
    load(str(lake), url)


def view_rows(url: str) -> list[dict[str, Any]]:
    """Every row of the view, straight from SQL, newest first; start dates as aware UTC."""
    engine = warehouse.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    f"SELECT course_id, category_id, category_name, level_id, level_name, "
                    f"start_date FROM {warehouse.VIEW_NAME}"
                )
            ).mappings()
            result = [{**row, "start_date": _utc(row["start_date"])} for row in rows]
    finally:
        engine.dispose()
    return sorted(result, key=lambda row: (row["start_date"], row["course_id"]), reverse=True)


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite keeps text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def walk(client: TestClient, params: dict[str, Any]) -> tuple[list[int], int]:
    """Follow ``next_cursor`` from the first page to the last: the course ids seen, and pages."""
    ids: list[int] = []
    pages = 0
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/courses/recent", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        ids.extend(course["course_id"] for course in body["data"])
        assert len(body["data"]) <= params.get("limit", 50)
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert len(body["data"]) == params.get("limit", 50)
        assert pages < 10_000, "paging does not end"


@pytest.fixture(scope="module", params=BACKENDS)
def filled_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One filled warehouse per backend, shared by the module's read-only tests."""
    folder = tmp_path_factory.mktemp(f"api-{request.param}")
    for url in new_warehouse(request.param, folder):
        fill(folder / "lake", url)
        yield url


@pytest.fixture(scope="module")
def expected(filled_url: str) -> list[dict[str, Any]]:
    return view_rows(filled_url)


@pytest.fixture
def client(filled_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(filled_url))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def sqlite_warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small filled SQLite warehouse for the tests that need only one backend."""
    folder = tmp_path_factory.mktemp("api-sqlite")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    fill(folder / "lake", url, courses=200, crowded=0)
    return url


# ---------------------------------------------------------------------------------------------
# Paging


def _since(row: dict[str, Any]) -> bool:
    return row["start_date"] >= datetime(2026, 6, 15, 9, tzinfo=UTC)


def _between(row: dict[str, Any]) -> bool:
    return datetime(2026, 3, 1, tzinfo=UTC) <= row["start_date"] < datetime(2026, 6, 16, tzinfo=UTC)


FILTERS: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ({"limit": 100}, lambda row: True),
    ({"limit": 1000}, lambda row: True),
    ({"limit": 37, "category": "art"}, lambda row: row["category_name"] == "Art"),
    (
        {"limit": 25, "category": "2", "level": "Advanced"},
        lambda row: row["category_id"] == 2 and row["level_id"] == 103,
    ),
    ({"limit": 50, "since": "2026-06-15T09:00:00Z"}, _since),
    ({"limit": 40, "since": "2026-03-01", "until": "2026-06-16T00:00:00+00:00"}, _between),
    (
        {
            "limit": 10,
            "level": "101",
            "since": "2026-06-15T11:00:00+02:00",
            "until": "2026-06-15T16:00",
        },
        lambda row: (
            row["level_id"] == 101
            and datetime(2026, 6, 15, 9, tzinfo=UTC)
            <= row["start_date"]
            < datetime(2026, 6, 15, 16, tzinfo=UTC)
        ),
    ),
]


@pytest.mark.parametrize(("params", "keep"), FILTERS, ids=[str(p) for p, _ in FILTERS])
def test_paging_returns_every_course_once_in_order(
    client: TestClient,
    expected: list[dict[str, Any]],
    params: dict[str, Any],
    keep: Callable[[dict[str, Any]], bool],
) -> None:
    wanted = [row["course_id"] for row in expected if keep(row)]
    assert wanted, "the filter should match some courses"
    ids, pages = walk(client, params)
    assert ids == wanted
    assert pages == max(1, math.ceil(len(wanted) / params["limit"]))


def test_crowded_start_dates_are_paged_by_course_id(
    client: TestClient, expected: list[dict[str, Any]]
) -> None:
    crowded = [row for row in expected if row["start_date"].date() == CROWDED_DAY.start]
    assert len(crowded) > 2 * 48, "the crowded day should have many courses per start"
    ids, _ = walk(client, {"limit": 7, "since": "2026-06-15", "until": "2026-06-16"})
    assert ids == [row["course_id"] for row in crowded]


def test_courses_carry_the_view_columns_and_utc_dates(
    client: TestClient, expected: list[dict[str, Any]]
) -> None:
    course = client.get("/v1/courses/recent", params={"limit": 1}).json()["data"][0]
    assert set(course) == {
        "course_id",
        "course_name",
        "category_id",
        "category_name",
        "level_id",
        "level_name",
        "start_date",
    }
    assert course["course_id"] == expected[0]["course_id"]
    assert course["start_date"].endswith(("Z", "+00:00"))
    assert datetime.fromisoformat(course["start_date"]) == expected[0]["start_date"]


def test_categories_and_levels_list_the_dimensions(client: TestClient) -> None:
    categories = client.get("/v1/categories").json()["data"]
    levels = client.get("/v1/levels").json()["data"]
    assert [c["category_name"] for c in categories] == [
        "Technology",
        "Business",
        "Art",
        "Science",
        "Health",
    ]
    assert levels == [
        {"level_id": 101, "level_name": "Beginner"},
        {"level_id": 102, "level_name": "Intermediate"},
        {"level_id": 103, "level_name": "Advanced"},
    ]


# ---------------------------------------------------------------------------------------------
# The original function's envelope


def test_get_recent_courses_keeps_the_original_envelope(
    client: TestClient, expected: list[dict[str, Any]]
) -> None:
    response = client.get("/api/GetRecentCourses")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"message", "status_code", "data"}
    assert (body["message"], body["status_code"]) == ("successful", 200)
    assert [c["course_id"] for c in body["data"]] == [r["course_id"] for r in expected[:100]]
    limited = client.get("/api/GetRecentCourses", params={"limit": 3}).json()
    assert [c["course_id"] for c in limited["data"]] == [r["course_id"] for r in expected[:3]]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_empty_warehouse_answers_no_results_found(backend: str, tmp_path: Path) -> None:
    for url in new_warehouse(backend, tmp_path):
        empty_warehouse(url)
        with TestClient(create_app(settings_for(url))) as client:
            response = client.get("/api/GetRecentCourses")
            assert response.status_code == 200
            assert response.json() == {
                "message": "No results found",
                "status_code": 404,
                "data": [],
            }
            recent = client.get("/v1/courses/recent").json()
            assert recent == {"data": [], "next_cursor": None}
            assert client.get("/v1/categories").json() == {"data": []}
            assert client.get("/ready").json() == {"status": "ready", "data_version": None}


# ---------------------------------------------------------------------------------------------
# Bad input


BAD_INPUT = [
    ("/v1/courses/recent?since=0001-01-01T00:00%2B01:00", "since"),
    ("/v1/courses/recent?until=9999-12-31T23:00-02:00", "until"),
    ("/v1/courses/recent?limit=0", "limit"),
    ("/v1/courses/recent?limit=1001", "limit"),
    ("/v1/courses/recent?limit=ten", "limit"),
    ("/v1/courses/recent?cursor=", "cursor"),
    ("/v1/courses/recent?cursor=not-a-cursor", "cursor"),
    ("/v1/courses/recent?cursor=" + "A" * 65, "cursor"),
    ("/v1/courses/recent?cursor=abc%2Fdef", "cursor"),
    ("/v1/courses/recent?cursor=AgAGbz2MbnAAAAAAAAAAAR8", "cursor"),
    ("/v1/courses/recent?category=Cooking", "category"),
    ("/v1/courses/recent?category=99", "category"),
    ("/v1/courses/recent?category=", "category"),
    ("/v1/courses/recent?category=" + "x" * 101, "category"),
    ("/v1/courses/recent?level=Expert", "level"),
    ("/v1/courses/recent?since=yesterday", "since"),
    ("/v1/courses/recent?since=2026-02-30", "since"),
    ("/v1/courses/recent?since=1700000000", "since"),
    ("/v1/courses/recent?until=2026-03-01T25:00", "until"),
    ("/v1/courses/recent?since=2026-03-02&until=2026-03-01", "until"),
    ("/v1/courses/recent?order=soonest", "order"),
    ("/v1/courses/recent?order=upcoming&cursor=" + "A" * 35, "cursor"),
    ("/v1/courses/recent?categroy=art", "categroy"),
    ("/v1/courses/recent?limit=5&Category=art", "Category"),
    ("/v1/categories?limit=3", "limit"),
    ("/v1/courses/12?fields=name", "fields"),
    ("/v1/courses/twelve", "course_id"),
    ("/v1/courses/0", "course_id"),
    ("/v1/courses/9223372036854775808", "course_id"),
    ("/api/GetRecentCourses?limit=-1", "limit"),
    ("/api/GetRecentCourses?limit=1000000", "limit"),
]


@pytest.mark.parametrize(("url", "parameter"), BAD_INPUT)
def test_bad_input_is_422_naming_the_parameter(
    client: TestClient, url: str, parameter: str
) -> None:
    response = client.get(url)
    assert response.status_code == 422
    body = response.json()
    assert body["status_code"] == 422
    assert body["message"].startswith(f"{parameter}: ")
    assert [problem["parameter"] for problem in body["errors"]] == [parameter]
    assert not any(marker in response.text for marker in ERROR_MARKERS)


@pytest.mark.parametrize(
    ("url", "meant", "takes"),
    [
        ("/v1/courses/recent?categroy=art", "category", "category, cursor, level, limit, "
         "order, q, since, until and code"),
        ("/v1/courses/recent?limit=2&sinse=2026-03-01", "since", "category, cursor, level, "
         "limit, order, q, since, until and code"),
        ("/v1/levels?level=3", None, "no parameter but code"),
        ("/v1/freshness?verbose=1", None, "no parameter but code"),
    ],
)  # fmt: skip
def test_an_unknown_parameter_is_named_with_the_ones_the_route_takes(
    sqlite_warehouse: str, url: str, meant: str | None, takes: str
) -> None:
    path, _, query = url.partition("?")
    name = query.split("&")[-1].split("=")[0]
    hint = f" (did you mean {meant}?)" if meant else ""
    for fast_path in (True, False):
        with TestClient(create_app(settings_for(sqlite_warehouse), fast_path=fast_path)) as client:
            response = client.get(url)
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {"parameter": name, "message": f"is not a parameter of {path}{hint}; it takes {takes}"}
        ]


@pytest.mark.parametrize("keys", ["", "k1"])
def test_code_is_taken_where_keys_are_and_the_original_route_ignores_unknown_ones(
    sqlite_warehouse: str, keys: str
) -> None:
    with TestClient(create_app(settings_for(sqlite_warehouse, api_keys=keys))) as client:
        for path in ("/v1/courses/recent?limit=2", "/v1/levels", "/v1/freshness", "/metrics"):
            assert client.get(path, params={"code": "k1"}).status_code == 200, path
        original = client.get("/api/GetRecentCourses?limit=2&debug=1&code=k1")
        assert original.status_code == 200  # as the original function, which read only limit
        assert original.content == client.get("/api/GetRecentCourses?limit=2&code=k1").content


def test_one_course_by_id(client: TestClient, expected: list[dict[str, Any]]) -> None:
    listed = client.get("/v1/courses/recent", params={"limit": 3}).json()["data"]
    for course in listed:
        response = client.get(f"/v1/courses/{course['course_id']}")
        assert response.status_code == 200
        assert response.json() == course
        etag = response.headers["etag"]
        assert response.headers["cache-control"] == "public, max-age=10"
        again = client.get(f"/v1/courses/{course['course_id']}", headers={"If-None-Match": etag})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert len({client.get(f"/v1/courses/{c['course_id']}").headers["etag"] for c in listed}) == 3
    missing = max(row["course_id"] for row in expected) + 1
    for _ in range(2):  # a repeated miss is a miss again, never a cached answer
        response = client.get(f"/v1/courses/{missing}")
        assert response.status_code == 404
        assert response.json() == {
            "message": f"no course has course_id {missing}",
            "status_code": 404,
            "errors": [],
        }
    operation = client.get("/openapi.json").json()["paths"]["/v1/courses/{course_id}"]["get"]
    assert {"200", "304", "404", "422"} <= set(operation["responses"])


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/v1/courses/recent", "/v1/levels", "/", "/health"])
def test_other_methods_get_405_with_json(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json()["message"] == (
        f"{method} is not allowed here: the API is read-only (allowed: GET, HEAD)"
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", ["/api/GetRecentCourses", "/api/getrecentcourses?limit=3"])
def test_the_original_route_refuses_other_methods_with_400_in_its_envelope(
    sqlite_warehouse: str, method: str, path: str
) -> None:
    for fast_path in (True, False):
        with TestClient(create_app(settings_for(sqlite_warehouse), fast_path=fast_path)) as client:
            response = client.request(method, path)
        assert response.status_code == 400
        assert response.headers["allow"] == "GET, HEAD"
        assert response.json() == {
            "message": f"{method} is not supported: GetRecentCourses answers GET (and HEAD) only",
            "status_code": 400,
            "data": [],
        }


@pytest.mark.parametrize(
    "path", ["/api/getrecentcourses", "/API/GETRECENTCOURSES", "/Api/GetRecentCourses"]
)
def test_the_original_route_matches_in_any_case(sqlite_warehouse: str, path: str) -> None:
    answers = []
    for fast_path in (True, False):
        with TestClient(create_app(settings_for(sqlite_warehouse), fast_path=fast_path)) as client:
            expected = client.get("/api/GetRecentCourses?limit=3")
            for _ in range(2):  # the second one is a repeat, answered from memory
                response = client.get(f"{path}?limit=3")
                assert (response.status_code, response.content) == (200, expected.content)
                assert response.headers["etag"] == expected.headers["etag"]
            assert client.head(path).status_code == 200
            assert client.get("/api/GetRecentCourſes").status_code == 404  # ſ is no s
            assert client.get("/V1/levels").status_code == 404  # only the original route
            routes = {
                line.split('route="')[1].split('"')[0]
                for line in client.get("/metrics").text.splitlines()
                if line.startswith("coursemart_http_requests_total{")
            }
            answers.append(response.content)
        assert routes == {"/api/GetRecentCourses", "unmatched"}  # never the path as sent
    assert answers[0] == answers[1]


def test_unknown_paths_get_404_with_json(client: TestClient) -> None:
    response = client.get("/v2/courses")
    assert response.status_code == 404
    assert response.json()["status_code"] == 404


# ---------------------------------------------------------------------------------------------
# API keys

KEYS = (SecretStr("first-key"), SecretStr("second-key"))


@pytest.mark.parametrize(
    ("presented", "valid"),
    [
        (["first-key"], True),
        (["second-key"], True),
        ([None, None, "second-key"], True),
        (["wrong", "first-key"], True),
        (["first-ke"], False),
        (["first-key "], False),
        (["FIRST-KEY"], False),
        ([""], False),
        ([None], False),
        ([], False),
        (["x" * 10_000], False),
    ],
)
def test_any_key_is_valid(presented: list[str | None], valid: bool) -> None:
    assert any_key_is_valid(presented, KEYS) is valid


def test_no_key_is_valid_when_none_is_configured() -> None:
    assert not key_is_valid("anything", ())


def _with_key(place: str, key: str) -> dict[str, Any]:
    if place == "code":
        return {"params": {"code": key}}
    if place == "authorization":
        return {"headers": {place: f"Bearer {key}"}}
    return {"headers": {place: key}}


PLACES = ["authorization", "x-api-key", "x-functions-key", "code"]


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("path", ["/api/GetRecentCourses", "/v1/courses/recent", "/v1/categories"])
def test_api_keys_are_accepted_in_each_place(filled_url: str, place: str, path: str) -> None:
    settings = settings_for(filled_url, api_keys="first-key,second-key")
    with TestClient(create_app(settings)) as client:
        assert client.get(path, **_with_key(place, "second-key")).status_code == 200
        for attempt in ({}, _with_key(place, "wrong-key")):
            refused = client.get(path, **attempt)
            assert refused.status_code == 401
            assert refused.json()["message"].startswith("missing or invalid API key")
        assert client.get("/health").status_code == 200
        assert client.get("/").status_code == 200


@pytest.mark.parametrize("place", PLACES)
def test_repeated_requests_still_need_a_key(filled_url: str, place: str) -> None:
    settings = settings_for(filled_url, api_keys="first-key")
    with TestClient(create_app(settings)) as client:
        path = "/v1/courses/recent?limit=3"
        first = client.get(path, **_with_key(place, "first-key"))
        assert first.status_code == 200
        for attempt in ({}, _with_key(place, "wrong-key"), {"headers": {place: ""}}):
            assert client.get(path, **attempt).status_code == 401
        again = client.get(path, **_with_key(place, "first-key"))
        assert (again.status_code, again.content) == (200, first.content)


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        ("Bearer first-key", 200),
        ("bearer first-key", 200),  # the scheme is case-insensitive (RFC 9110)
        ("BEARER  first-key ", 200),
        ("Basic first-key", 401),
        ("first-key", 401),
        ("Bearer", 401),
        ("Bearer first-key-and-more", 401),
        ("Bearer wrong-key", 401),
    ],
)
def test_a_bearer_key_is_read_from_the_authorization_header_only(
    sqlite_warehouse: str, authorization: str, status: int
) -> None:
    settings = settings_for(sqlite_warehouse, api_keys="first-key")
    for fast_path in (True, False):
        with TestClient(create_app(settings, fast_path=fast_path)) as client:
            for path in ("/v1/courses/recent?limit=2", "/v1/freshness", "/metrics"):
                response = client.get(path, headers={"authorization": authorization})
                assert response.status_code == status, (path, fast_path)
                if status == 401:
                    challenge = response.headers["www-authenticate"]
                    assert challenge.startswith('Bearer realm="coursemart"')


def test_keyed_answers_are_private(filled_url: str) -> None:
    with TestClient(create_app(settings_for(filled_url, api_keys="k1"))) as client:
        response = client.get("/v1/levels", headers={"x-api-key": "k1"})
        assert response.headers["cache-control"].startswith("private")


def test_open_api_has_no_security_schemes(client: TestClient) -> None:
    assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})


def test_keyed_open_api_declares_the_four_places_on_every_protected_route(
    sqlite_warehouse: str,
) -> None:
    with TestClient(create_app(settings_for(sqlite_warehouse, api_keys="k1"))) as client:
        document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert all(scheme.pop("description") for scheme in schemes.values())
    assert schemes == {
        "Bearer": {"type": "http", "scheme": "bearer"},
        "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "FunctionsKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
        "CodeQuery": {"type": "apiKey", "in": "query", "name": "code"},
    }
    either = sorted([{name: []} for name in schemes], key=str)
    operations = {path: item["get"] for path, item in document["paths"].items()}
    protected = {path for path, operation in operations.items() if "security" in operation}
    assert protected == {path for path in operations if path not in ("/health", "/ready")}
    assert "/metrics" in protected and "/v1/courses/recent" in protected
    for path in protected:
        assert sorted(operations[path]["security"], key=str) == either, path


# ---------------------------------------------------------------------------------------------
# HTTP caching


def test_etag_gives_304_and_changes_after_a_load(tmp_path: Path, sqlite_url: str) -> None:
    lake = tmp_path / "lake"
    fill(lake, sqlite_url, courses=200, crowded=0)
    with TestClient(create_app(settings_for(sqlite_url, cache_seconds=30))) as client:
        first = client.get("/v1/courses/recent", params={"limit": 5})
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "public, max-age=30"
        assert etag.startswith('"') and not etag.startswith("W/")
        again = client.get(
            "/v1/courses/recent", params={"limit": 5}, headers={"If-None-Match": etag}
        )
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
        assert again.headers["cache-control"] == "public, max-age=30"
        other_query = client.get("/v1/courses/recent", params={"limit": 6})
        assert other_query.headers["etag"] != etag

        generate(str(lake), courses=5, seed=3, window=Window(date(2027, 1, 1), date(2027, 1, 1)))
        load(str(lake), sqlite_url)
        time.sleep(VERSION_TTL + 0.1)
        after = client.get(
            "/v1/courses/recent", params={"limit": 5}, headers={"If-None-Match": etag}
        )
        assert after.status_code == 200
        assert after.headers["etag"] != etag
        assert [c["start_date"][:10] for c in after.json()["data"]] == ["2027-01-01"] * 5


@pytest.mark.parametrize(
    "path",
    [
        "/v1/courses/recent?limit=4&category=art",
        "/api/GetRecentCourses?limit=2",
        "/v1/categories",
        "/v1/levels",
    ],
)
def test_repeated_requests_are_answered_as_the_first_time(client: TestClient, path: str) -> None:
    same = {"x-request-id": "one-request"}
    first, again = client.get(path, headers=same), client.get(path, headers=same)
    assert again.status_code == first.status_code == 200
    assert again.content == first.content
    assert again.headers.items() == first.headers.items()
    etag = {"If-None-Match": first.headers["etag"], **same}
    assert (
        client.get(path, headers=etag).headers.items()
        == client.get(path, headers=etag).headers.items()
    )


@pytest.mark.parametrize("spelling", ["limit=20&category=3", "category=art&limit=20&order=recent"])
def test_repeated_queries_do_not_query_the_database_again(
    tmp_path: Path, sqlite_url: str, spelling: str
) -> None:
    fill(tmp_path / "lake", sqlite_url, courses=200, crowded=0)
    app = create_app(settings_for(sqlite_url))
    with TestClient(app) as client:
        statements: list[str] = []
        engine = app.state.service.catalog.open()
        # every statement SQLite runs, whether through SQLAlchemy or the driver itself
        sa.event.listen(
            engine, "connect", lambda dbapi, _: dbapi.set_trace_callback(statements.append)
        )
        bodies = {client.get(f"/v1/courses/recent?{spelling}").content for _ in range(25)}
        bodies.add(client.get("/v1/courses/recent?category=Art&limit=20").content)
        assert len(bodies) == 1
        reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert len([s for s in reads if warehouse.VIEW_NAME in s]) == 1
        assert len(reads) <= 4  # at most: version, categories, levels, courses


# ---------------------------------------------------------------------------------------------
# The database going away and coming back


class TcpProxy:
    """Forwards a local port to a real server; ``cut()`` drops everything, ``restore()`` resumes."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            sockets = [self._listener, *self._open] if self._listener else list(self._open)
            self._open.clear()
            self._listener = None
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._open.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _until(client: TestClient, path: str, status: int, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        response = client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_database_outage_is_503_and_the_api_recovers(tmp_path: Path, postgres_url: str) -> None:
    fill(tmp_path / "lake", postgres_url, courses=50, crowded=0)
    real = make_url(postgres_url)
    proxy = TcpProxy((real.host or "127.0.0.1", real.port or 5432))
    proxy.restore()
    through_proxy = real.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        with TestClient(create_app(settings_for(through_proxy))) as client:
            assert client.get("/v1/courses/recent").status_code == 200
            proxy.cut()
            down = _until(client, "/v1/courses/recent", 503)
            assert down.status_code == 503
            assert down.json() == {
                "message": "the warehouse is unavailable right now; retry in a few seconds",
                "status_code": 503,
                "errors": [],
            }
            assert down.headers["retry-after"] == "5"
            assert client.get("/ready").status_code == 503
            assert client.get("/health").status_code == 200
            proxy.restore()
            back = _until(client, "/v1/courses/recent", 200)
            assert back.status_code == 200
            assert len(back.json()["data"]) == 50
            assert client.get("/ready").status_code == 200
    finally:
        proxy.cut()


def test_a_table_locked_by_a_load_is_503_after_the_lock_wait_not_a_hang(
    tmp_path: Path, postgres_url: str
) -> None:
    fill(tmp_path / "lake", postgres_url, courses=50, crowded=0)
    locker = warehouse.create_engine(postgres_url)
    try:
        with TestClient(create_app(settings_for(postgres_url))) as client:
            with locker.connect() as connection:
                # what a first load into an empty courses table holds until its commit
                connection.exec_driver_sql("LOCK TABLE courses IN ACCESS EXCLUSIVE MODE")
                began = time.monotonic()
                locked = client.get("/v1/courses/recent")
                waited = time.monotonic() - began
                connection.rollback()
            assert locked.status_code == 503
            assert locked.headers["retry-after"] == "5"
            assert READ_LOCK_TIMEOUT_MS / 1000 <= waited < 10
            assert client.get("/v1/courses/recent").status_code == 200
    finally:
        locker.dispose()


def test_missing_sqlite_warehouse_is_503_until_it_exists(tmp_path: Path, sqlite_url: str) -> None:
    with TestClient(create_app(settings_for(sqlite_url))) as client:
        for path in ("/api/GetRecentCourses", "/v1/courses/recent", "/v1/levels", "/ready"):
            response = client.get(path)
            assert response.status_code == 503
            assert response.headers["cache-control"] == "no-store"
            assert not any(marker in response.text for marker in ERROR_MARKERS)
        fill(tmp_path / "lake", sqlite_url, courses=10, crowded=0)
        assert _until(client, "/api/GetRecentCourses", 200).json()["message"] == "successful"


def test_no_error_body_carries_a_traceback_or_sql(client: TestClient) -> None:
    for method, url in [
        ("GET", "/v1/courses/recent?limit=x&cursor=%00&since=%ff"),
        ("GET", "/v1/courses/recent?category=' OR 1=1 --"),
        ("GET", "/nowhere"),
        ("DELETE", "/v1/courses/recent"),
    ]:
        response = client.request(method, url)
        assert 400 <= response.status_code < 500
        assert response.headers["content-type"] == "application/json"
        assert not any(marker in response.text for marker in ERROR_MARKERS)


# ---------------------------------------------------------------------------------------------
# Operations, CORS, the page


def test_health_does_not_touch_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent' / 'warehouse.db'}"
    with TestClient(create_app(settings_for(url))) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").status_code == 503


def test_ready_reports_the_data_version(client: TestClient) -> None:
    body = client.get("/ready").json()
    assert body["status"] == "ready"
    assert body["data_version"]


def test_cors_is_off_unless_origins_are_configured(filled_url: str) -> None:
    origin = {"Origin": "https://courses.example"}
    with TestClient(create_app(settings_for(filled_url))) as client:
        assert "access-control-allow-origin" not in client.get("/v1/levels", headers=origin).headers
    settings = settings_for(filled_url, cors_origins="https://courses.example")
    with TestClient(create_app(settings)) as client:
        response = client.get("/v1/levels", headers=origin)
        assert response.headers["access-control-allow-origin"] == "https://courses.example"
        assert "etag" in response.headers["access-control-expose-headers"].lower()


def test_the_page_and_the_documentation_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js"' in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/GetRecentCourses", "/v1/courses/recent", "/v1/categories", "/v1/levels"} <= set(
        paths
    )
