"""gzip when the client asks for it: the catalog's answers, the OpenAPI document and the static
files; compressed once per answer; an ETag per encoding, 304 for each; real HTTP."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from coursemart.api import create_app
from coursemart.api.compression import accepts_gzip
from tests.serving import serving
from tests.test_api import fill, settings_for

GZIP = {"accept-encoding": "gzip"}
PLAIN = {"accept-encoding": "identity"}


@pytest.fixture(scope="module")
def sqlite_warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("compression")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    fill(folder / "lake", url, courses=1500, crowded=0)
    return url


@pytest.fixture(params=[True, False], ids=["fast-path", "routes"])
def client(request: pytest.FixtureRequest, sqlite_warehouse: str) -> Iterator[TestClient]:
    app = create_app(settings_for(sqlite_warehouse), fast_path=request.param)
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),
        ("x-gzip", True),
        ("*", True),
        ("GZIP;q=0.5", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip;q=0, *", False),  # named wins over *
        ("*;q=0", False),
        ("identity", False),
        ("br, zstd", False),
        ("", False),
        (None, False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


CATALOG = [
    "/v1/courses/recent?limit=1000",
    "/v1/courses/recent?limit=50&order=upcoming",
    "/api/GetRecentCourses",
]
DOCUMENTS = ["/openapi.json", "/static/app.js", "/static/swagger-ui/swagger-ui-bundle.js"]


@pytest.mark.parametrize("path", CATALOG + DOCUMENTS)
def test_answers_are_gzipped_when_asked_with_an_etag_of_their_own(
    client: TestClient, path: str
) -> None:
    plain, packed = client.get(path, headers=PLAIN), client.get(path, headers=GZIP)
    assert plain.status_code == packed.status_code == 200
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == plain.content  # httpx decodes what came compressed
    assert int(packed.headers["content-length"]) < len(plain.content) / 2
    assert int(plain.headers["content-length"]) == len(plain.content)
    assert plain.headers["vary"] == packed.headers["vary"] == "Accept-Encoding"
    etag, packed_etag = plain.headers["etag"], packed.headers["etag"]
    assert packed_etag == etag[:-1] + '-gzip"' and not packed_etag.startswith("W/")
    for headers, current in ((PLAIN, etag), (GZIP, packed_etag)):
        again = client.get(path, headers={**headers, "if-none-match": current})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", current)
        assert "content-encoding" not in again.headers
    # the other encoding's ETag does not match: the client gets the encoding it asked for
    crossed = client.get(path, headers={**GZIP, "if-none-match": etag})
    assert (crossed.status_code, crossed.headers["etag"]) == (200, packed_etag)
    crossed = client.get(path, headers={**PLAIN, "if-none-match": packed_etag})
    assert (crossed.status_code, crossed.headers["etag"]) == (200, etag)
    head = client.head(path, headers=GZIP)
    assert head.headers["content-length"] == packed.headers["content-length"]


def test_a_page_of_1000_courses_is_compressed_once_and_kept(sqlite_warehouse: str) -> None:
    app = create_app(settings_for(sqlite_warehouse))
    path = "/v1/courses/recent?limit=1000"
    with TestClient(app) as client:
        first = client.get(path, headers=GZIP)
        assert len(first.content) > 180_000
        assert int(first.headers["content-length"]) < 25_000
        etag = client.get(path, headers=PLAIN).headers["etag"]
        kept = app.state.service.cache.get(etag)
        assert kept is not None and kept.gzipped is not None
        assert gzip.decompress(kept.gzipped) == kept.body == first.content
        for spelling in (path, "/v1/courses/recent?order=recent&limit=1000"):
            for _ in range(5):
                assert client.get(spelling, headers=GZIP).content == first.content
        assert app.state.service.cache.get(etag).gzipped is kept.gzipped  # not made again


@pytest.mark.parametrize(
    "path",
    ["/v1/levels", "/v1/courses/recent?limit=1", "/v1/courses/recent?limit=0", "/health"],
)
def test_small_answers_and_errors_are_sent_as_they_are(client: TestClient, path: str) -> None:
    response = client.get(path, headers=GZIP)
    assert "content-encoding" not in response.headers
    assert int(response.headers["content-length"]) == len(response.content) < 1024


def test_the_server_sends_gzip_over_real_http(sqlite_warehouse: str) -> None:
    with serving(sqlite_warehouse) as served:
        for path in ("/v1/courses/recent?limit=1000", "/static/swagger-ui/swagger-ui-bundle.js"):
            status, plain_headers, plain = served.get(path, **{"Accept-Encoding": "identity"})
            status_gz, headers, packed = served.get(path, **{"Accept-Encoding": "gzip"})
            assert status == status_gz == 200
            assert "content-encoding" not in plain_headers  # uvicorn sends names in lower case
            assert headers["content-encoding"] == "gzip"
            assert headers["vary"] == "Accept-Encoding"
            assert int(headers["content-length"]) == len(packed) < len(plain) / 3
            assert gzip.decompress(packed) == plain
