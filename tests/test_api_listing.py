"""Listings: upcoming, past and recent orders on every backend, signed cursors over HTTP, and the
fast path answering exactly as the routes do."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from coursemart.api import create_app
from coursemart.api.listing import current_minute
from coursemart.generate import Window, generate
from coursemart.load import load
from tests.conftest import BACKENDS, new_warehouse
from tests.test_api import CROWDED_DAY, settings_for, view_rows, walk

#: "Now" for these tests: the middle of the generated window, on a crowded day.
NOW = datetime(2026, 6, 15, 13, 7, 30, tzinfo=UTC)
WINDOW = Window(date(2026, 5, 1), date(2026, 7, 31))


@pytest.fixture(scope="module", params=BACKENDS)
def warehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp(f"listing-{request.param}")
    for url in new_warehouse(request.param, folder):
        generate(str(folder / "lake"), courses=600, seed=4, window=WINDOW)
        generate(str(folder / "lake"), courses=200, seed=5, window=CROWDED_DAY)
        load(str(folder / "lake"), url)
        yield url


@pytest.fixture
def client(warehouse: str) -> Iterator[TestClient]:
    app = create_app(settings_for(warehouse))
    app.state.service.clock = NOW.timestamp
    with TestClient(app) as test_client:
        yield test_client


def _ascending(rows: list[dict[str, Any]]) -> list[int]:
    return [r["course_id"] for r in sorted(rows, key=lambda r: (r["start_date"], r["course_id"]))]


MINUTE = current_minute(NOW.timestamp())


def _expected(rows: list[dict[str, Any]], params: dict[str, Any]) -> list[int]:
    """What a listing must return, computed from the view's rows in Python."""
    order = params.get("order", "recent")
    since = datetime.fromisoformat(params["since"]) if "since" in params else None
    until = datetime.fromisoformat(params["until"]) if "until" in params else None
    if order == "upcoming" and since is None:
        since = MINUTE
    if order == "past" and until is None:
        until = MINUTE
    kept = [
        r
        for r in rows
        if (since is None or r["start_date"] >= since)
        and (until is None or r["start_date"] < until)
        and ("category" not in params or r["category_id"] == int(params["category"]))
    ]
    if order == "upcoming":
        return _ascending(kept)
    return [r["course_id"] for r in kept]  # view_rows: latest first, then highest id


LISTINGS = [
    {"order": "upcoming", "limit": 37},
    {"order": "upcoming", "limit": 9, "category": "3"},
    {"order": "upcoming", "limit": 40, "since": "2026-06-15T00:00:00+00:00"},
    {"order": "past", "limit": 41},
    {"order": "past", "limit": 13, "until": "2026-06-15T12:00:00+00:00", "category": "2"},
    {"order": "recent", "limit": 100},
    {
        "order": "upcoming",
        "limit": 50,
        "since": "2026-06-15T10:00:00+00:00",
        "until": "2026-06-15T16:00:00+00:00",
    },  # fmt: skip
]


@pytest.mark.parametrize("params", LISTINGS, ids=[str(p) for p in LISTINGS])
def test_every_order_pages_through_each_course_once_in_its_order(
    client: TestClient, warehouse: str, params: dict[str, Any]
) -> None:
    wanted = _expected(view_rows(warehouse), params)
    assert len(wanted) > params["limit"], "the listing should span several pages"
    ids, _ = walk(client, params)
    assert ids == wanted


def test_upcoming_starts_at_the_current_minute(client: TestClient, warehouse: str) -> None:
    first = client.get("/v1/courses/recent", params={"order": "upcoming", "limit": 1}).json()
    start = datetime.fromisoformat(first["data"][0]["start_date"])
    assert start >= MINUTE
    earlier = [r for r in view_rows(warehouse) if r["start_date"] < MINUTE]
    assert earlier and earlier[0]["start_date"] < start


def test_the_same_data_gives_the_same_answers_on_every_backend(
    tmp_path: Path, warehouse: str
) -> None:
    """The same lake loaded into SQLite and into this backend: byte-identical pages."""
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    lake = tmp_path / "lake"
    generate(str(lake), courses=600, seed=4, window=WINDOW)
    generate(str(lake), courses=200, seed=5, window=CROWDED_DAY)
    load(str(lake), reference)
    apps = [create_app(settings_for(url)) for url in (reference, warehouse)]
    for app in apps:
        app.state.service.clock = NOW.timestamp
    with TestClient(apps[0]) as one, TestClient(apps[1]) as other:
        for params in LISTINGS:
            left, right = walk_bodies(one, params), walk_bodies(other, params)
            assert [page["data"] for page in left] == [page["data"] for page in right]


def walk_bodies(client: TestClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    bodies, cursor = [], None
    while True:
        body = client.get(
            "/v1/courses/recent", params={**params, **({"cursor": cursor} if cursor else {})}
        ).json()
        bodies.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return bodies


NEXT = re.compile(r'<(/v1/courses/recent\?[^>]*)>; rel="next"')


@pytest.mark.parametrize("params", LISTINGS[:5], ids=[str(p) for p in LISTINGS[:5]])
def test_following_the_link_headers_pages_through_each_course_once(
    client: TestClient, warehouse: str, params: dict[str, Any]
) -> None:
    url: str | None = f"/v1/courses/recent?{urlencode(params)}"
    ids: list[int] = []
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200
        assert client.get(url).headers.get("link") == response.headers.get("link")  # a repeat
        body = response.json()
        ids.extend(course["course_id"] for course in body["data"])
        link = response.headers.get("link")
        assert (link is None) == (body["next_cursor"] is None)
        if link is None:
            break
        match = NEXT.fullmatch(link)
        assert match is not None, link
        url = match.group(1)
        assert parse_qs(urlsplit(url).query) == {
            **{name: [str(value)] for name, value in params.items()},
            "cursor": [body["next_cursor"]],
        }
    assert ids == _expected(view_rows(warehouse), params)


def test_the_link_never_carries_a_key(warehouse: str) -> None:
    with TestClient(create_app(settings_for(warehouse, api_keys="k3y"))) as client:
        response = client.get("/v1/courses/recent?limit=3&code=k3y&category=2")
    assert response.status_code == 200
    link = response.headers["link"]
    assert "k3y" not in link and "code" not in link
    assert link.startswith("</v1/courses/recent?limit=3&category=2&cursor=")


def test_a_tampered_cursor_is_refused_with_422(client: TestClient) -> None:
    cursor = client.get("/v1/courses/recent", params={"limit": 2}).json()["next_cursor"]
    assert client.get("/v1/courses/recent", params={"cursor": cursor}).status_code == 200
    tampered = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    response = client.get("/v1/courses/recent", params={"cursor": tampered})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "parameter": "cursor",
            "message": "is not a cursor returned by this API (use next_cursor as given)",
        }
    ]


def test_a_cursor_is_refused_in_a_listing_of_the_other_direction(client: TestClient) -> None:
    upcoming = client.get("/v1/courses/recent", params={"order": "upcoming", "limit": 2}).json()
    response = client.get("/v1/courses/recent", params={"cursor": upcoming["next_cursor"]})
    assert response.status_code == 422
    assert response.json()["message"].startswith("cursor: belongs to a listing")


def test_a_cursor_from_another_worker_of_the_deployment_is_accepted(warehouse: str) -> None:
    with (
        TestClient(create_app(settings_for(warehouse))) as one,
        TestClient(create_app(settings_for(warehouse))) as other,
    ):
        cursor = one.get("/v1/courses/recent", params={"limit": 3}).json()["next_cursor"]
        assert other.get("/v1/courses/recent", params={"cursor": cursor}).status_code == 200
    keyed = settings_for(warehouse, cursor_key="another-deployment's-secret")
    with TestClient(create_app(keyed)) as elsewhere:
        assert elsewhere.get("/v1/courses/recent", params={"cursor": cursor}).status_code == 422


def test_an_empty_range_is_an_empty_page(client: TestClient) -> None:
    for path in ("/v1/courses/recent", "/v1/courses/recent?order=upcoming"):
        response = client.get(path, params={"since": "2026-06-15", "until": "2026-06-15T00:00"})
        assert response.status_code == 200
        assert response.json() == {"data": [], "next_cursor": None}


def test_an_upcoming_answer_moves_on_with_the_minute(warehouse: str) -> None:
    app = create_app(settings_for(warehouse))
    now = [NOW.timestamp()]
    app.state.service.clock = lambda: now[0]
    with TestClient(app) as client:
        path = "/v1/courses/recent?order=upcoming&limit=1"
        first = client.get(path)
        assert client.get(path).headers["etag"] == first.headers["etag"]  # repeated: same
        now[0] += 60 * 60 * 24  # a day later, the soonest course is another one
        later = client.get(path)
        assert later.headers["etag"] != first.headers["etag"]
        assert later.json()["data"][0]["start_date"] > first.json()["data"][0]["start_date"]


# ---------------------------------------------------------------------------------------------
# The fast path answers exactly as the routes do

SAME = [
    "/v1/courses/recent",
    "/v1/courses/recent?limit=7&category=art&level=Beginner",
    "/v1/courses/recent?limit=5&order=upcoming&category=4",
    "/v1/courses/recent?limit=5&order=past&since=2026-06-01",
    "/v1/courses/recent?since=2026-06-15T09:00:00Z&until=2026-06-15T12:00+02:00",
    "/v1/courses/recent?since=2026-06-15&until=2026-06-15",
    "/v1/courses/recent?limit=1000",
    "/v1/courses/recent?limit=3&unknown=1",
    "/v1/courses/recent?categroy=art",
    "/v1/courses/recent?limit=2&code=k1",
    "/v1/courses/recent?limit=050",  # not plain: the app answers
    "/v1/courses/recent?limit=5&limit=6",
    "/v1/courses/recent?limit=1001",
    "/v1/courses/recent?category=Cooking",
    "/v1/courses/recent?cursor=AAAA",
    "/v1/courses/recent?order=soonest",
    "/v1/courses/recent?since=2026-06-16&until=2026-06-15",
    "/api/GetRecentCourses",
    "/api/GetRecentCourses?limit=3",
    "/api/GetRecentCourses?limit=0",
    "/api/getrecentcourses?limit=3",
    "/API/GETRECENTCOURSES",
    "/v1/categories",
    "/v1/levels?limit=3",
]


@pytest.fixture(scope="module")
def sqlite_warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("fast-path")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    generate(str(folder / "lake"), courses=300, seed=4, window=WINDOW)
    load(str(folder / "lake"), url)
    return url


KEYED = {"open": {}, "x-api-key": {"x-api-key": "k1"}, "bearer": {"authorization": "Bearer k1"}}


@pytest.mark.parametrize("keys", list(KEYED))
@pytest.mark.parametrize("path", SAME)
def test_the_fast_path_answers_as_the_routes_do(
    sqlite_warehouse: str, path: str, keys: str
) -> None:
    settings = settings_for(sqlite_warehouse, api_keys="" if keys == "open" else "k1")
    headers = {"x-request-id": "same", **KEYED[keys]}
    answers = []
    for fast_path in (True, False):
        app = create_app(settings, fast_path=fast_path)
        app.state.service.clock = NOW.timestamp
        with TestClient(app) as client:
            first, again = client.get(path, headers=headers), client.get(path, headers=headers)
            assert (again.status_code, again.content) == (first.status_code, first.content)
            answers.append((first.status_code, first.content, sorted(first.headers.items())))
    assert answers[0] == answers[1]
