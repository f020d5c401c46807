"""Serving /metrics on its own port, in single-process or multi-process (Hypercorn workers) mode.

In multi-process mode every worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR and
the supervisor merges them when scraped. prometheus-client decides the mode when it is first
imported, from that environment variable, so the supervisor must call
`prepare_multiprocess_dir` before it starts any worker.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path`, empty it of a previous run's samples and point workers at it.

    Leftover files would make counters of a previous run reappear, so the directory is cleaned
    at every start. Sets PROMETHEUS_MULTIPROC_DIR in this process's environment so that workers
    started afterwards inherit it.
    """
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"metrics directory {directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.db"):
        leftover.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def mark_worker_dead(pid: int) -> None:
    """Tell the collector that worker `pid` exited, so its live gauges stop counting."""
    directory = multiprocess_dir()
    if directory is None:
        raise RuntimeError(f"mark_worker_dead needs {MULTIPROC_ENV}; call prepare_multiprocess_dir")
    multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def scrape_registry() -> CollectorRegistry:
    """The registry /metrics should serve in this process's mode."""
    directory = multiprocess_dir()
    if directory is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


@dataclass
class MetricsServer:
    """A running /metrics endpoint; `close()` stops it."""

    host: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(host: str = "127.0.0.1", port: int = 0) -> MetricsServer:
    """Serve /metrics on `host:port` (0 picks a free port) in a background thread.

    Meant for the supervisor process: it never serves the app, so the metrics port stays off
    the public one.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"metrics port must be within 0-65535, got {port}")
    server, thread = start_http_server(port, addr=host, registry=scrape_registry())
    return MetricsServer(host=host, port=server.server_address[1], _server=server, _thread=thread)
