"""Search through the API (``q=``): the same answers on SQLite, PostgreSQL and MariaDB, with the
filters, both orders and keyset paging complete and in order, whichever way the catalog reads
the matches (through the text index, then kept in memory; or by a scan in the listing's order)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from coursemart import warehouse
from coursemart.api import create_app, matches
from coursemart.api.catalog import Catalog
from coursemart.api.queries import CourseFilter, Shape
from coursemart.api.service import SEARCHES_AT_ONCE
from coursemart.lake import open_lake
from coursemart.lake.upkeep import cancel
from coursemart.load import load
from coursemart.search import fold, query_words
from tests.conftest import BACKENDS, new_warehouse
from tests.test_api import _utc, fill, settings_for, walk


@pytest.fixture(scope="module", params=BACKENDS)
def searched_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp(f"search-{request.param}")
    for url in new_warehouse(request.param, folder):
        fill(folder / "lake", url, courses=1500, crowded=200)
        yield url


@pytest.fixture(scope="module")
def named_rows(searched_url: str) -> list[dict[str, Any]]:
    """Every course with its name and folded name, newest first."""
    engine = warehouse.create_engine(searched_url)
    try:
        with engine.connect() as connection:
            rows = list(
                connection.execute(
                    sa.text(
                        "SELECT course_id, course_name, category_name, level_id, start_date "
                        f"FROM {warehouse.VIEW_NAME}"
                    )
                ).mappings()
            )
    finally:
        engine.dispose()
    folded = fold(pa.array([row["course_name"] for row in rows])).to_pylist()
    found = [
        {**row, "start_date": _utc(row["start_date"]), "words": name.split()}
        for row, name in zip(rows, folded, strict=True)
    ]
    return sorted(found, key=lambda row: (row["start_date"], row["course_id"]), reverse=True)


@pytest.fixture(params=["matches in memory", "scan in order"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every search keeps the text index's matches in memory, or every search scans in order."""
    kept = 10**9 if request.param == "matches in memory" else -1
    monkeypatch.setattr(matches, "MAX_MATCHES", kept)
    return str(request.param)


def matched(row: dict[str, Any], query: str) -> bool:
    wanted = query_words(query)
    return all(any(word.startswith(q) for word in row["words"]) for q in wanted)


SEARCHES: list[tuple[dict[str, Any], Any]] = [
    ({"q": "intro", "limit": 7}, lambda row: True),
    ({"q": "PYTHON", "limit": 5}, lambda row: True),
    ({"q": "learn machine", "limit": 3}, lambda row: True),
    ({"q": "for", "limit": 50}, lambda row: True),
    (
        {"q": "Fundamentals", "limit": 9, "category": "technology"},
        lambda r: r["category_name"] == "Technology",
    ),
    ({"q": "a", "limit": 20, "level": "103"}, lambda r: r["level_id"] == 103),
    (
        {"q": "the", "limit": 11, "since": "2026-06-15T00:00:00Z", "order": "upcoming"},
        lambda r: r["start_date"] >= datetime(2026, 6, 15, tzinfo=UTC),
    ),
    ({"q": "nothing matches this", "limit": 10}, lambda row: True),
]


@pytest.mark.parametrize(("params", "keep"), SEARCHES, ids=[p["q"] for p, _ in SEARCHES])
def test_searching_pages_through_every_match_in_order(
    searched_url: str, named_rows: list[dict[str, Any]], way: str, params: dict[str, Any], keep: Any
) -> None:
    rows = [row for row in named_rows if keep(row) and matched(row, params["q"])]
    if params.get("order") == "upcoming":
        rows.reverse()
    with TestClient(create_app(settings_for(searched_url))) as client:
        ids, pages = walk(client, params)

    assert ids == [row["course_id"] for row in rows]
    assert pages == max(1, -(-len(rows) // params["limit"]))


def test_the_same_search_answers_alike_on_every_database(
    searched_url: str, named_rows: list[dict[str, Any]]
) -> None:
    with TestClient(create_app(settings_for(searched_url))) as client:
        found = client.get("/v1/courses/recent", params={"q": "intro data", "limit": 1000}).json()

    names = [course["course_name"] for course in found["data"]]
    assert names and all(
        any(w.startswith("intro") for w in fold(pa.array([n])).to_pylist()[0].split())
        for n in names
    )
    assert [c["course_id"] for c in found["data"]] == [
        row["course_id"] for row in named_rows if matched(row, "intro data")
    ]


@pytest.mark.parametrize(
    ("q", "status", "message"),
    [
        ("!!! ???", 422, "q: holds no letter or digit to search for"),
        ("x" * 201, 422, "q: String should have at most 200 characters"),
        ("", 200, None),
        ("   ", 200, None),
    ],
)
def test_a_search_text_without_words_is_refused_or_ignored(
    searched_url: str, q: str, status: int, message: str | None
) -> None:
    with TestClient(create_app(settings_for(searched_url))) as client:
        searched = client.get("/v1/courses/recent", params={"q": q, "limit": 5})
        plain = client.get("/v1/courses/recent", params={"limit": 5})

    assert searched.status_code == status, searched.text
    if message is not None:
        assert searched.json()["message"] == message
    else:
        assert searched.json()["data"] == plain.json()["data"]


# ---------------------------------------------------------------------------------------------
# PostgreSQL at scale: common words are told apart, and scanned, through the listing index


@pytest.fixture(scope="module")
def postgres_searched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("search-postgresql")
    for url in new_warehouse("postgresql", folder):
        fill(folder / "lake", url, courses=1500, crowded=200)
        yield url


def prefix_counts(url: str) -> dict[str, int]:
    """For each word of the folded names: how many courses have a word starting with it."""
    engine = warehouse.create_engine(url)
    try:
        with engine.connect() as connection:
            names = [
                set(name.split())
                for (name,) in connection.execute(sa.text("SELECT search_name FROM courses"))
            ]
    finally:
        engine.dispose()
    words = set().union(*names)
    return {w: sum(any(n.startswith(w) for n in name) for name in names) for w in words}


def test_postgresql_tells_common_words_from_a_sample_of_the_listing(
    postgres_searched: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(matches, "MAX_MATCHES", 10)
    monkeypatch.setattr(matches, "SCAN_MATCHES", 10)
    counts = prefix_counts(postgres_searched)
    common = max(counts, key=counts.__getitem__)
    rare = min((w for w in counts if counts[w] <= 10), key=lambda w: (-counts[w], w))
    catalog = Catalog(postgres_searched)
    try:
        assert counts[common] > 100
        assert catalog._surely_too_many((common,))
        assert not catalog._surely_too_many((rare,))
        assert catalog.search_matches((common,)) is None  # pages come from a scan in order
        kept = catalog.search_matches((rare,))
    finally:
        catalog.close()

    assert kept is not None and len(kept.ids) == counts[rare]


def test_a_scan_for_words_on_postgresql_reads_the_listing_index_alone(
    postgres_searched: str,
) -> None:
    catalog = Catalog(postgres_searched)
    shape = Shape(category=True, until=True, cursor=True, words=1)
    statement = catalog.statement(shape, 51)  # the SQL the API runs, as the driver gets it
    values = {
        **statement.fixed,
        "word_0": "% for%",
        "category_id": 1,
        "until": datetime(2026, 9, 1, tzinfo=UTC),
        "cursor_date": datetime(2026, 8, 1, tzinfo=UTC),
        "cursor_id": 10**9,
    }
    connection = catalog.open().raw_connection()
    try:
        cursor = connection.cursor()
        assert statement.setup is not None  # the planner is not left to guess the LIKE's rows
        cursor.execute(statement.setup)
        cursor.execute(f"EXPLAIN {statement.sql}", values)
        plan = "\n".join(str(row[0]) for row in cursor.fetchall())
    finally:
        connection.close()
        catalog.close()

    assert "Index Only Scan using ix_courses_start_date_course_id on courses" in plan


def test_api_reads_on_postgresql_stop_when_their_connection_is_gone(postgres_searched: str) -> None:
    catalog = Catalog(postgres_searched)
    try:
        with catalog.reading() as connection:
            interval = connection.exec_driver_sql("SHOW client_connection_check_interval")
            assert interval.scalar() == "1s"
    finally:
        catalog.close()


# ---------------------------------------------------------------------------------------------
# One data version per answer


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_search_page_after_a_load_comes_from_one_data_version(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The matches of a search are kept per data version; a load that commits while they are
    kept (here: before the catalog reads the version again) cancels some of them. The next page
    is still a page of the new data alone: full, in order, without the cancelled courses."""
    monkeypatch.setattr(matches, "MAX_MATCHES", 10**9)
    monkeypatch.setattr(matches, "SCAN_MATCHES", 10**9)
    for url in new_warehouse(backend, tmp_path):
        fill(tmp_path / "lake", url, courses=400, crowded=0)
        catalog = Catalog(url, version_ttl=3600)  # the version read once, then trusted
        searched = CourseFilter(words=("intro",))
        try:
            catalog.version()
            before = [row[0] for row in catalog.recent(searched, limit=1000)]
            assert catalog.holds_matches(searched.words) and len(before) > 20
            cancel(open_lake(str(tmp_path / "lake")), before[:20:2], None)
            load(str(tmp_path / "lake"), url)
            page = [row[0] for row in catalog.recent(searched, limit=10)]
            rest = [row[0] for row in catalog.recent(searched, limit=1000)]
        finally:
            catalog.close()

        now = [id_ for id_ in before if id_ not in set(before[:20:2])]
        assert page == now[:10]
        assert rest == now


def test_new_searches_are_read_a_few_at_once_and_listings_do_not_wait_for_them(
    searched_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings_for(searched_url))
    catalog = app.state.service.catalog
    reading: list[tuple[str, ...]] = []
    most = 0
    lock = threading.Lock()
    release = threading.Event()
    read = catalog.recent

    def held(course_filter: CourseFilter, **options: Any) -> Any:
        """The catalog's own read; a search's held until the test lets it go."""
        nonlocal most
        if not course_filter.words:
            return read(course_filter, **options)
        with lock:
            reading.append(course_filter.words)
            most = max(most, len(reading))
        try:
            release.wait(30)
            return read(course_filter, **options)
        finally:
            with lock:
                reading.remove(course_filter.words)

    monkeypatch.setattr(catalog, "recent", held)
    words = ["intro", "python", "data", "design", "learn", "art", "music", "web"] * 2

    async def scenario() -> tuple[list[int], int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            searches = [
                asyncio.create_task(client.get("/v1/courses/recent", params={"q": q, "limit": i}))
                for i, q in enumerate(words, start=1)
            ]
            for _ in range(300):  # until the first searches are being read
                if len(reading) >= SEARCHES_AT_ONCE:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # time for more, were they let in
            listing = await client.get("/v1/courses/recent", params={"limit": 3})
            held_then = len(reading)
            release.set()
            answers = await asyncio.gather(*searches)
            return [answer.status_code for answer in answers], listing.status_code, held_then

    try:
        statuses, listing_status, held_then = asyncio.run(scenario())
    finally:
        release.set()
        app.state.service.close()

    assert listing_status == 200  # answered while new searches were still being read
    assert held_then == SEARCHES_AT_ONCE
    assert statuses == [200] * len(words)
    assert most == SEARCHES_AT_ONCE
