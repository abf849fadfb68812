"""The web page in a real browser (Debian's Chromium, driven by Playwright) over real HTTP."""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn

from coursemart.api import create_app
from coursemart.generate import Window, generate
from coursemart.load import load
from tests.conftest import unavailable
from tests.test_api import settings_for, view_rows

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000


class BackgroundServer:
    """uvicorn on a free port of 127.0.0.1, in a thread, stopped on exit."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install playwright)")
    return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))


@pytest.fixture
def filled_sqlite(tmp_path: Path) -> str:
    """400 courses over the two months around today (so that some are upcoming)."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    today = date.today()
    window = Window(today - timedelta(days=30), today + timedelta(days=30))
    generate(str(tmp_path / "lake"), courses=400, seed=1, window=window)
    load(str(tmp_path / "lake"), url)
    return url


@contextmanager
def browsing(app: Any, chromium: str, **context: Any) -> Iterator[tuple[str, Page, list[str]]]:
    """A served app and a fresh browser page; the console's errors are collected."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with BackgroundServer(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(**context).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            yield base, page, problems
        finally:
            browser.close()


def upcoming(url: str) -> list[dict[str, Any]]:
    """The view's courses from the current minute on, soonest first."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = [row for row in view_rows(url) if row["start_date"] >= now]
    return sorted(rows, key=lambda row: (row["start_date"], row["course_id"]))


def shown_ids(page: Page) -> list[int]:
    ids = page.locator("#courses tbody tr").evaluate_all("rs => rs.map(r => r.dataset.courseId)")
    return [int(i) for i in ids]


def test_the_page_opens_on_upcoming_courses_soonest_first(
    chromium: str, filled_sqlite: str
) -> None:
    from playwright.sync_api import expect

    soonest = upcoming(filled_sqlite)
    assert len(soonest) > 50, "two pages of upcoming courses are needed"
    with browsing(create_app(settings_for(filled_sqlite)), chromium) as (base, page, problems):
        page.goto(f"{base}/")
        rows = page.locator("#courses tbody tr")
        expect(rows).to_have_count(50)
        assert shown_ids(page) == [row["course_id"] for row in soonest[:50]]
        expect(page.locator("#status")).to_have_text("Showing 50 courses.")
        expect(page.locator("#category option")).to_have_count(6)
        expect(page.locator("#key-form")).to_be_hidden()
        expect(page.locator("#freshness")).to_have_text(re.compile(r"^Data loaded .+ ago\.$|now"))
        assert page.url == f"{base}/"
    assert problems == []


def test_every_filter_is_in_the_url_for_reload_back_and_a_shared_link(
    chromium: str, filled_sqlite: str
) -> None:
    from playwright.sync_api import expect

    first_day = min(row["start_date"] for row in view_rows(filled_sqlite)).date()
    start = first_day + timedelta(days=10)
    art_past = [
        row
        for row in view_rows(filled_sqlite)
        if row["category_name"] == "Art" and start <= row["start_date"].date()
    ]
    art_past = [row for row in art_past if row["start_date"] < datetime.now(UTC).replace(second=0)]
    assert art_past, "some past Art courses after the start date are needed"
    with browsing(create_app(settings_for(filled_sqlite)), chromium) as (base, page, problems):
        page.goto(f"{base}/")
        rows = page.locator("#courses tbody tr")
        expect(rows).to_have_count(50)
        opening = shown_ids(page)

        page.check("input[name=order][value=past]")
        page.select_option("#category", label="Art")
        page.fill("#from", start.isoformat())
        query = f"order=past&category=3&from={start.isoformat()}"
        expect(page).to_have_url(f"{base}/?{query}")
        wanted = [row["course_id"] for row in art_past[:50]]
        expect(rows.first).to_have_attribute("data-course-id", str(wanted[0]))
        expect(rows).to_have_count(len(wanted))  # the answer to these filters, not an earlier one
        assert shown_ids(page) == wanted

        page.reload()
        expect(rows.first).to_have_attribute("data-course-id", str(wanted[0]))
        expect(rows).to_have_count(len(wanted))  # the answer to these filters, not an earlier one
        assert shown_ids(page) == wanted
        expect(page.locator("input[name=order][value=past]")).to_be_checked()
        expect(page.locator("#category")).to_have_value("3")
        expect(page.locator("#from")).to_have_value(start.isoformat())

        page.go_back()  # the view before "Art from <start>": upcoming, unfiltered
        expect(page).to_have_url(re.compile(r"/(\?order=past(&category=3)?)?$"))
        while page.url != f"{base}/":
            page.go_back()
        expect(rows.first).to_have_attribute("data-course-id", str(opening[0]))
        expect(rows).to_have_count(len(opening))
        assert shown_ids(page) == opening
        expect(page.locator("#category")).to_have_value("")

        shared = page.context.new_page()
        shared.goto(f"{base}/?{query}")
        expect(shared.locator("#courses tbody tr").first).to_have_attribute(
            "data-course-id", str(wanted[0])
        )
        expect(shared.locator("#courses tbody tr")).to_have_count(len(wanted))
        assert shown_ids(shared) == wanted
    assert problems == []


def test_searching_from_the_page_puts_the_words_in_the_url(
    chromium: str, filled_sqlite: str
) -> None:
    from playwright.sync_api import expect

    from coursemart.search import query_words
    from tests.test_api_search import matched

    names = {row["course_id"]: row for row in named(filled_sqlite)}
    wanted = [
        row["course_id"]
        for row in upcoming(filled_sqlite)
        if matched(names[row["course_id"]], "intro")
    ][:50]
    assert wanted and query_words("Intro") == ("intro",)
    with browsing(create_app(settings_for(filled_sqlite)), chromium) as (base, page, problems):
        page.goto(f"{base}/")
        rows = page.locator("#courses tbody tr")
        expect(rows).to_have_count(50)

        page.fill("#q", "Intro")  # typing searches once the typist pauses
        expect(page).to_have_url(f"{base}/?q=Intro")
        expect(rows.first).to_have_attribute("data-course-id", str(wanted[0]))
        expect(rows).to_have_count(len(wanted))  # the answer to these filters, not an earlier one
        assert shown_ids(page) == wanted

        page.reload()
        expect(page.locator("#q")).to_have_value("Intro")
        expect(rows.first).to_have_attribute("data-course-id", str(wanted[0]))
        page.fill("#q", "zzzz nothing")
        page.press("#q", "Enter")
        expect(page.locator("#status")).to_have_text("No courses match.")
    assert problems == []


def named(url: str) -> list[dict[str, Any]]:
    """Every course with the words of its folded name."""
    import pyarrow as pa

    from coursemart.search import fold
    from tests.test_load import query

    rows = query(url, "SELECT course_id, course_name FROM courses")
    folded = fold(pa.array([str(name) for _, name in rows])).to_pylist()
    return [
        {"course_id": int(str(ident)), "words": name.split()}
        for (ident, _), name in zip(rows, folded, strict=True)
    ]


def test_more_keeps_its_place_across_a_reload(chromium: str, filled_sqlite: str) -> None:
    from playwright.sync_api import expect

    soonest = upcoming(filled_sqlite)
    assert len(soonest) > 100, "three pages of upcoming courses are needed"
    with browsing(create_app(settings_for(filled_sqlite)), chromium) as (base, page, problems):
        page.goto(f"{base}/")
        rows = page.locator("#courses tbody tr")
        expect(rows).to_have_count(50)
        page.click("#more")
        expect(rows).to_have_count(100)
        page.click("#more")
        expect(rows).to_have_count(min(150, len(soonest)))
        expect(page).to_have_url(f"{base}/?pages=3")
        assert shown_ids(page) == [row["course_id"] for row in soonest[:150]]
        rows.nth(120).scroll_into_view_if_needed()
        page.wait_for_timeout(400)  # the scroll position is saved after a short pause
        scrolled = page.evaluate("window.scrollY")
        assert scrolled > 0

        page.reload()
        expect(rows).to_have_count(min(150, len(soonest)))
        assert shown_ids(page) == [row["course_id"] for row in soonest[:150]]
        page.wait_for_function(f"Math.abs(window.scrollY - {scrolled}) < 5")
    assert problems == []


@pytest.mark.parametrize("path", ["/", "/?order=recent&category=2&pages=2"])
def test_the_page_fits_a_phone_without_sideways_scrolling(
    chromium: str, filled_sqlite: str, path: str
) -> None:
    from playwright.sync_api import expect

    app = create_app(settings_for(filled_sqlite))
    viewport = {"width": 390, "height": 844}
    with browsing(app, chromium, viewport=viewport, is_mobile=True) as (base, page, problems):
        page.goto(f"{base}{path}")
        expect(page.locator("#courses tbody tr").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        for selector in ("#filters", "#courses", "#courses tbody tr", "header", "#more"):
            for box in (element.bounding_box() for element in page.locator(selector).all()):
                if box is not None:  # None: hidden (no More on the last page)
                    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, selector
    assert problems == []


def test_the_page_can_be_used_with_the_keyboard_alone(chromium: str, filled_sqlite: str) -> None:
    from playwright.sync_api import expect

    with browsing(create_app(settings_for(filled_sqlite)), chromium) as (base, page, problems):
        page.goto(f"{base}/")
        rows = page.locator("#courses tbody tr")
        expect(rows).to_have_count(50)

        page.keyboard.press("Tab")
        expect(page.locator(".skip")).to_be_focused()
        focus_order: list[str] = []
        while len(focus_order) < 9:
            page.keyboard.press("Tab")
            focused = page.evaluate(FOCUSED)
            if not focus_order or focus_order[-1] != focused:  # a date field has 3 parts
                focus_order.append(focused)
        assert focus_order == [
            "API documentation",
            "OpenAPI",
            "q",
            "order",  # one stop for the radio group
            "category",
            "level",
            "from",
            "to",
            "reset",
        ]
        page.focus("input[name=order][value=upcoming]")
        page.keyboard.press("ArrowRight")  # radio group: the arrow keys move the choice
        expect(page.locator("input[name=order][value=past]")).to_be_checked()
        expect(page).to_have_url(f"{base}/?order=past")
        page.focus("#level")
        page.keyboard.press("ArrowDown")  # the first level, chosen from the keyboard
        expect(page).to_have_url(f"{base}/?order=past&level=101")
        expect(rows.first).to_be_visible()
        assert set(rows.locator("td:nth-child(4)").all_inner_texts()) == {"Beginner"}

        now = datetime.now(UTC).replace(second=0, microsecond=0)
        past = [
            r for r in view_rows(filled_sqlite) if r["level_id"] == 101 and r["start_date"] < now
        ]
        assert len(past) > 50, "two pages of past Beginner courses are needed"
        page.focus("#more")
        page.keyboard.press("Enter")
        expect(rows).to_have_count(min(100, len(past)))
        # focus stays on More while there is more, else moves to the list it extended
        expect(page.locator("#more" if len(past) > 100 else "#courses")).to_be_focused()
    assert problems == []


#: What has the focus: a control's id (or name), else a link's text.
FOCUSED = (
    "(() => { const e = document.activeElement;"
    " return e.name === 'order' ? 'order' : e.id || e.textContent.trim(); })()"
)
AXE = Path(__file__).resolve().parent.parent / ".cache/axe-core/node_modules/axe-core/axe.min.js"


@pytest.fixture
def axe() -> Path:
    if not AXE.exists():
        unavailable(f"axe-core is not installed at {AXE}: `make test` installs it with npm")
    return AXE


# /docs is Swagger UI's own markup, which axe faults (nested-interactive in every operation's
# summary, the contrast of its version stamp): see docs/api.md. The page is ours.
@pytest.mark.parametrize("path", ["/", "/?order=past&category=3&pages=2"])
@pytest.mark.parametrize("width", [390, 1280])
def test_axe_finds_no_serious_accessibility_violation(
    chromium: str, filled_sqlite: str, axe: Path, path: str, width: int
) -> None:
    from playwright.sync_api import expect

    app = create_app(settings_for(filled_sqlite))
    viewport = {"width": width, "height": 900}
    # axe is injected as a script of the test's own: the page's policy allows none
    with browsing(app, chromium, viewport=viewport, bypass_csp=True) as (base, page, problems):
        page.goto(f"{base}{path}")
        expect(page.locator("#courses tbody tr").first).to_be_visible()
        page.add_script_tag(path=str(axe))
        results = page.evaluate(
            "axe.run(document, {runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
        )
    grave = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert grave == [], "\n".join(grave)
    assert results["passes"], "axe ran no check"
    assert problems == []


def test_the_documentation_works_with_no_other_host_reachable(
    chromium: str, filled_sqlite: str
) -> None:
    from playwright.sync_api import Route, expect

    elsewhere: list[str] = []

    def only_this_server(route: Route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with browsing(create_app(settings_for(filled_sqlite)), chromium) as (base, page, problems):
        page.route("**/*", only_this_server)
        page.goto(f"{base}/docs")
        operations = page.locator(".opblock-summary-path")
        expect(operations.first).to_be_visible()
        listed = set(operations.all_inner_texts())
        assert {"/v1/courses/recent", "/api/GetRecentCourses", "/v1/categories"} <= listed
        for own in ("/docs", "/static/docs.js"):  # the files that start Swagger UI name no host
            assert "http" not in page.request.get(f"{base}{own}").text()
    assert elsewhere == []
    assert problems == []


def test_the_page_says_what_to_run_when_the_warehouse_does_not_exist(
    chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    missing = f"sqlite:///{tmp_path / 'nowhere' / 'warehouse.db'}"
    with BackgroundServer(create_app(settings_for(missing))) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{base}/")
            error = page.locator("#error")
            expect(error).to_be_visible()
            expect(error).to_have_text(
                "The API failed: the warehouse does not exist yet: "
                "run `coursemart load` (or `make run`) to create it"
            )
        finally:
            browser.close()


def test_the_page_asks_for_a_key_when_the_api_needs_one(chromium: str, filled_sqlite: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    app = create_app(settings_for(filled_sqlite, api_keys="page-key"))
    with BackgroundServer(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{base}/")
            expect(page.locator("#key-form")).to_be_visible()
            expect(page.locator("#error")).to_contain_text("missing or invalid API key")
            page.fill("#api-key", "page-key")
            page.click("#key-form button")
            expect(page.locator("#courses tbody tr")).to_have_count(50)
            expect(page.locator("#error")).to_be_hidden()
            expect(page.locator("#freshness")).to_contain_text("Data loaded")
            assert page.evaluate("sessionStorage.getItem('coursemart.apiKey')") == "page-key"
        finally:
            browser.close()


#: A phone's screen (CSS pixels), as the page must serve it.
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True}
SCREENSHOTS = Path(__file__).resolve().parent.parent / ".cache" / "screenshots"


def screenshot(page: Page, name: str) -> None:
    """Keep what the test saw, for a person to look at (.cache/screenshots/)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_on_a_phone_the_first_course_shows_on_the_first_screen(
    chromium: str, filled_sqlite: str
) -> None:
    from playwright.sync_api import expect

    app = create_app(settings_for(filled_sqlite))
    with browsing(app, chromium, **PHONE) as (base, page, problems):
        page.goto(f"{base}/")
        first = page.locator("#courses tbody tr").first
        expect(first).to_be_visible()
        screenshot(page, "phone-first-screen")

        box = first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 844, box
        hint = page.locator("#q-hint").bounding_box()
        toggle = page.locator("#filters-toggle")
        below = toggle.bounding_box()
        assert hint is not None and below is not None
        assert below["y"] - (hint["y"] + hint["height"]) < 24, "a blank band under the search"
        expect(page.locator("#category")).to_be_hidden()
        expect(toggle).to_have_attribute("aria-expanded", "false")

        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(page.locator("#category")).to_be_visible()
        page.select_option("#category", label="Art")
        expect(page).to_have_url(f"{base}/?category=3")
        expect(toggle).to_have_text("Filters (1 set)")
        screenshot(page, "phone-filters-open")
    assert problems == []


def test_on_a_phone_more_keeps_the_keyboard_focus(chromium: str, filled_sqlite: str) -> None:
    from playwright.sync_api import expect

    assert len(upcoming(filled_sqlite)) > 150, "four pages of upcoming courses are needed"
    app = create_app(settings_for(filled_sqlite))
    with browsing(app, chromium, **PHONE) as (base, page, problems):
        page.goto(f"{base}/")
        rows = page.locator("#courses tbody tr")
        expect(rows).to_have_count(50)
        more = page.locator("#more")
        more.focus()

        page.keyboard.press("Enter")
        expect(rows).to_have_count(100)
        expect(more).to_be_focused()
        page.keyboard.press("Enter")  # a second page from the keyboard, without moving back
        expect(rows).to_have_count(150)
        expect(more).to_be_focused()
    assert problems == []


def test_the_search_examples_find_courses_in_a_generated_catalog(
    chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    generate(str(tmp_path / "lake"), courses=5_000, seed=3)
    load(str(tmp_path / "lake"), url)
    with browsing(create_app(settings_for(url)), chromium, **PHONE) as (base, page, problems):
        page.goto(f"{base}/?order=recent")
        rows = page.locator("#courses tbody tr")
        expect(rows).to_have_count(50)
        placeholder = page.locator("#q").get_attribute("placeholder") or ""
        examples = placeholder.removeprefix("e.g. ").split(", ")
        assert placeholder.startswith("e.g. ") and len(examples) >= 2, placeholder

        for example in examples:
            page.fill("#q", example)
            page.press("#q", "Enter")
            expect(page).to_have_url(re.compile(r"[?&]q="))
            expect(page.locator("#status")).to_have_text(re.compile(r"^Showing \d+ course"))
            assert all(
                all(word in name.lower() for word in example.split())
                for name in rows.locator("td.name").all_inner_texts()
            ), example
    assert problems == []


def test_a_bad_parameter_in_the_pages_address_is_named_on_the_page(
    chromium: str, filled_sqlite: str
) -> None:
    from playwright.sync_api import expect

    address = "/?order=sideways&category=99&level=101&from=2026-13-01&pages=many&colour=red"
    app = create_app(settings_for(filled_sqlite))
    with browsing(app, chromium, **PHONE) as (base, page, problems):
        page.goto(f"{base}{address}")
        rows = page.locator("#courses tbody tr")
        expect(rows.first).to_be_visible()
        said = page.locator("#address-error")
        expect(said).to_be_visible()
        screenshot(page, "phone-bad-address")
        for named in (
            "order=sideways: not an order (upcoming, past, recent)",
            "category=99: no such category",
            "from=2026-13-01: not a date (write it as YYYY-MM-DD, e.g. 2026-01-31)",
            "pages=many: not a number of pages (1 to 20)",
            "colour=red: not a parameter of this page",
        ):
            expect(said).to_contain_text(named)
        assert "level=101" not in (said.text_content() or "")
        assert set(rows.locator("td:nth-child(4)").all_inner_texts()) == {"Beginner"}

        page.click("#filters-toggle")
        page.select_option("#category", label="Art")  # a new view: its address is clean
        expect(page).to_have_url(f"{base}/?category=3&level=101")
        expect(said).to_be_hidden()


def test_the_page_sends_the_api_no_parameter_it_does_not_take(
    chromium: str, filled_sqlite: str
) -> None:
    from playwright.sync_api import expect

    takes = {
        "/v1/courses/recent": {
            "limit",
            "cursor",
            "category",
            "level",
            "since",
            "until",
            "order",
            "q",
        }
    }
    asked: list[tuple[str, set[str]]] = []
    statuses: list[int] = []
    with browsing(create_app(settings_for(filled_sqlite)), chromium) as (base, page, problems):
        page.on("request", lambda r: asked.append((urlsplit(r.url).path, set(parse_qs(
            urlsplit(r.url).query, keep_blank_values=True)))))  # fmt: skip
        page.on("response", lambda r: statuses.append(r.status))
        # a shared link with a parameter of its own (a newsletter's) and every filter set
        page.goto(f"{base}/?utm_source=mail&order=past&category=3&level=101&from=2020-01-01"
                  f"&to=2030-01-01&q=a&pages=2")  # fmt: skip
        expect(page.locator("#status")).to_have_text(re.compile(r"^Showing \d+ course"))
        page.check("input[name=order][value=recent]")
        expect(page).to_have_url(re.compile(r"order=recent"))
        expect(page.locator("#status")).to_have_text(re.compile(r"^Showing \d+ course"))
    api = [(path, names) for path, names in asked if path.startswith("/v1/")]
    assert any(path == "/v1/courses/recent" for path, _ in api)
    for path, names in api:
        assert names <= takes.get(path, set()), (path, names)
    assert all(status < 400 for status in statuses)
    assert problems == []
