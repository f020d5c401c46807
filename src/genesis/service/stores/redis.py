"""Shared state on Redis (redis-py asyncio): what lets many replicas enforce one limit.

Counters change in one Lua script, so a request's charges to its request and token
counters are applied together and atomically, whichever replica sends them. Keys carry the
API key's name in a `{hash tag}`, so one client's keys share a Redis Cluster slot.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from genesis.service.stores import CounterChange, StoreUnavailableError

# KEYS come in pairs (counter, its previous window); ARGV[1] is the TTL, ARGV[1 + i] the
# delta of pair i. Returns each counter's new value followed by its previous window's value.
ADD_SCRIPT = """
local result = {}
for pair = 1, #KEYS / 2 do
  local key = KEYS[2 * pair - 1]
  local value = redis.call('INCRBY', key, ARGV[pair + 1])
  redis.call('EXPIRE', key, ARGV[1])
  result[#result + 1] = value
  result[#result + 1] = tonumber(redis.call('GET', KEYS[2 * pair]) or '0')
end
return result
"""

# A request must not wait on an unreachable Redis: fail fast, and let readiness say why.
_TIMEOUT_SECONDS = 0.5


def redis_client(url: str, *, timeout: float, connect_timeout: float | None = None) -> Redis:
    """The one way genesis connects to Redis (the stores, the job queue and its workers)."""
    client: Redis = Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout if connect_timeout is None else connect_timeout,
        # One immediate retry replaces a pooled connection that a Redis restart closed;
        # redis-py's default backoff would hold the request for seconds.
        retry=Retry(NoBackoff(), 1),
        # redis-py 8 over RESP3 does not replace a connection the server closed (seen after
        # a Redis restart: "Connection closed by server" on every retry); RESP2 does.
        protocol=2,
    )
    return client


class RedisStore:
    name = "redis"

    def __init__(self, url: str, *, timeout: float = _TIMEOUT_SECONDS) -> None:
        self._client = redis_client(url, timeout=timeout)
        self._add = self._client.register_script(ADD_SCRIPT)

    async def add(
        self, changes: Sequence[CounterChange], ttl_seconds: int
    ) -> list[tuple[int, int]]:
        keys = [key for change in changes for key in (change.key, change.previous_key)]
        args = [ttl_seconds, *(change.delta for change in changes)]
        try:
            values = await self._add(keys=keys, args=args)
        except (RedisError, OSError) as error:
            raise StoreUnavailableError(f"Redis: {type(error).__name__}") from None
        return [(int(values[i]), int(values[i + 1])) for i in range(0, len(values), 2)]

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(key)
        except (RedisError, OSError) as error:
            raise StoreUnavailableError(f"Redis: {type(error).__name__}") from None
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        try:
            await self._client.set(key, value, ex=ttl_seconds)
        except (RedisError, OSError) as error:
            raise StoreUnavailableError(f"Redis: {type(error).__name__}") from None

    async def check(self) -> None:
        try:
            await self._client.ping()
        except (RedisError, OSError) as error:
            raise StoreUnavailableError(f"Redis unreachable ({type(error).__name__})") from None

    async def aclose(self) -> None:
        await self._client.aclose()
