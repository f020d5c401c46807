"""Fixtures of the browser tests: one headless Chromium per session, a fresh context per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from genesis.service.routes.web import WEB_DIST
from harness.browser import CHROMIUM_FLAGS, PageProblems, chromium_path


@pytest.fixture(scope="session")
def built_ui() -> Path:
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail(
            f"the chat UI is not built ({WEB_DIST} has no index.html): run "
            "`npm ci && npm run build` in web/ (nox -s tests does) before the browser tests"
        )
    return WEB_DIST


# Module scope, not session: Playwright's sync API runs an event loop of its own for as long
# as it is open, and pytest-asyncio cannot start one for async tests while it does.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium on PATH (apt-get install chromium; .ci/run installs it)")
    with sync_playwright() as playwright:
        # Each launch gets a fresh, temporary --user-data-dir from Playwright.
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser, built_ui: Path) -> Iterator[Page]:
    # A context per test: its own sessionStorage, cookies and cache.
    context = browser.new_context(viewport={"width": 1000, "height": 760})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def problems(page: Page) -> PageProblems:
    return PageProblems(page)
