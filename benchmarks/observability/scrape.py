"""How long a /metrics scrape takes with about N series, over HTTP from the real endpoint.

Series are real genesis instruments (`http_requests_total` and the `http_request_duration_seconds`
histogram, one route after another) filled until the exposition holds N sample lines, i.e. N
series once Prometheus ingests it. Each measurement runs in a fresh child process, because
prometheus-client picks single- or multi-process mode once, at import.

`python -m benchmarks.observability.scrape single|multi SERIES ROUNDS` prints one JSON line.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATUSES = ("200", "404", "500")


def fill(routes: range) -> None:
    """Series for `routes` in this process's default registry, the way requests would add them."""
    from genesis.observability import Metrics

    instruments = Metrics(track="stable", version="1.0.0", revision="bench").instruments
    for n in routes:
        route = f"/v1/bench/route-{n}"
        for status in STATUSES:
            instruments.http_requests.labels(
                method="GET", route=route, status=status, track="stable"
            ).inc()
        instruments.http_duration.labels(method="GET", route=route, track="stable").observe(0.05)


def nudge(routes: range, rng: random.Random) -> None:
    """A new, distinct value for every series `fill(routes)` made: what a busy service's next
    scrape sees, where nothing from the last scrape's values can be reused."""
    from genesis.observability import Metrics

    instruments = Metrics(track="stable", version="1.0.0", revision="bench").instruments
    for n in routes:
        route = f"/v1/bench/route-{n}"
        for status in STATUSES:
            instruments.http_requests.labels(
                method="GET", route=route, status=status, track="stable"
            ).inc(rng.random())
        duration = instruments.http_duration.labels(method="GET", route=route, track="stable")
        for _ in range(3):
            duration.observe(rng.expovariate(4))


def nudge_files(directory: str, rng: random.Random) -> None:
    """The same for the workers' files: every value in every file moves by a random amount."""
    from prometheus_client.mmap_dict import MmapedDict

    for path in Path(directory).glob("*.db"):
        values = MmapedDict(str(path))  # type: ignore[no-untyped-call]
        for key, value, timestamp in list(values.read_all_values()):  # type: ignore[no-untyped-call]
            values.write_value(key, value + rng.random(), timestamp)  # type: ignore[no-untyped-call]
        values.close()  # type: ignore[no-untyped-call]


def series_in(exposition: bytes) -> int:
    return sum(1 for line in exposition.splitlines() if line and not line.startswith(b"#"))


Timings = dict[str, list[float]]


def _time_scrapes(
    url: str, rounds: int, between: Callable[[], None] | None = None, gzipped: bool = False
) -> tuple[Timings, int]:
    """Wall-clock and CPU seconds per scrape; the server thread and the client share this
    process, so its CPU time is the scrape's (plus a small client share). `between` runs
    before each scrape, untimed; `gzipped` asks for gzip, as Prometheus does (the client's
    decompression is in the time too)."""
    timings: Timings = {"wall": [], "cpu": []}
    body = b""
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    for n in range(rounds + 1):
        if between is not None:
            between()
        started, cpu_started = time.perf_counter(), time.process_time()
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            if gzipped:
                body = gzip.decompress(body)
        if n:  # the first scrape warms the code path up
            timings["cpu"].append(time.process_time() - cpu_started)
            timings["wall"].append(time.perf_counter() - started)
    return timings, series_in(body)


def _render_only(rounds: int, between: Callable[[], None]) -> dict[str, Timings]:
    """Rendering alone, genesis' renderer and prometheus-client's, interleaved; `between`
    changes every value before each round (untimed), so neither reuses a formatted value."""
    from prometheus_client import generate_latest

    from genesis.observability import scrape_registry
    from genesis.observability._text_format import render_text

    registry = scrape_registry()
    renderers = {"render": render_text, "render_prometheus_client": generate_latest}
    timings: dict[str, Timings] = {name: {"wall": [], "cpu": []} for name in renderers}
    for _ in range(rounds):
        between()
        for name, render in renderers.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            render(registry)
            timings[name]["cpu"].append(time.process_time() - cpu_started)
            timings[name]["wall"].append(time.perf_counter() - started)
    return timings


def _single(target: int, rounds: int) -> dict[str, Any]:
    from prometheus_client import REGISTRY, generate_latest

    from genesis.observability import start_metrics_server

    fill(range(0))  # the families and build info, before any route
    base = series_in(generate_latest(REGISTRY))
    fill(range(1))
    per_route = series_in(generate_latest(REGISTRY)) - base
    routes = math.ceil((target - base) / per_route)
    fill(range(1, routes))
    server = start_metrics_server("127.0.0.1", 0)
    rng = random.Random(1)
    try:
        http, series = _time_scrapes(server.url, rounds)
        gzipped, _ = _time_scrapes(server.url, rounds, gzipped=True)
        changing, _ = _time_scrapes(server.url, rounds, lambda: nudge(range(routes), rng))
    finally:
        server.close()
    renders = _render_only(rounds, lambda: nudge(range(routes), rng))
    return {
        "http": http,
        "http_gzip": gzipped,
        "http_changing": changing,
        **renders,
        "series": series,
    }


_WRITER = (
    "import sys; from benchmarks.observability.scrape import fill; "
    "fill(range(*map(int, sys.argv[1:])))"
)


def _write(start: int, stop: int) -> None:
    """One worker process adds routes [start, stop) to the shared multi-process directory."""
    subprocess.run([sys.executable, "-c", _WRITER, str(start), str(stop)], check=True)


def _multi(target: int, rounds: int) -> dict[str, Any]:
    from genesis.observability import prepare_multiprocess_dir, start_metrics_server

    with tempfile.TemporaryDirectory() as directory:
        prepare_multiprocess_dir(directory)
        server = start_metrics_server("127.0.0.1", 0)
        try:
            # Calibrate: what one worker without routes shows, then what one route adds.
            _write(0, 0)
            base = series_in(urllib.request.urlopen(server.url, timeout=30).read())
            _write(0, 1)
            per_route = series_in(urllib.request.urlopen(server.url, timeout=30).read()) - base
            prepare_multiprocess_dir(directory)
            routes = math.ceil((target - base) / per_route)
            # Two workers, each with half of the routes, merged on every scrape as in genesis serve.
            _write(0, routes // 2)
            _write(routes // 2, routes)
            http, series = _time_scrapes(server.url, rounds)
            gzipped, _ = _time_scrapes(server.url, rounds, gzipped=True)
            rng = random.Random(1)
            changing, _ = _time_scrapes(server.url, rounds, lambda: nudge_files(directory, rng))
            renders = _render_only(rounds, lambda: nudge_files(directory, rng))
        finally:
            server.close()
        return {
            "http": http,
            "http_gzip": gzipped,
            "http_changing": changing,
            **renders,
            "series": series,
        }


@dataclass(frozen=True)
class ScrapeResult:
    mode: str
    series: int
    http: Timings  # seconds per scrape over HTTP, by clock ("wall", "cpu")
    http_gzip: Timings  # the same with Accept-Encoding: gzip, as Prometheus scrapes
    http_changing: Timings  # plain, when every series' value changed since the last scrape
    render: Timings  # seconds to render the exposition alone, with genesis' renderer
    render_prometheus_client: Timings  # the same with prometheus-client's generate_latest

    def ms(self, what: str, clock: str) -> float:
        timings: Timings = getattr(self, what)
        return statistics.median(timings[clock]) * 1000


def measure(mode: str, series: int, rounds: int) -> ScrapeResult:
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.observability.scrape", mode, str(series), str(rounds)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return ScrapeResult(
        mode,
        data["series"],
        data["http"],
        data["http_gzip"],
        data["http_changing"],
        data["render"],
        data["render_prometheus_client"],
    )


def main(argv: list[str]) -> int:
    mode, target, rounds = argv[0], int(argv[1]), int(argv[2])
    result = _single(target, rounds) if mode == "single" else _multi(target, rounds)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
