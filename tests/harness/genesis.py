"""Run the real `genesis serve` as a subprocess on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from harness.processes import ManagedProcess, free_port, http_ok
from harness.secrets import WATCH


class GenesisServer(ManagedProcess):
    """`python -m genesis serve` with `GENESIS_*` settings; `.url` is its base URL."""

    def __init__(
        self,
        log_dir: Path,
        settings: Mapping[str, str] | None = None,
        *,
        args: tuple[str, ...] = (),
        name: str = "genesis",
        port: int | None = None,
        metrics_port: int | None = None,
    ) -> None:
        # Fixed ports let a test restart "the same instance" (a rollback) under one scrape target.
        self.port = port or free_port()
        self.metrics_port = metrics_port or free_port()
        env = {
            "GENESIS_PORT": str(self.port),
            "GENESIS_METRICS_PORT": str(self.metrics_port),
            "GENESIS_LOG_FORMAT": "json",
            # Tests must not pick up a developer's .env files.
            **dict(settings or {}),
        }
        super().__init__(
            name,
            [sys.executable, "-m", "genesis", "serve", *args],
            log_dir=log_dir,
            env=env,
            cwd=log_dir,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        # Every log of every genesis process is scanned for secrets at the end of the run.
        WATCH.watch(self.log_path, env)
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"

    def ready(self) -> bool:
        return http_ok(f"{self.url}/readyz")


GenesisFactory = Callable[..., GenesisServer]


def serve_to_exit(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`genesis serve` that is expected to refuse to start: its exit code and output.

    `env` replaces the environment (None: inherit this one); 60 s at most."""
    return subprocess.run(
        [sys.executable, "-m", "genesis", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@contextmanager
def genesis_servers(log_dir: Path) -> Iterator[GenesisFactory]:
    """A factory that starts ready servers and stops every one of them afterwards."""
    started: list[GenesisServer] = []

    def start(
        settings: Mapping[str, str] | None = None,
        *,
        args: tuple[str, ...] = (),
        wait: bool = True,
        timeout: float = 30.0,
        port: int | None = None,
        metrics_port: int | None = None,
    ) -> GenesisServer:
        server = GenesisServer(
            log_dir,
            settings,
            args=args,
            name=f"genesis-{len(started)}",
            port=port,
            metrics_port=metrics_port,
        )
        started.append(server)
        server.start()
        if wait:
            server.wait_ready(server.ready, timeout=timeout)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop(grace=15)
