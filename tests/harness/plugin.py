"""pytest fixtures for real servers on 127.0.0.1: the OpenAI stub, Redis and Prometheus.

Each server lives in the test's tmp dir (config, data and log) and is stopped at teardown. A
missing binary skips the test naming the Debian package to install. When a test fails, the
tail of every server log it used is attached to the failure report, because "Redis said
what?" is the first question when an integration test goes red.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.openai_stub import OpenAIStub
from harness.processes import require_binary
from harness.prometheus import PrometheusServer, RuleFile, ScrapeJob
from harness.redis import RedisServer
from harness.secrets import WATCH


class RedisFactory:
    """Starts Redis servers for one test (`persistent=True` for AOF with fsync always)."""

    def __init__(self, workdir: Path, binary: str) -> None:
        self.workdir = workdir
        self.binary = binary
        self.servers: list[RedisServer] = []

    def __call__(self, *, persistent: bool = False, extra_args: Sequence[str] = ()) -> RedisServer:
        name = "redis" if not self.servers else f"redis-{len(self.servers)}"
        server = RedisServer(
            self.workdir,
            binary=self.binary,
            persistent=persistent,
            extra_args=extra_args,
            name=name,
        )
        self.servers.append(server)
        return server.start()

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()

    def log_tails(self, lines: int = 40) -> list[tuple[str, str]]:
        return [tail for server in self.servers for tail in server.log_tails(lines)]


class PrometheusFactory:
    """Starts Prometheus servers for one test with the scrape targets and rules it passes.

    New targets show up in query results about 5 s after start or reload: Prometheus 2.42
    applies target changes on a fixed 5 s tick, so use `wait_for` rather than sleeping.
    """

    def __init__(self, workdir: Path, binary: str) -> None:
        self.workdir = workdir
        self.binary = binary
        self.servers: list[PrometheusServer] = []

    def __call__(
        self,
        *jobs: ScrapeJob,
        rule_files: Mapping[str, RuleFile] | None = None,
        alertmanagers: Sequence[str] = (),
        scrape_interval: str = "1s",
        evaluation_interval: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> PrometheusServer:
        name = "prometheus" if not self.servers else f"prometheus-{len(self.servers)}"
        server = PrometheusServer(
            self.workdir,
            binary=self.binary,
            jobs=jobs,
            rule_files=rule_files,
            alertmanagers=alertmanagers,
            scrape_interval=scrape_interval,
            evaluation_interval=evaluation_interval,
            extra_args=extra_args,
            name=name,
        )
        self.servers.append(server)
        return server.start()

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()

    def log_tails(self, lines: int = 40) -> list[tuple[str, str]]:
        return [tail for server in self.servers for tail in server.log_tails(lines)]


@pytest.fixture
def openai_stub(tmp_path: Path) -> Iterator[OpenAIStub]:
    """A fresh OpenAI-compatible upstream per test: empty fault script, no recorded requests."""
    with OpenAIStub(log_path=tmp_path / "openai-stub.log") as stub:
        yield stub


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[RedisFactory]:
    factory = RedisFactory(tmp_path, require_binary("redis-server", "redis-server"))
    yield factory
    factory.stop_all()


@pytest.fixture
def redis_server(redis_factory: RedisFactory) -> RedisServer:
    """An ephemeral Redis (no RDB, no AOF) for one test."""
    return redis_factory()


@pytest.fixture(scope="session")
def redis_server_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisServer]:
    """One ephemeral Redis shared by the session: cheaper, so tests must use their own keys."""
    binary = require_binary("redis-server", "redis-server")
    server = RedisServer(tmp_path_factory.mktemp("redis-session"), binary=binary)
    with server:
        yield server


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[PrometheusFactory]:
    """Factory: `prometheus_server(ScrapeJob("svc", ["127.0.0.1:PORT"]), rule_files=...)`."""
    factory = PrometheusFactory(tmp_path, require_binary("prometheus", "prometheus"))
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log() -> Iterator[None]:
    """After the last test: no log line any genesis process wrote holds a secret."""
    yield
    leaks = WATCH.leaks()
    assert not leaks, f"{len(leaks)} secret(s) in genesis logs:\n" + "\n".join(
        str(leak) for leak in leaks[:20]
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        # A server reached through two fixtures (redis_server and redis_factory) shows once.
        seen: set[str] = set()
        for value in funcargs.values():
            log_tails = getattr(value, "log_tails", None)
            if not callable(log_tails):
                continue
            for server, tail in log_tails():
                if server not in seen:
                    seen.add(server)
                    report.sections.append((f"{server} log tail", tail))
    return report
