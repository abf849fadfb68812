"""The web page in a real browser (Debian's Chromium, driven by Playwright) over real HTTP."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from coursemart.api import create_app
from tests.conftest import unavailable
from tests.test_api import fill, settings_for, view_rows

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
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    fill(tmp_path / "lake", url, courses=400, crowded=0)
    return url


def test_the_page_lists_filters_and_pages_courses(chromium: str, filled_sqlite: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    art = [row for row in view_rows(filled_sqlite) if row["category_name"] == "Art"]
    assert len(art) > 50, "two pages of Art courses are needed"
    problems: list[str] = []
    with BackgroundServer(create_app(settings_for(filled_sqlite))) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{base}/")

            rows = page.locator("#courses tbody tr")
            expect(rows).to_have_count(50)
            expect(page.locator("#status")).to_have_text("Showing 50 courses.")
            expect(page.locator("#category option")).to_have_count(6)
            expect(page.locator("#key-form")).to_be_hidden()

            page.select_option("#category", label="Art")
            expect(rows.first).to_have_attribute("data-course-id", str(art[0]["course_id"]))
            expect(rows).to_have_count(50)
            assert set(rows.locator("td:nth-child(3)").all_inner_texts()) == {"Art"}

            page.click("#more")
            expect(rows).to_have_count(min(100, len(art)))
            shown = [int(i) for i in rows.evaluate_all("rs => rs.map(r => r.dataset.courseId)")]
            assert shown == [row["course_id"] for row in art[:100]]
            expect(page.locator("#error")).to_be_hidden()
        finally:
            browser.close()
    assert problems == []


def test_the_page_says_clearly_when_the_api_fails(chromium: str, tmp_path: Path) -> None:
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
            expect(error).to_contain_text("The API failed: the warehouse is unavailable")
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
            assert page.evaluate("sessionStorage.getItem('coursemart.apiKey')") == "page-key"
        finally:
            browser.close()
