"""Shared fixtures; the real-server fixtures live in tests/harness/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.genesis import GenesisFactory, genesis_servers

pytest_plugins = ["harness.plugin", "harness.kube.fixtures"]


@pytest.fixture
def genesis_server(tmp_path: Path) -> Iterator[GenesisFactory]:
    """Start real `genesis serve` processes: `genesis_server({"GENESIS_TRACK": "canary"})`."""
    with genesis_servers(tmp_path) as start:
        yield start


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The Kubernetes cluster is session-scoped and busy; start it last, so the other
    # integration tests do not share two cores with it.
    items.sort(key=lambda item: item.get_closest_marker("kube") is not None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = len(terminalreporter.stats.get("skipped", []))
    terminalreporter.write_line(f"genesis: {skipped} test(s) skipped")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # CI installs every real server the suite needs, so a skip there means a broken setup.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter:
            reporter.write_line(
                f"genesis: CI requires 0 skipped tests, {skipped} were skipped (see reasons above)",
                red=True,
            )
