"""An exact-match response cache for non-streaming chat completions (off by default).

The key is the SHA-256 of the canonical JSON (sorted keys, no spaces) of everything that
shapes the answer — model, messages and sampling parameters — scoped to the API key's name, so
one client never receives an answer computed for another. `stream`, `stream_options` and
`user` do not change the answer and are left out. A client skips the lookup with
`Cache-Control: no-cache` and keeps its answer out of the cache with `no-store`.

The cache is an optimisation, so it fails open: when the store is unreachable a lookup is a
miss and a write is skipped, and the request is served as if there were no cache.
"""

from __future__ import annotations

import hashlib
import json

import structlog

from genesis.observability import ServiceMetrics
from genesis.service.schemas import ChatCompletionRequest
from genesis.service.stores import Store, StoreUnavailableError

log = structlog.get_logger("genesis.service")

KEY_PREFIX = "genesis:cache"
CACHE_NAME = "chat_completions"
HEADER = "x-genesis-cache"
_NOT_IN_KEY = {"stream", "stream_options", "user"}


def cache_key(scope: str, body: ChatCompletionRequest) -> str:
    fields = body.model_dump(mode="json", exclude_none=True, exclude=_NOT_IN_KEY)
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{KEY_PREFIX}:{{{scope}}}:{digest}"


def cache_directives(header: str | None) -> set[str]:
    """The directives of a `Cache-Control` request header, lower-case, without arguments."""
    if not header:
        return set()
    return {part.split("=", 1)[0].strip().lower() for part in header.split(",") if part.strip()}


class ResponseCache:
    def __init__(self, store: Store, ttl_seconds: int, metrics: ServiceMetrics) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._metrics = metrics

    async def lookup(self, key: str) -> bytes | None:
        """The stored answer's JSON body, as it was sent the first time."""
        try:
            raw = await self._store.get(key)
        except StoreUnavailableError as error:
            log.warning("cache lookup failed", error=str(error))
            raw = None
        if raw is None:
            self._metrics.cache_miss(CACHE_NAME)
            return None
        self._metrics.cache_hit(CACHE_NAME)
        return raw

    async def store(self, key: str, body: bytes) -> None:
        try:
            await self._store.set(key, body, self._ttl)
        except StoreUnavailableError as error:
            log.warning("cache write failed", error=str(error))
