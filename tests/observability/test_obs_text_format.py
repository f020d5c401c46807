"""The cached text renderer writes exactly what prometheus-client writes, and /metrics serves it."""

from __future__ import annotations

import gzip
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.core import GaugeHistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from genesis.observability import _text_format
from genesis.observability._exposition import metrics_app
from genesis.observability._text_format import render_text

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


class _Odd(Collector):
    """Families the instruments never make: timestamps, untyped, a gauge histogram."""

    def collect(self) -> Iterator[Metric]:
        untyped = Metric("legacy_thing", "An untyped family.", "unknown")
        untyped.add_sample("legacy_thing", {"at": "x"}, 3.5, timestamp=1700000000.25)
        yield untyped
        histogram = GaugeHistogramMetricFamily("queue_wait", "Waits in a queue.", labels=["queue"])
        histogram.add_metric(["jobs"], [("1.0", 4.0), ("+Inf", 6.0)], gsum_value=9.5)
        yield histogram


def _every_kind() -> CollectorRegistry:
    registry = CollectorRegistry()
    requests = Counter(
        "requests", "Requests, with a \\ backslash\nand a newline.", ["route"], registry=registry
    )
    for route in ("/a", '/quote"d', "/back\\slash", "/new\nline", "/ünïcode"):
        requests.labels(route).inc(2)
    Counter("plain_events", "No labels.", registry=registry).inc()
    Gauge("temperature", "Degrees.", ["room"], registry=registry).labels("lab").set(-1.5e-7)
    latency = Histogram("latency_seconds", "Latency.", ["route"], registry=registry)
    latency.labels("/a").observe(0.3)
    latency.labels("/a").observe(float("inf"))
    Summary("sizes", "Sizes.", registry=registry).observe(1e9)
    Info("build", "Build.", registry=registry).info({"version": "1.2.3"})
    Enum("state", "State.", states=["up", "down"], registry=registry).state("down")
    registry.register(_Odd())
    return registry


def test_output_is_byte_for_byte_prometheus_clients() -> None:
    registry = _every_kind()
    assert render_text(registry) == generate_latest(registry)
    # A second scrape comes from the cache and must still carry the new values.
    Counter("late", "Added after the first scrape.", registry=registry).inc(7)
    assert render_text(registry) == generate_latest(registry)
    assert b"late_total 7.0\n" in render_text(registry)


def test_a_full_cache_is_emptied_and_the_output_stays_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_text_format, "_MAX_CACHED", 3)
    monkeypatch.setattr(_text_format, "_prefixes", {})
    registry = _every_kind()
    for _ in range(2):
        assert render_text(registry) == generate_latest(registry)
    assert len(_text_format._prefixes) <= 3


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def served() -> Iterator[tuple[str, CollectorRegistry]]:
    registry = _every_kind()
    server: WSGIServer = make_server("127.0.0.1", 0, metrics_app(registry), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics", registry
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str, **headers: str) -> tuple[str, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:  # loopback
        return str(response.status), dict(response.headers), response.read()


def test_prometheus_gets_the_text_format(served: tuple[str, CollectorRegistry]) -> None:
    url, registry = served
    status, headers, body = _get(url, Accept=PROMETHEUS_ACCEPT)
    assert status == "200"
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert body == generate_latest(registry)


def test_gzip_when_the_client_takes_it(served: tuple[str, CollectorRegistry]) -> None:
    url, registry = served
    _, headers, body = _get(url, **{"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == generate_latest(registry)


def test_openmetrics_only_clients_get_openmetrics(served: tuple[str, CollectorRegistry]) -> None:
    url, _ = served
    _, headers, body = _get(url, Accept="application/openmetrics-text;version=1.0.0")
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_name_filters_and_other_methods_go_to_prometheus_client(
    served: tuple[str, CollectorRegistry],
) -> None:
    url, _ = served
    _, _, body = _get(url + "?name[]=temperature")
    assert body.decode().splitlines() == [
        "# HELP temperature Degrees.",
        "# TYPE temperature gauge",
        'temperature{room="lab"} -1.5e-07',
    ]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="POST"), timeout=5)
    assert refused.value.code == 405
