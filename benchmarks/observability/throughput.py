"""Throughput with instrumentation on and off, driven through the app's ASGI entry in-process.

No server and no client sit in between, so nothing hides the cost: the share measured here is
an upper bound on what a real deployment loses (behind Hypercorn and a network, each request
costs more and the same microseconds weigh less).

"Off" is the same service with `Metrics` replaced by a stand-in that does nothing: the routes
still call `metrics.genai.operation(...)`, only no sample is recorded and no middleware or
before-request hook is installed.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from unittest import mock

from prometheus_client import CollectorRegistry
from quart import Quart

from genesis.observability import Metrics

Scope = dict[str, Any]


class _NoOperation:
    async def __aenter__(self) -> _NoOperation:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def first_chunk(self) -> None:
        return None

    def usage(self, *, input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        return None

    def fail(self, error_type: str) -> None:
        return None


class _NoGenAI:
    def operation(self, *, operation: str, provider: str, model: str) -> _NoOperation:
        return _NoOperation()


class Uninstrumented:
    """`Metrics`' shape without its work: what the service would be without observability."""

    def __init__(self, app: Quart | None = None, **_: object) -> None:
        self.genai = _NoGenAI()
        self.service = _NoServiceMetrics()


class _NoServiceMetrics:
    """Every service event (cache_hit, upstream_retry, ...) accepted and dropped."""

    def __getattr__(self, _event: str) -> Callable[..., None]:
        return lambda *_args, **_kwargs: None


@dataclass(frozen=True)
class Load:
    """One request the driver repeats: method, path, JSON body (or none)."""

    method: str
    path: str
    body: bytes = b""


def _scope(load: Load, n: int) -> Scope:
    path = load.path.replace("{n}", str(n))
    headers = [(b"host", b"bench")]
    if load.body:
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(load.body)).encode()),
        ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": load.method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "extensions": {},
    }


def _receiver(body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
    """The body once, then nothing until the app is done, as a server's receive() behaves.

    Answering every call at once would never suspend, and Quart's message reader would spin
    instead of letting the handler run.
    """
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # cancelled by Quart once the response is sent
        raise AssertionError("unreachable")

    return receive


@dataclass(frozen=True)
class Rate:
    """Requests per second of wall-clock time, and per second of this process's CPU time.

    On a shared machine the wall clock also counts time the process waited for a core; CPU
    time does not, so on/off ratios over CPU time are the steadier measure of the cost.
    """

    wall: float
    cpu: float


async def _drive(app: Quart, loads: list[Load], requests: int) -> Rate:
    """Throughput of app(scope, receive, send), cycling through `loads`."""
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started, cpu_started = time.perf_counter(), time.process_time()
    asgi: Any = app  # plain dicts in, as a server would send; Quart's TypedDicts are stricter
    for n in range(requests):
        load = loads[n % len(loads)]
        await asgi(_scope(load, n), _receiver(load.body), send)
    cpu = time.process_time() - cpu_started
    elapsed = time.perf_counter() - started
    bad = [status for status in statuses if status >= 400]
    if bad:  # a benchmark of error pages would measure the wrong thing
        raise RuntimeError(f"{len(bad)} requests failed, e.g. status {bad[0]}")
    return Rate(wall=requests / elapsed, cpu=requests / cpu)


def minimal_app(instrumented: bool) -> Quart:
    """An empty handler: the instrumentation is nearly all the work, the worst case."""
    app = Quart("bench")

    @app.get("/items/<int:item_id>")
    async def item(item_id: int) -> str:
        return "ok"

    if instrumented:
        Metrics(app, registry=CollectorRegistry())
    return app


MINIMAL_LOAD = [Load("GET", "/items/{n}")]


def genesis_app(instrumented: bool) -> Quart:
    """genesis' chat service with the offline provider, exactly as `genesis serve` builds it."""
    from genesis.observability.logs import configure_logging
    from genesis.service import app as service_app
    from genesis.service.settings import Settings

    # The request log line would cost both sides the same and flood the terminal: this
    # measures metrics, so logging stays at warnings (benchmarks/service measures it all).
    configure_logging("warning", "json")
    settings = Settings(_env_file=None)
    if instrumented:
        return service_app.create_app(settings)
    with mock.patch.object(service_app, "Metrics", Uninstrumented):
        return service_app.create_app(settings)


def _chat(stream: bool) -> bytes:
    return json.dumps(
        {
            "model": "genesis-offline-demo",
            "messages": [{"role": "user", "content": "How do canary deploys work?"}],
            "stream": stream,
        }
    ).encode()


# Half plain completions, half streamed (SSE), as chat clients mostly stream.
GENESIS_LOAD = [
    Load("POST", "/v1/chat/completions", _chat(stream=False)),
    Load("POST", "/v1/chat/completions", _chat(stream=True)),
]


@dataclass(frozen=True)
class Comparison:
    name: str
    off: list[Rate]  # one per round
    on: list[Rate]
    requests: int

    def median(self, side: str, clock: str) -> float:
        return float(statistics.median(getattr(rate, clock) for rate in getattr(self, side)))

    def ratios(self, clock: str) -> list[float]:
        """on/off per round: both halves of a round ran back to back, under the same noise."""
        return [
            getattr(on, clock) / getattr(off, clock)
            for on, off in zip(self.on, self.off, strict=True)
        ]

    def loss(self, clock: str) -> float:
        return 1 - statistics.median(self.ratios(clock))

    def cost_us(self, clock: str) -> float:
        """Extra microseconds per request, from the medians."""
        return 1e6 / self.median("on", clock) - 1e6 / self.median("off", clock)


def compare(
    name: str,
    build: Callable[[bool], Quart],
    loads: list[Load],
    requests: int,
    rounds: int,
) -> Comparison:
    async def run() -> Comparison:
        plain, instrumented = build(False), build(True)
        for app in (plain, instrumented):
            await app.startup()
        try:
            for app in (plain, instrumented):  # warm-up: imports, caches, JIT-free but lazy bits
                await _drive(app, loads, min(500, requests))
            off: list[Rate] = []
            on: list[Rate] = []
            for n in range(rounds):
                # Alternate which goes first, so a load change mid-round hits both alike.
                order = [(plain, off), (instrumented, on)]
                for app, results in order if n % 2 == 0 else reversed(order):
                    results.append(await _drive(app, loads, requests))
            return Comparison(name, off, on, requests)
        finally:
            for app in (plain, instrumented):
                await app.shutdown()

    return asyncio.run(run())
