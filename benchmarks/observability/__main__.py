"""Instrumentation cost: `python -m benchmarks.observability [--requests N] [--series N]`.

1. Throughput of a minimal Quart app with and without `Metrics`, driven through its real ASGI
   entry point in-process, so the network and the client do not hide the cost: the loss shown is
   the worst case; behind a real server the share is smaller.
2. Time to render a /metrics scrape with 10,000 series, single-process and multi-process
   (two worker files merged, as the supervisor does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from quart import Quart

from genesis.observability import Metrics


def make_app(instrumented: bool) -> Quart:
    app = Quart("bench")

    @app.get("/items/<int:item_id>")
    async def item(item_id: int) -> str:
        return "ok"

    if instrumented:
        Metrics(app, registry=CollectorRegistry())
    return app


async def drive(app: Quart, requests: int) -> float:
    """Requests per second through app(scope, receive, send)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    started = time.perf_counter()
    for n in range(requests):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": f"/items/{n}",
            "raw_path": f"/items/{n}".encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "extensions": {},
        }
        await app(scope, receive, send)
    return requests / (time.perf_counter() - started)


def throughput(requests: int, rounds: int) -> tuple[float, float]:
    plain, instrumented = make_app(False), make_app(True)
    asyncio.run(drive(plain, 500))  # warm-up
    asyncio.run(drive(instrumented, 500))
    off: list[float] = []
    on: list[float] = []
    for _ in range(rounds):  # interleaved so drift in machine load hits both alike
        off.append(asyncio.run(drive(plain, requests)))
        on.append(asyncio.run(drive(instrumented, requests)))
    return statistics.median(off), statistics.median(on)


def scrape_single(series: int, rounds: int) -> float:
    registry = CollectorRegistry()
    counter = Counter("bench_requests_total", "bench", ("route", "status"), registry=registry)
    for n in range(series):
        counter.labels(route=f"/r{n // 10}", status=str(200 + n % 10)).inc()
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        generate_latest(registry)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


WRITER = """
import sys
from prometheus_client import Counter
series, offset = int(sys.argv[1]), int(sys.argv[2])
counter = Counter("bench_requests_total", "bench", ("route", "status"))
for n in range(offset, offset + series):
    counter.labels(route=f"/r{n // 10}", status=str(200 + n % 10)).inc()
"""


def scrape_multiprocess(series: int, rounds: int) -> float:
    from genesis.observability import prepare_multiprocess_dir, scrape_registry

    with tempfile.TemporaryDirectory() as directory:
        previous = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        prepare_multiprocess_dir(directory)
        try:
            half = series // 2
            for offset in (0, half):  # two workers, each with half of the series
                subprocess.run([sys.executable, "-c", WRITER, str(half), str(offset)], check=True)
            registry = scrape_registry()
            timings = []
            for _ in range(rounds):
                started = time.perf_counter()
                generate_latest(registry)
                timings.append(time.perf_counter() - started)
        finally:
            if previous is None:
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            else:
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = previous
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--series", type=int, default=10_000)
    args = parser.parse_args()

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    off, on = throughput(args.requests, args.rounds)
    loss = 1 - on / off
    print(f"throughput, uninstrumented: {off:,.0f} req/s")
    print(f"throughput, instrumented:   {on:,.0f} req/s")
    print(f"loss: {loss:.1%} (budget 5%); cost per request: {1e6 / on - 1e6 / off:.1f} us")
    single = scrape_single(args.series, args.rounds)
    multi = scrape_multiprocess(args.series, args.rounds)
    print(f"/metrics render, {args.series:,} series, single-process: {single * 1000:.1f} ms")
    print(f"/metrics render, {args.series:,} series, two workers merged: {multi * 1000:.1f} ms")
    print("budget: 50 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
