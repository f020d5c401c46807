"""The shared stores against a real Redis: atomic counters, parity with memory, outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from genesis.observability import Metrics
from genesis.service import Settings, create_app
from genesis.service.errors import APIError
from genesis.service.keys import APIKey
from genesis.service.ratelimiter import RateLimiter
from genesis.service.stores import CounterChange, Store, StoreUnavailableError, open_store
from genesis.service.stores.memory import MemoryStore
from genesis.service.stores.redis import RedisStore
from harness.processes import free_port
from harness.redis import RedisServer

pytestmark = pytest.mark.integration

ALICE = APIKey(name="alice", digest=b"")


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_server.url)
    yield store
    await store.aclose()


def limiter(store: Store, settle_delay: float = 0.05, **limits: int) -> RateLimiter:
    from prometheus_client import CollectorRegistry

    metrics = Metrics(track="stable", version="test", revision="test", registry=CollectorRegistry())
    return RateLimiter(
        store,
        rpm=limits.get("rpm", 0),
        tpm=limits.get("tpm", 0),
        metrics=metrics.service,
        settle_delay=settle_delay,
    )


async def test_add_increments_sets_ttl_and_reads_the_previous_window(
    redis_store: RedisStore, redis_server: RedisServer
) -> None:
    redis_server.command("SET", "t:prev", "7")
    result = await redis_store.add(
        [CounterChange("t:cur", "t:prev", 3), CounterChange("t:tok", "t:none", 250)], 125
    )
    assert result == [(3, 7), (250, 0)]
    assert await redis_store.add([CounterChange("t:cur", "t:prev", -1)], 125) == [(2, 7)]
    ttl = redis_server.command("TTL", "t:cur")
    assert isinstance(ttl, int)
    assert 120 <= ttl <= 125


async def test_memory_and_redis_agree(redis_store: RedisStore) -> None:
    memory = MemoryStore()
    steps = [
        [CounterChange("a", "a0", 1), CounterChange("b", "b0", 40)],
        [CounterChange("a", "a0", 1)],
        [CounterChange("a0", "x", 5)],
        [CounterChange("a", "a0", -1), CounterChange("b", "b0", -15)],
    ]
    for changes in steps:
        assert await memory.add(changes, 60) == await redis_store.add(changes, 60)


async def test_values_round_trip_with_ttl(
    redis_store: RedisStore, redis_server: RedisServer
) -> None:
    assert await redis_store.get("c:missing") is None
    await redis_store.set("c:one", b"\x00payload", 30)
    assert await redis_store.get("c:one") == b"\x00payload"
    ttl = redis_server.command("TTL", "c:one")
    assert isinstance(ttl, int)
    assert 0 < ttl <= 30


async def test_memory_store_expires_and_sweeps() -> None:
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.add([CounterChange("k", "p", 2)], 10)
    await store.set("v", b"x", 10)
    assert await store.get("v") == b"x"
    now[0] += 11
    assert await store.get("v") is None
    assert await store.add([CounterChange("k", "p", 1)], 10) == [(1, 0)]
    for i in range(1100):
        await store.set(f"many-{i}", b"x", 1)
    now[0] += 2
    for i in range(1100):
        await store.add([CounterChange(f"c-{i}", "p", 1)], 1)
    assert len(store._values) < 1100, "expired values are swept"


async def test_limit_holds_across_many_connections_at_once(redis_server: RedisServer) -> None:
    """Five clients (as five replicas would) race 60 requests at a 10-per-minute limit."""
    stores = [RedisStore(redis_server.url) for _ in range(5)]
    try:
        limiters = [limiter(store, rpm=10) for store in stores]

        async def attempt(index: int) -> int:
            try:
                await limiters[index % 5].admit(ALICE, tokens=0)
            except APIError as error:
                return error.status
            return 200

        results = await asyncio.gather(*(attempt(i) for i in range(60)))
        assert sorted(results) == [200] * 10 + [429] * 50
    finally:
        for store in stores:
            await store.aclose()


async def test_outage_fails_fast_and_recovers(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url)
    try:
        await store.check()
        redis_server.stop()
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="Redis unreachable"):
            await store.check()
        with pytest.raises(StoreUnavailableError):
            await store.add([CounterChange("k", "p", 1)], 10)
        with pytest.raises(StoreUnavailableError):
            await store.get("k")
        with pytest.raises(StoreUnavailableError):
            await store.set("k", b"v", 10)
        assert time.monotonic() - started < 5, "an outage must not hold requests"
        # A refused charge is a 503 that says what is down, and a settle is only logged.
        rate_limiter = limiter(store, rpm=5, tpm=100)
        with pytest.raises(APIError, match="Rate limiting is unavailable") as raised:
            await rate_limiter.admit(ALICE, tokens=1)
        assert raised.value.status == 503
        redis_server.start()
        admission = await rate_limiter.admit(ALICE, tokens=10)
        redis_server.stop()
        rate_limiter.settle(admission, 20)
        await rate_limiter.flush()
    finally:
        await store.aclose()


async def test_settles_ride_with_the_next_admission_or_are_written_after_the_delay(
    redis_store: RedisStore,
) -> None:
    # Two processes' limiters on one Redis; A's settles have no round trip of their own.
    a = limiter(redis_store, settle_delay=0.3, tpm=1000)
    b = limiter(redis_store, settle_delay=0.3, tpm=1000)
    first = await a.admit(ALICE, tokens=500)
    a.settle(first, 100)
    a.settle(first, 100)  # a second settle of the same admission changes nothing
    # A's next admission carries the settle: it sees 100 used, not the 500 reserved.
    second = await a.admit(ALICE, tokens=10)
    assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - 100 - 10)
    a.settle(second, 5)
    # B sees A's pending settle only once A writes it, at most settle_delay later.
    seen = await b.admit(ALICE, tokens=1)
    assert seen.headers["x-ratelimit-remaining-tokens"] == str(1000 - 110 - 1)
    await asyncio.sleep(0.5)
    later = await b.admit(ALICE, tokens=1)
    assert later.headers["x-ratelimit-remaining-tokens"] == str(1000 - 105 - 2)
    # Shutdown writes what is still pending.
    b.settle(later, 0)
    await b.aclose()
    after = await a.admit(ALICE, tokens=1)
    assert after.headers["x-ratelimit-remaining-tokens"] == str(1000 - 105 - 1 - 0 - 1)


async def test_readiness_follows_redis(redis_server: RedisServer) -> None:
    app = create_app(Settings(redis_url=redis_server.url, rate_limit_rpm=5))
    assert isinstance(open_store(redis_server.url), RedisStore)
    async with app.test_app():
        client = app.test_client()
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert (await ready.get_json())["checks"] == {"redis": "ok"}
        redis_server.stop()
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert "Redis unreachable" in (await down.get_json())["checks"]["redis"]
        chat = await client.post(
            "/v1/chat/completions",
            json={"model": "genesis-offline-demo", "messages": [{"role": "user", "content": "x"}]},
        )
        assert chat.status_code == 503
        assert (await chat.get_json())["error"]["code"] == "rate_limiter_unavailable"
        assert chat.headers["Retry-After"] == "1"
        redis_server.start()
        assert (await client.get("/readyz")).status_code == 200


async def test_unreachable_redis_at_start_is_not_ready() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(Settings(redis_url=url))
    async with app.test_app():
        response = await app.test_client().get("/readyz")
        assert response.status_code == 503
