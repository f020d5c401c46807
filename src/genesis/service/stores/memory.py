"""In-process state: single-instance only (each process counts for itself)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from genesis.service.stores import CounterChange

# Expired entries are dropped on a sweep every this many writes, so memory stays bounded
# by the keys of the last few windows without a background task.
_SWEEP_EVERY = 1024


class MemoryStore:
    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counters: dict[str, tuple[int, float]] = {}
        self._values: dict[str, tuple[bytes, float]] = {}
        self._writes = 0

    def _counter(self, key: str, now: float) -> int:
        entry = self._counters.get(key)
        return entry[0] if entry is not None and entry[1] > now else 0

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes % _SWEEP_EVERY:
            return
        self._counters = {k: e for k, e in self._counters.items() if e[1] > now}
        self._values = {k: e for k, e in self._values.items() if e[1] > now}

    async def add(
        self, changes: Sequence[CounterChange], ttl_seconds: int
    ) -> list[tuple[int, int]]:
        # No await in here: on one event loop this whole loop is atomic, as a Lua script is.
        now = self._clock()
        results = []
        for change in changes:
            value = self._counter(change.key, now) + change.delta
            self._counters[change.key] = (value, now + ttl_seconds)
            results.append((value, self._counter(change.previous_key, now)))
        self._wrote(now)
        return results

    async def get(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        return entry[0] if entry is not None and entry[1] > self._clock() else None

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        now = self._clock()
        self._values[key] = (value, now + ttl_seconds)
        self._wrote(now)

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
