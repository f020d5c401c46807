"""Readiness as a metric: genesis_ready follows /readyz's verdict, probed or not."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from genesis.service.readiness import Readiness
from harness.genesis import GenesisFactory, GenesisServer
from harness.redis import RedisServer


async def test_every_verdict_is_observed() -> None:
    seen: list[bool] = []
    healthy = True

    async def dependency() -> None:
        if not healthy:
            raise ConnectionError("down")

    plain = Readiness(observe=seen.append)
    plain.mark_ready()
    assert seen == [True]  # no checks: ready at once

    seen.clear()
    checked = Readiness(observe=seen.append)
    checked.add_check("dependency", dependency)
    checked.mark_ready()
    assert seen == []  # with checks, the first report decides
    watching = asyncio.create_task(checked.watch(0.01))
    await asyncio.sleep(0.05)
    healthy = False
    await asyncio.sleep(0.05)
    checked.begin_drain()
    watching.cancel()
    assert seen[0] is True
    assert False in seen[1:-1]
    assert seen[-1] is False
    assert (await checked.report()).ready is False  # a drain is final


def _ready(server: GenesisServer) -> float | None:
    for line in httpx.get(server.metrics_url, timeout=5).text.splitlines():
        if line.startswith("genesis_ready{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def _until(server: GenesisServer, value: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (seen := _ready(server)) != value:
        assert time.monotonic() < deadline, f"genesis_ready is {seen}, not {value}"
        time.sleep(0.1)


@pytest.mark.integration
def test_genesis_ready_follows_redis_and_the_drain_with_no_probe(
    genesis_server: GenesisFactory, redis_server: RedisServer
) -> None:
    server = genesis_server({"GENESIS_REDIS_URL": redis_server.url, "GENESIS_DRAIN_SECONDS": "3"})
    _until(server, 1, timeout=10)
    # From here on nothing calls /readyz: the service evaluates it on its own clock.
    redis_server.stop()
    _until(server, 0, timeout=10)
    redis_server.start()
    _until(server, 1, timeout=10)
    server.signal(signal.SIGTERM)
    _until(server, 0, timeout=2.5)  # draining
    assert server.wait(timeout=15) == 0
