"""Headless Chromium for the browser tests: Debian's `chromium`, driven by Playwright.

Playwright's own browser download cannot run here (and CI installs Chromium from apt), so
tests launch the system binary with the flags ../shared/ENVIRONMENT.md found to work.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Error, Page

ROOT = Path(__file__).resolve().parents[2]
# Kept by CI (gitignored): screenshots of the page, for people to look at.
ARTIFACTS = Path(os.environ.get("GENESIS_ARTIFACTS_DIR", ROOT / "artifacts")) / "web"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """`GENESIS_TEST_CHROMIUM`, else `chromium` on PATH (Debian installs /usr/bin/chromium)."""
    return os.environ.get("GENESIS_TEST_CHROMIUM") or shutil.which("chromium")


class PageProblems:
    """Console errors and uncaught exceptions of a page. A healthy page has none; a script or
    style that the Content-Security-Policy blocks shows up here."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", self._error)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.messages.append(f"console: {message.text}")

    def _error(self, error: Error) -> None:
        self.messages.append(f"uncaught: {error.message}")
