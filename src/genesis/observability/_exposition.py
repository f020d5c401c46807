"""Serving /metrics on its own port, in single-process or multi-process (Hypercorn workers) mode.

In multi-process mode every worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR and
the supervisor merges them when scraped. prometheus-client decides the mode when it is first
imported, from that environment variable, so the supervisor must call
`prepare_multiprocess_dir` before it starts any worker.
"""

from __future__ import annotations

import gzip
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app, multiprocess
from prometheus_client.exposition import (
    CONTENT_TYPE_PLAIN_0_0_4,
    ThreadingWSGIServer,
    gzip_accepted,
)
from prometheus_client.registry import Collector

from genesis.observability._multiprocess import MultiProcessFiles
from genesis.observability._text_format import render_text

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Prometheus asks for gzip on every scrape. prometheus-client compresses at level 9, 20 ms for
# the 1 MB of 10,000 series here; level 1 takes 1.7 ms for 49 KB instead of 39 KB
# (docs/benchmarks.md), and a scrape's size hardly matters next to its time.
GZIP_LEVEL = 1


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
    # MultiProcessCollector's merge, with what each key says parsed once (_multiprocess.py).
    registry.register(MultiProcessFiles(str(directory)))
    return registry


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _accepts_text_format(accept: str | None) -> bool:
    """Whether the text format (0.0.4) is an answer the client takes.

    Prometheus lists OpenMetrics first and `text/plain;version=0.0.4` after it; it parses by
    the response's Content-Type, so the faster text renderer may answer it. A client that
    accepts OpenMetrics only gets prometheus-client's own OpenMetrics output.
    """
    if not accept:
        return True
    kinds = {part.split(";")[0].strip() for part in accept.split(",")}
    return (
        bool(kinds & {"text/plain", "*/*", "text/*"}) or "application/openmetrics-text" not in kinds
    )


def metrics_app(registry: Collector) -> WSGIApp:
    """A WSGI /metrics app: the cached text renderer for scrapes, prometheus-client for the rest.

    prometheus-client's app still answers what the fast path does not cover: other methods,
    `name[]` filters, and clients that take only OpenMetrics.
    """
    fallback = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if (
            environ.get("REQUEST_METHOD") != "GET"
            or environ.get("PATH_INFO") == "/favicon.ico"
            or "name[]" in environ.get("QUERY_STRING", "")
            or not _accepts_text_format(environ.get("HTTP_ACCEPT"))
        ):
            answer: Iterable[bytes] = fallback(environ, start_response)
            return answer
        output = render_text(registry)
        headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            output = gzip.compress(output, compresslevel=GZIP_LEVEL)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [output]

    return app


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape on stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        return


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
    server = make_server(
        host, port, metrics_app(scrape_registry()), ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="genesis-metrics", daemon=True)
    thread.start()
    return MetricsServer(host=host, port=server.server_address[1], _server=server, _thread=thread)
