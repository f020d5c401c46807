"""Shared state of the service (rate-limit counters, cached responses) behind one protocol.

`RedisStore` is what replicas share; `MemoryStore` is the fallback when no
`GENESIS_REDIS_URL` is set, and it is right for one instance only: every process keeps its
own counters, so N replicas would allow N times the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class StoreUnavailableError(Exception):
    """The shared store cannot be reached; the message carries no URL (it may hold a password)."""


@dataclass(frozen=True)
class CounterChange:
    """Add `delta` to the counter `key` and read `previous_key` (its previous window)."""

    key: str
    previous_key: str
    delta: int


class Store(Protocol):
    name: str

    async def add(
        self, changes: Sequence[CounterChange], ttl_seconds: int
    ) -> list[tuple[int, int]]:
        """Apply every change atomically, as one step; each counter's new value and its
        previous window's value, in order."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    async def check(self) -> None:
        """Raise when the store cannot serve (the readiness check)."""

    async def aclose(self) -> None: ...


def open_store(redis_url: str | None) -> Store:
    """Redis when a URL is set (the `genesis[redis]` extra), else in-process memory."""
    if redis_url is None:
        from genesis.service.stores.memory import MemoryStore

        return MemoryStore()
    try:
        from genesis.service.stores.redis import RedisStore
    except ImportError as error:  # pragma: no cover - the extra is installed wherever tests run
        raise RuntimeError(
            "GENESIS_REDIS_URL is set but redis-py is missing: install genesis[redis]"
        ) from error
    return RedisStore(redis_url)


__all__ = ["CounterChange", "Store", "StoreUnavailableError", "open_store"]
