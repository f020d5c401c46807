"""Run the real `genesis worker` as a subprocess; ready once its /metrics answers."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from harness.processes import ManagedProcess, free_port, http_ok
from harness.secrets import WATCH


class GenesisWorker(ManagedProcess):
    """`python -m genesis worker` with `GENESIS_*` settings (GENESIS_REDIS_URL among them)."""

    def __init__(
        self, log_dir: Path, settings: Mapping[str, str] | None = None, *, name: str = "worker"
    ) -> None:
        self.metrics_port = free_port()
        env = {
            "GENESIS_METRICS_PORT": str(self.metrics_port),
            "GENESIS_LOG_FORMAT": "json",
            **dict(settings or {}),
        }
        super().__init__(
            name, [sys.executable, "-m", "genesis", "worker"], log_dir=log_dir, env=env, cwd=log_dir
        )
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        # A worker's log is scanned for secrets like a server's: it sees the upstream key too.
        WATCH.watch(self.log_path, env)

    def ready(self) -> bool:
        return http_ok(self.metrics_url)

    def log_tails(self, lines: int = 40) -> list[tuple[str, str]]:
        return [(self.name, self.log_tail(lines))]


WorkerFactory = Callable[..., GenesisWorker]


@contextmanager
def genesis_workers(log_dir: Path) -> Iterator[WorkerFactory]:
    """A factory of ready workers; every one still running is stopped afterwards."""
    started: list[GenesisWorker] = []

    def start(settings: Mapping[str, str] | None = None, *, timeout: float = 30.0) -> GenesisWorker:
        worker = GenesisWorker(log_dir, settings, name=f"worker-{len(started)}")
        started.append(worker)
        worker.start()
        worker.wait_ready(worker.ready, timeout=timeout)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop(grace=15)
