"""The synthetic-traffic driver: hard caps refused by name, real requests to a real server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from genesis.gate.traffic import (
    MAX_DURATION,
    MAX_IN_FLIGHT,
    MAX_RATE,
    TrafficDriver,
    TrafficError,
    traffic_plan,
)


@pytest.mark.parametrize(
    ("urls", "rate", "duration", "message"),
    [
        ([], 1, 1, "at least one target"),
        (["127.0.0.1:8000"], 1, 1, "not an http"),
        (["http://127.0.0.1:8000"], MAX_RATE + 1, 1, "at most 100 requests/s"),
        (["http://127.0.0.1:8000"], 0, 1, "above 0"),
        (["http://127.0.0.1:8000"], 1, MAX_DURATION + 1, "at most 3600s"),
        (["http://127.0.0.1:8000"], 1, float("inf"), "duration"),
    ],
)
def test_caps_are_refused_not_clamped(
    urls: list[str], rate: float, duration: float, message: str
) -> None:
    with pytest.raises(TrafficError, match=message):
        traffic_plan(urls, rate, duration)


def test_plan_details() -> None:
    plan = traffic_plan(["http://127.0.0.1:1/a", "https://example.org/b"], 2, 3, body=b"{}")
    assert plan.method == "POST"
    assert plan.remote == ("https://example.org/b",)
    assert traffic_plan(["http://localhost:1/"], 1, 1).method == "GET"
    with pytest.raises(TrafficError, match="timeout"):
        traffic_plan(["http://localhost:1/"], 1, 1, timeout=0)


class _Server:
    def __init__(self, delay: float = 0.0, status: int = 200) -> None:
        self.hits = 0
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                with owner.lock:
                    owner.hits += 1
                    owner.bodies.append(self.rfile.read(length))
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                return None

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1/models"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    one = _Server()
    yield one
    one.close()


def test_sends_at_the_rate_for_the_duration_then_stops(server: _Server) -> None:
    started = time.monotonic()
    with TrafficDriver(traffic_plan([server.url], 20, 1.0)) as driver:
        while driver._thread is not None and driver._thread.is_alive():
            time.sleep(0.05)
    elapsed = time.monotonic() - started
    stats = driver.stats[server.url]
    # Bounded by construction: one request per tick, ticks 1/rate apart within the duration.
    assert 1 <= stats.sent <= 20
    assert stats.sent <= 20 * elapsed + 1
    assert stats.ok == stats.sent == server.hits
    summary = driver.summary()
    assert summary["targets"][server.url]["statuses"] == {"200": stats.sent}
    assert summary["method"] == "GET"


def test_posts_a_body_and_counts_failures_and_refusals(tmp_path: object) -> None:
    failing = _Server(status=500)
    nowhere = "http://127.0.0.1:9/"  # discard port: nothing listens there
    try:
        plan = traffic_plan([failing.url, nowhere], 20, 0.5, body=b'{"x": 1}', timeout=1)
        with TrafficDriver(plan) as driver:
            time.sleep(0.6)
        assert driver.stats[failing.url].failed == driver.stats[failing.url].sent > 0
        assert failing.bodies[0] == b'{"x": 1}'
        assert driver.stats[nowhere].errors == driver.stats[nowhere].sent > 0
    finally:
        failing.close()


def test_a_slow_target_gets_no_pile_up() -> None:
    slow = _Server(delay=2.0)
    try:
        with TrafficDriver(traffic_plan([slow.url], 100, 1.0, timeout=5)) as driver:
            time.sleep(1.1)
        stats = driver.stats[slow.url]
        assert stats.sent <= MAX_IN_FLIGHT
        assert stats.skipped > 0
    finally:
        slow.close()


def test_started_once_and_stopped_early(server: _Server) -> None:
    driver = TrafficDriver(traffic_plan([server.url], 5, 60)).start()
    with pytest.raises(RuntimeError, match="started already"):
        driver.start()
    driver.stop()
    assert driver.stats[server.url].sent <= 2
    assert driver.summary()["elapsed"] < 60
