"""A bounded synthetic-traffic driver, so a quiet canary serves enough requests to be judged.

A canary that sees a handful of requests a minute is judged INCONCLUSIVE, rightly: there is no
evidence either way. `genesis gate run --traffic URL` sends steady requests to URLs the caller
names, while the gate runs. It is deliberately small and hard to misuse: every target is given
explicitly (there is no default and no discovery), the rate per target and the duration have
hard caps, requests in flight are bounded (a slow target gets fewer requests, never a pile-up),
and it stops when the gate stops.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

MAX_RATE = 100.0  # requests per second, per target
MAX_DURATION = 3600.0  # seconds
MAX_IN_FLIGHT = 32  # per target; a tick with this many outstanding requests is skipped
DEFAULT_TIMEOUT = 10.0
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class TrafficError(ValueError):
    """The traffic asked for is outside the driver's bounds."""


@dataclass(frozen=True)
class TrafficPlan:
    """What to send: validated, immutable, and within the caps."""

    urls: tuple[str, ...]
    rate: float
    duration: float
    body: bytes | None = None  # a JSON body makes the requests POSTs
    timeout: float = DEFAULT_TIMEOUT

    @property
    def method(self) -> str:
        return "GET" if self.body is None else "POST"

    @property
    def remote(self) -> tuple[str, ...]:
        """Targets that are not on this machine, worth a warning before load is sent there."""
        return tuple(u for u in self.urls if urlsplit(u).hostname not in _LOOPBACK)


def traffic_plan(
    urls: list[str] | tuple[str, ...],
    rate: float,
    duration: float,
    body: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> TrafficPlan:
    """Check a traffic request against the caps; every problem is named, nothing is clamped
    silently (a caller asking for 500 req/s should learn the cap, not get 100 unawares)."""
    if not urls:
        raise TrafficError("give at least one target URL (--traffic URL)")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TrafficError(f"traffic target {url!r} is not an http(s) URL")
    if not (math.isfinite(rate) and 0 < rate <= MAX_RATE):
        raise TrafficError(
            f"traffic rate must be above 0 and at most {MAX_RATE:g} requests/s per target, "
            f"got {rate:g}"
        )
    if not (math.isfinite(duration) and 0 < duration <= MAX_DURATION):
        raise TrafficError(
            f"traffic duration must be above 0 and at most {MAX_DURATION:g}s, got {duration:g}s"
        )
    if timeout <= 0:
        raise TrafficError("the traffic request timeout must be positive")
    return TrafficPlan(tuple(urls), float(rate), float(duration), body, timeout)


@dataclass
class TargetStats:
    sent: int = 0
    ok: int = 0  # answered below 400
    failed: int = 0  # answered 4xx or 5xx
    errors: int = 0  # no answer (refused, timed out)
    skipped: int = 0  # ticks skipped because MAX_IN_FLIGHT requests were outstanding
    statuses: dict[int, int] = field(default_factory=dict)


class TrafficDriver:
    """Sends the plan's traffic from a background thread: `start()`, then `stop()`."""

    def __init__(self, plan: TrafficPlan) -> None:
        self.plan = plan
        self.stats = {url: TargetStats() for url in plan.urls}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started: float | None = None
        self.stopped: float | None = None

    def start(self) -> TrafficDriver:
        if self._thread is not None:
            raise RuntimeError("the traffic driver was started already")
        self.started = time.monotonic()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main()), name="genesis-traffic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.plan.timeout + 5)
        if self.stopped is None:
            self.stopped = time.monotonic()

    def __enter__(self) -> TrafficDriver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def summary(self) -> dict[str, Any]:
        """What was sent, per target, for reports."""
        elapsed = (self.stopped or time.monotonic()) - (self.started or time.monotonic())
        return {
            "rate": self.plan.rate,
            "duration": self.plan.duration,
            "elapsed": round(max(elapsed, 0.0), 3),
            "method": self.plan.method,
            "targets": {
                url: {
                    "sent": s.sent,
                    "ok": s.ok,
                    "failed": s.failed,
                    "errors": s.errors,
                    "skipped": s.skipped,
                    "statuses": {str(k): v for k, v in sorted(s.statuses.items())},
                }
                for url, s in self.stats.items()
            },
        }

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT * len(self.plan.urls))
        headers = {"User-Agent": "genesis-gate-traffic"}
        if self.plan.body is not None:
            headers["Content-Type"] = "application/json"
        async with httpx.AsyncClient(
            timeout=self.plan.timeout, limits=limits, headers=headers
        ) as client:
            await asyncio.gather(*(self._drive(client, url) for url in self.plan.urls))
        self.stopped = time.monotonic()

    async def _drive(self, client: httpx.AsyncClient, url: str) -> None:
        stats = self.stats[url]
        loop = asyncio.get_running_loop()
        begin = loop.time()
        deadline = begin + self.plan.duration
        period = 1.0 / self.plan.rate
        pending: set[asyncio.Task[None]] = set()
        tick = 0
        while not self._stop.is_set():
            # Ticks on a fixed grid: a late tick does not shift the ones after it, so the rate
            # holds on average; ticks missed entirely are not made up (no bursts).
            due = begin + tick * period
            now = loop.time()
            if due >= deadline:
                break
            if due > now:
                await asyncio.sleep(min(due - now, 0.25))
                continue
            tick = max(tick + 1, math.floor((now - begin) / period) + 1)
            if len(pending) >= MAX_IN_FLIGHT:
                stats.skipped += 1
                continue
            task = asyncio.create_task(self._send(client, url, stats))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending, timeout=self.plan.timeout)

    async def _send(self, client: httpx.AsyncClient, url: str, stats: TargetStats) -> None:
        stats.sent += 1
        try:
            response = await client.request(self.plan.method, url, content=self.plan.body)
        except httpx.HTTPError:
            stats.errors += 1
            return
        stats.statuses[response.status_code] = stats.statuses.get(response.status_code, 0) + 1
        if response.status_code < 400:
            stats.ok += 1
        else:
            stats.failed += 1
