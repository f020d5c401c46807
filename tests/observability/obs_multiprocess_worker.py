"""A worker process writing prometheus-client multi-process files, one step per stdin line.

Started with PROMETHEUS_MULTIPROC_DIR set, so prometheus-client writes every value to this
process's `.db` files exactly as a Hypercorn worker of `genesis serve` does. Each line on stdin
names a step (`base`, `more`, `odd`, `nudge`) and an integer seed; the worker answers `done`
once the step's values are written, so the test scrapes a known state.
"""

from __future__ import annotations

import sys
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Summary

MODES: tuple[Any, ...] = (
    "all",
    "liveall",
    "min",
    "livemin",
    "max",
    "livemax",
    "sum",
    "livesum",
    "mostrecent",
    "livemostrecent",
)
ROUTES = ("/a", '/quote"d', "/back\\slash", "/new\nline", "/ünïcode")

requests = Counter(
    "mp_requests_total", 'Requests, with a \\ and "quotes"\nover lines.', ["route", "status"]
)
plain = Counter("mp_plain_events", "No labels.")
latency = Histogram("mp_latency_seconds", "Latency.", ["route"], buckets=(0.01, 0.1, 1.0, 1e7))
default_buckets = Histogram("mp_default_buckets", "Default buckets, no labels.")
negative = Histogram("mp_negative", "A negative first bucket: no _sum.", buckets=(-1.0, 0.0, 2.0))
sizes = Summary("mp_sizes_bytes", "Sizes.", ["kind"])
gauges = {
    mode: Gauge(f"mp_gauge_{mode}", f"A {mode} gauge.", ["room", "pid"], multiprocess_mode=mode)
    for mode in MODES
}


def base(seed: int) -> None:
    for n, route in enumerate(ROUTES):
        requests.labels(route, "200").inc(seed + n)
        latency.labels(route).observe(0.05 * (n + 1) * seed)
    requests.labels("/a", "500").inc(0.5)
    plain.inc(seed)
    default_buckets.observe(seed / 10)
    negative.observe(-5.0)
    negative.observe(1.5)
    sizes.labels("body").observe(1e9 + seed)
    for mode, gauge in gauges.items():
        value = seed * 1.5 - 4
        if mode.endswith("mostrecent"):
            gauge.labels("lab", "user-pid").set(value)
        else:
            gauge.labels("lab", "user-pid").inc(value)
            gauge.labels("hall", "x").set(-seed)


def more(seed: int) -> None:
    """New children and values after a first scrape."""
    for n in range(3):
        requests.labels(f"/new/{seed}/{n}", "201").inc()
        latency.labels(f"/new/{seed}/{n}").observe(2.0 + n)
    sizes.labels(f"kind-{seed}").observe(seed)
    for mode, gauge in gauges.items():
        gauge.labels(f"room-{seed}", "p").set(seed)
        if not mode.endswith("mostrecent"):
            gauge.labels("lab", "user-pid").inc(1)


def odd(seed: int) -> None:
    """Values the text format spells specially."""
    requests.labels("/inf", "200").inc(float("inf"))
    latency.labels("/inf").observe(float("inf"))
    latency.labels("/big").observe(12345678.0)
    gauges["all"].labels("nan", "p").set(float("nan"))
    gauges["max"].labels("neg-inf", "p").set(float("-inf"))
    gauges["sum"].labels("tiny", "p").set(-1.5e-7 * seed)
    gauges["livesum"].labels("zero", "p").set(-0.0)


def nudge(seed: int) -> None:
    """Only values change: the merge's cached keys must still show the new values."""
    for route in ROUTES:
        requests.labels(route, "200").inc(seed)
        latency.labels(route).observe(0.001 * seed)
    plain.inc()


STEPS = {"base": base, "more": more, "odd": odd, "nudge": nudge}


def main() -> int:
    for line in sys.stdin:
        step, seed = line.split()
        STEPS[step](int(seed))
        print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
