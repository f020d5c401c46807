"""Run the chat service under Hypercorn: one process, or a supervisor with N workers.

Why not `hypercorn.run.run`: genesis needs its own shutdown sequence in every worker
(report not-ready, keep serving for `drain_seconds`, then stop accepting and give
in-flight requests `grace_seconds`), and later a supervisor-owned metrics endpoint.
Workers share the listening sockets the supervisor created, as Hypercorn's own do.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event as EventType
from typing import TextIO

import structlog
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app

from genesis.observability import (
    MetricsServer,
    mark_worker_dead,
    prepare_multiprocess_dir,
    start_metrics_server,
)
from genesis.observability.logs import configure_logging
from genesis.service.app import create_app
from genesis.service.settings import Settings
from genesis.service.state import service_state

log = structlog.get_logger("genesis.server")

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# After drain + grace, a worker gives Quart's shutdown (after_serving, background tasks) this
# long before it stops itself; the supervisor kills a worker only later (SUPERVISOR_MARGIN).
HARD_STOP_MARGIN = 3.0
SUPERVISOR_MARGIN = 5.0


class ListenError(Exception):
    """An address genesis was told to listen on cannot be bound."""

    def __init__(self, what: str, host: str, port: int, error: OSError) -> None:
        super().__init__(f"cannot listen on {host}:{port} ({what}): {error.strerror or error}")


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.workers = settings.workers
    config.graceful_timeout = settings.grace_seconds
    config.accesslog = None
    # Hypercorn's own "Running on..." lines would duplicate genesis' start-up line.
    config.loglevel = "WARNING"
    return config


def public_url(settings: Settings) -> str:
    host = settings.host
    if ":" in host:
        host = f"[{host}]"
    if host in ("0.0.0.0", "[::]"):  # noqa: S104 - formatting, not binding
        host = "127.0.0.1"
    return f"http://{host}:{settings.port}"


async def _serve(
    settings: Settings, config: Config, sockets: Sockets, shared: EventType | None
) -> None:
    app = create_app(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # A worker also stops on its own SIGTERM (a process-group kill), not only on the event.
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if shared is None:
        loop.add_signal_handler(signal.SIGINT, stop.set)

    async def watch_supervisor() -> None:
        assert shared is not None
        # A multiprocessing Event cannot be awaited; waiting for it in a thread would
        # keep asyncio.run from returning when the worker stops for another reason.
        while not shared.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        stop.set()

    watcher = loop.create_task(watch_supervisor()) if shared is not None else None

    async def shutdown_trigger() -> None:
        await stop.wait()
        service_state(app).readiness.begin_drain()
        log.info(
            "draining", drain_seconds=settings.drain_seconds, grace_seconds=settings.grace_seconds
        )
        await asyncio.sleep(settings.drain_seconds)
        log.info("listener closing; in-flight requests have the grace period to finish")

    serving = asyncio.ensure_future(
        worker_serve(
            wrap_app(app, config.wsgi_max_body_size, "asgi"),
            config,
            sockets=sockets,
            shutdown_trigger=shutdown_trigger,
        )
    )

    async def enforce_grace() -> None:
        # Hypercorn bounds in-flight work by graceful_timeout, but on Python >= 3.12.1 it
        # first awaits Server.wait_closed(), which waits for every connection: one stuck
        # client would hold the process past any grace. This is the bound that always holds.
        await stop.wait()
        await asyncio.sleep(settings.drain_seconds + settings.grace_seconds + HARD_STOP_MARGIN)
        log.error("requests outlived the grace period; stopping anyway")
        serving.cancel()

    enforcer = loop.create_task(enforce_grace())
    try:
        await serving
    except asyncio.CancelledError:
        if not enforcer.done():
            raise
    finally:
        enforcer.cancel()
        if watcher is not None:
            watcher.cancel()
    log.info("stopped")


def _worker(settings: Settings, config: Config, sockets: Sockets, shared: EventType | None) -> None:
    if shared is not None:
        # Ctrl-C reaches the whole process group; the supervisor decides for everyone.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(_serve(settings, config, sockets, shared))


def _supervise(settings: Settings, config: Config, sockets: Sockets) -> int:
    ctx = multiprocessing.get_context("spawn")
    shared = ctx.Event()
    for signum in _STOP_SIGNALS:
        signal.signal(signum, lambda _signum, _frame: shared.set())

    workers = [
        ctx.Process(target=_worker, args=(settings, config, sockets, shared))
        for _ in range(settings.workers)
    ]
    for process in workers:
        process.start()

    exit_code = 0
    stop_deadline: float | None = None
    marked: set[int] = set()
    while any(process.is_alive() for process in workers):
        for process in workers:
            if process.exitcode is not None and process.pid and process.pid not in marked:
                # Its live gauges (in-flight requests) must stop counting in the merged view.
                mark_worker_dead(process.pid)
                marked.add(process.pid)
        crashed = [p for p in workers if p.exitcode not in (None, 0)]
        if crashed and not shared.is_set():
            # A worker that dies on its own takes the service down: restarting is the
            # orchestrator's call (a pod restart), not a silent respawn in here.
            log.error("worker died", pid=crashed[0].pid, exit_code=crashed[0].exitcode)
            exit_code = 1
            shared.set()
        if shared.is_set() and stop_deadline is None:
            stop_deadline = (
                time.monotonic() + settings.drain_seconds + settings.grace_seconds
            ) + SUPERVISOR_MARGIN
        if stop_deadline is not None and time.monotonic() > stop_deadline:
            for process in workers:
                if process.is_alive():
                    log.error("worker did not stop in time; killing it", pid=process.pid)
                    process.kill()
                    exit_code = 1
        time.sleep(0.1)
    for process in workers:
        process.join()
    return exit_code


@contextmanager
def _metrics_endpoint(settings: Settings) -> Iterator[MetricsServer | None]:
    """/metrics on its own port, served by this (the supervisor's) process.

    With several workers, prometheus-client's multiprocess mode merges the samples every
    worker writes to a per-run directory; the directory must exist, empty, before any worker
    imports prometheus-client, so it is made here, first.
    """
    if not settings.metrics_port:
        yield None
        return
    run_dir = None
    if settings.workers > 1:
        run_dir = tempfile.mkdtemp(prefix="genesis-metrics-")
        prepare_multiprocess_dir(run_dir)
    try:
        server = start_metrics_server(settings.metrics_host, settings.metrics_port)
    except OSError as error:
        raise ListenError("metrics", settings.metrics_host, settings.metrics_port, error) from error
    try:
        yield server
    finally:
        server.close()
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)


def run_server(settings: Settings, out: TextIO = sys.stdout) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code."""
    configure_logging(settings.log_level, settings.log_format)
    config = hypercorn_config(settings)
    try:
        sockets = config.create_sockets()
    except OSError as error:
        raise ListenError("API", settings.host, settings.port, error) from error
    try:
        with _metrics_endpoint(settings) as metrics:
            print(
                f"genesis serving on {public_url(settings)} "
                f"(provider={settings.provider}, model={settings.served_model}, "
                f"workers={settings.workers}, env={settings.env}"
                + (f", metrics={metrics.url}" if metrics else ", metrics off")
                + ")",
                file=out,
                flush=True,
            )
            return _serve_until_stopped(settings, config, sockets)
    finally:
        for sock in sockets.insecure_sockets:
            sock.close()


def _serve_until_stopped(settings: Settings, config: Config, sockets: Sockets) -> int:
    if settings.key_ring is None:
        log.warning(
            "authentication is off: /v1 answers anyone who can reach it",
            auth=settings.auth,
            host=settings.host,
            env=settings.env,
        )
    if settings.redis_url is None and (settings.rate_limit_rpm or settings.rate_limit_tpm):
        log.info("rate limits are counted in-process: correct for one instance only")
    if settings.redis_url is None and settings.conversation_ttl_seconds:
        log.info("conversations are kept in-process: correct for one instance only")
    if settings.faults_enabled:
        log.warning(
            "fault injection is on",
            fault_error_rate=settings.fault_error_rate,
            fault_latency_ms=settings.fault_latency_ms,
        )
    if settings.workers == 1:
        _worker(settings, config, sockets, None)
        return 0
    return _supervise(settings, config, sockets)
