"""Browser tests: the API under uvicorn (it serves the dashboard), real workers, and a headless
Chromium driven by Playwright.

Chromium is Debian's `chromium` package (Playwright's own browser download needs the internet),
installed by `make test`'s `chromium` step where the machine allows it: the tests only look for
it, and fail naming the command when it is absent. Screenshots go to .artifacts/browser/
(git-ignored).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_API_KEY, Servers
from tests.processes import PROJECT_ROOT, Api, Worker, wait_until

ARTIFACTS = PROJECT_ROOT / ".artifacts" / "browser"


def find_chromium() -> str:
    """The path of the chromium executable; a clear failure when it is not installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail(
            "chromium is not installed: the browser tests drive Debian's chromium package. "
            "`make chromium` (a step of `make test`) installs it when run as root or with "
            "passwordless sudo; otherwise someone with root runs `apt-get install chromium`."
        )
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    with sync_playwright() as playwright:
        # --no-sandbox: the tests may run as root (containers, CI), where Chromium's sandbox
        # refuses to start.
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture
def http(api: Api, clean_state: Servers) -> Iterator[httpx.Client]:
    """The JSON API as the admin key; the database and queues are emptied first."""
    with httpx.Client(base_url=api.url, headers={"X-API-Key": TEST_API_KEY}, timeout=30) as client:
        yield client


class Page:
    """A browser page that records console errors and uncaught exceptions."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.expected: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def expect_error(self, text: str) -> None:
        """A console error containing `text` is expected (e.g. a page answered 404 on purpose)."""
        self.expected.append(text)

    def _console(self, message: Any) -> None:
        if message.type == "error" and not any(text in message.text for text in self.expected):
            self.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def screenshot(
        self, name: str, full_page: bool = True, clip: dict[str, float] | None = None
    ) -> Path:
        """Saved under .artifacts/browser/; the README's docs/*.png are viewport shots
        (`full_page=False`) or a `clip` of the page (x, y, width, height in CSS pixels), copied
        from there by hand."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page, clip=clip)
        return path


@pytest.fixture
def new_page(browser: Any, api: Api) -> Iterator[Any]:
    """Opens pages in a fresh browser context (no cookies); every page must end without a
    console error or an uncaught exception."""
    opened: list[Page] = []
    contexts: list[Any] = []

    def open_page(width: int = 1280) -> Page:
        """`width`: the viewport's, CSS pixels (the issues' checks name 1400)."""
        context = browser.new_context(base_url=api.url, viewport={"width": width, "height": 900})
        contexts.append(context)
        page = Page(context.new_page())
        page.page.set_default_timeout(60_000)
        opened.append(page)
        return page

    yield open_page
    for context in contexts:
        context.close()
    errors = [error for page in opened for error in page.errors]
    assert not errors, "\n".join(errors)


def log_in(page: Page, key: str) -> None:
    page.page.goto("/login")
    page.page.fill("input[name=key]", key)
    page.page.click("form[action='/login'] button[type=submit]")
    page.page.wait_for_url(lambda url: "/login" not in url)


@pytest.fixture(scope="module")
def worker(servers: Servers) -> Iterator[Worker]:
    process = Worker(concurrency=1)
    yield process
    process.stop()


def wait_run(http: httpx.Client, run_id: str, timeout_s: float = 180) -> dict[str, Any]:
    """The run once it ended (states, not seconds: the bound is generous for a loaded machine)."""
    run: dict[str, Any] = {}

    def ended() -> bool:
        nonlocal run
        run = http.get(f"/api/v1/runs/{run_id}").json()
        return run["status"] in ("succeeded", "failed", "cancelled")

    wait_until(ended, timeout_s, f"run {run_id} to end", every_s=0.2)
    return run
