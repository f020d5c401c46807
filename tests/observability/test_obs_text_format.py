"""The cached text renderer writes exactly what prometheus-client writes, and /metrics serves it."""

from __future__ import annotations

import gzip
import math
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import cast
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
    disable_created_metrics,
    enable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeHistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from genesis.observability import _client_internals, _text_format
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


class _SubCounter(Counter):
    """A subclass may sample differently: the fast path leaves it to collect()."""


def _special_values(registry: CollectorRegistry) -> None:
    """Values and shapes the text format spells specially, on the instruments the fast path
    reads."""
    values = Gauge("special", "Special values.", ["v"], registry=registry)
    for name, value in [
        ("nan", math.nan),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("zero", 0.0),
        ("-zero", -0.0),
        ("big", 1234567.0),
        ("huge", 1e22),
        ("tiny", 5e-324),
        ("neg-big", -1234567.0),
    ]:
        values.labels(name).set(value)
    Gauge("by_function", "A callback gauge.", registry=registry).set_function(lambda: 4.25)
    callbacks = Gauge("by_function_labelled", "Callback children.", ["k"], registry=registry)
    callbacks.labels("a").set_function(lambda: 1.0)
    callbacks.labels("b").set(2.0)
    reset = Counter("resets", "Reset to an int zero.", registry=registry)
    reset.inc(5)
    reset.reset()
    Histogram("unlabelled_seconds", "No labels.", registry=registry).observe(12345678.0)
    negative = Histogram(
        "offsets", "Negative bucket: no _sum.", buckets=(-1, 0, 1), registry=registry
    )
    negative.observe(-3)
    Histogram("empty_family", "No children yet.", ["x"], registry=registry)
    Counter("data", "With a unit.", unit="bytes", registry=registry).inc(1e6)
    _SubCounter("sub", "A subclass.", registry=registry).inc(2)
    removed = Counter("removed", "A child comes and goes.", ["k"], registry=registry)
    removed.labels("stays").inc()
    removed.labels("goes").inc()
    removed.remove("goes")


def test_output_is_byte_for_byte_prometheus_clients() -> None:
    registry = _every_kind()
    _special_values(registry)
    assert render_text(registry) == generate_latest(registry)
    # A second scrape comes from the cache and must still carry the new values.
    Counter("late", "Added after the first scrape.", registry=registry).inc(7)
    assert render_text(registry) == generate_latest(registry)
    assert b"late_total 7.0\n" in render_text(registry)


def test_new_children_and_values_between_scrapes() -> None:
    registry = _every_kind()
    requests = Counter("hits", "Hits.", ["route"], registry=registry)
    latency = Histogram("took_seconds", "Took.", ["route"], buckets=(0.1, 1, 10), registry=registry)
    gauge = Gauge("level", "Level.", ["room"], registry=registry)
    for scrape in range(4):
        for n in range(scrape + 1):
            requests.labels(f"/r{n}").inc(n + 0.5)
            latency.labels(f"/r{n}").observe(scrape * 0.7)
            gauge.labels(f"room {n}").set(-scrape)
        if scrape == 2:
            requests.clear()
        assert render_text(registry) == generate_latest(registry)


def test_created_series_can_be_off() -> None:
    registry = _every_kind()
    _special_values(registry)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        text = render_text(registry)
        assert b"_created" not in text
        assert text == generate_latest(registry)
    finally:
        enable_created_metrics()  # type: ignore[no-untyped-call]
    assert render_text(registry) == generate_latest(registry)


def test_target_info_comes_first() -> None:
    registry = CollectorRegistry(target_info={"service": "x\ny"})
    Counter("events", "Events.", registry=registry).inc()
    assert render_text(registry).startswith(b"# HELP target_info")
    assert render_text(registry) == generate_latest(registry)


def test_random_registries_match() -> None:
    rng = random.Random(20261204)
    for _ in range(20):
        registry = CollectorRegistry()
        families = []
        for n in range(rng.randint(1, 6)):
            labels = ["a", "b"][: rng.randint(0, 2)]
            kind = rng.choice([Counter, Gauge, Histogram, Summary])
            families.append((kind(f"fam_{n}", f"Family {n}.", labels, registry=registry), labels))
        for _scrape in range(3):
            for family, labels in families:
                for _ in range(rng.randint(0, 4)):
                    values = [rng.choice(["x", "y", 'q"\\', "é"]) for _ in labels]
                    child = family.labels(*values) if labels else family
                    amount = rng.choice([0, 1, 2.5, 1e-9, 3e7, math.inf, rng.random() * 100])
                    if isinstance(child, Counter):
                        child.inc(amount)
                    elif isinstance(child, Gauge):
                        child.set(rng.choice([amount, -amount, math.nan]))
                    else:
                        child.observe(amount)
            assert render_text(registry) == generate_latest(registry)


def test_instruments_are_read_without_collect(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()
    Counter("c", "C.", ["k"], registry=registry).labels("v").inc()
    Gauge("g", "G.", registry=registry).set(3)
    Histogram("h", "H.", ["k"], registry=registry).labels("v").observe(1)
    Summary("s", "S.", registry=registry).observe(2)
    expected = generate_latest(registry)

    def refuse(self: object) -> None:
        raise AssertionError("the fast path should not call collect()")

    for kind in (Counter, Gauge, Histogram, Summary):
        monkeypatch.setattr(kind, "collect", refuse)
    assert render_text(registry) == expected


def test_values_format_as_floatToGoString() -> None:
    go_string = cast(Callable[[object], str], floatToGoString)
    rng = random.Random(7)
    values: list[object] = [0.0, -0.0, 0, -0, True, False, 1, 10**20, 2**53 + 1, math.nan]
    values += [math.inf, -math.inf, 1e6, 999999.0, 1234567.0, -1234567.0, 1e-7, 5e-324, 1.7e308]
    values += [Decimal("1.5"), Decimal("-0"), "2.5", 1733284620.123456, 1e16, 123456789.0]
    values += [1000000.5, 9999999.999, 1e300, -1e300, -math.nan, 2.5e-5]
    values += [rng.uniform(-1e9, 1e9) for _ in range(200)] + [rng.random() for _ in range(200)]
    values += [rng.uniform(0, 10.0 ** rng.randint(0, 30)) for _ in range(500)]
    for _ in range(2):  # the second round answers from the cache
        for value in values:
            assert _text_format.format_value(cast(float, value)) == go_string(value), value
        for value in values:  # and without the cache
            if type(value) is float:
                assert _text_format._format_float(value) == go_string(value), value
    # The cache must not let -0.0 and 0.0 stand for each other, in either order.
    assert _text_format.format_value(-0.0) == "-0.0"
    assert _text_format.format_value(0.0) == "0.0"


def test_families_fall_back_to_collect_when_the_internals_surprise(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    registry = _every_kind()
    _special_values(registry)
    expected = generate_latest(registry)

    def changed(child: object) -> object:
        raise AttributeError("'Histogram' object has no attribute '_buckets'")

    monkeypatch.setattr(_client_internals, "histogram_parts", changed)
    monkeypatch.setattr(_text_format, "_warned", set())
    assert render_text(registry) == expected
    assert "scrape fast path off for Histogram" in caplog.text
    # A failed probe turns the fast path off altogether.
    monkeypatch.setattr(_text_format, "_fast_path", False)
    assert render_text(registry) == expected


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
