"""Rate limits per API key: charge the shared counters, let `ratelimit` decide, answer 429.

Requests and tokens per minute are counted per key name (the key itself never leaves
`auth`). Tokens are charged up front as the prompt estimate plus `max_tokens`, and settled to
the usage the provider reports once the answer is done, so the budget tracks real usage.

Settling is off the request's critical path: a settle is held in memory and travels with the
next admission of the same key name (the same script call, so no round trip of its own), or
is written on its own after `settle_delay` seconds when that key sends nothing else. A key's
budget is thus exact for the next request from the same process, and at most `settle_delay`
late across processes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from genesis.observability import ServiceMetrics
from genesis.service.errors import APIError
from genesis.service.keys import APIKey
from genesis.service.ratelimit import WINDOW_SECONDS, Decision, Usage, decide, window_position
from genesis.service.stores import CounterChange, Store, StoreUnavailableError

log = structlog.get_logger("genesis.service")

KEY_PREFIX = "genesis:rl"
# Long enough for a window to serve as the previous one for the whole next window.
_TTL_SECONDS = 2 * WINDOW_SECONDS + 5
_SETTINGS = {"requests": "GENESIS_RATE_LIMIT_RPM", "tokens": "GENESIS_RATE_LIMIT_TPM"}
_METRIC = {"requests": "rpm", "tokens": "tpm"}


def _source(key: APIKey, kind: str) -> str:
    """Where a limit comes from, so the message tells the operator what to change."""
    own = key.rpm if kind == "requests" else key.tpm
    if own is None:
        return _SETTINGS[kind]
    return f"{_METRIC[kind]}= of the key '{key.name}' in GENESIS_API_KEYS_FILE"


@dataclass
class Admission:
    """A request let through: its headers, and what to settle once its usage is known."""

    headers: dict[str, str] = field(default_factory=dict)
    token_key: str | None = None
    reserved_tokens: int = 0
    # The key name: settles are grouped by it (its counters share one Redis hash slot).
    scope: str = ""


def _counter_key(name: str, kind: str, window: int) -> str:
    return f"{KEY_PREFIX}:{{{name}}}:{kind}:{window}"


def _settle_changes(counters: dict[str, int]) -> list[CounterChange]:
    """Pending token settles (counter key -> delta) as store changes; no previous window."""
    return [CounterChange(counter, "", delta) for counter, delta in counters.items()]


def _refusal(decision: Decision, key: APIKey) -> APIError:
    refused = decision.refused_by
    first = refused[0]
    if first.retry_after is not None and math.isinf(first.retry_after):
        message = (
            f"Request too large: it needs {first.cost} {first.kind}, more than the limit of "
            f"{first.limit} {first.kind} per minute ({_source(key, first.kind)}); "
            "lower max_tokens or shorten the messages"
        )
    else:
        parts = [f"{limit.limit} {limit.kind} per minute" for limit in refused]
        message = (
            f"Rate limit reached: {' and '.join(parts)} "
            f"({', '.join(_source(key, limit.kind) for limit in refused)}); "
            f"retry after {decision.headers().get('Retry-After', '?')} s"
        )
    return APIError(
        429, message, type=first.kind, code="rate_limit_exceeded", headers=decision.headers()
    )


class RateLimiter:
    def __init__(
        self,
        store: Store,
        *,
        rpm: int,
        tpm: int,
        metrics: ServiceMetrics,
        clock: Callable[[], float] = time.time,
        settle_delay: float = 0.05,
    ) -> None:
        self._store = store
        self._rpm = rpm
        self._tpm = tpm
        self._metrics = metrics
        # Wall clock, not monotonic: replicas must agree on which minute it is.
        self._clock = clock
        self._settle_delay = settle_delay
        # Token settles not yet written: key name -> counter key -> delta.
        self._pending: dict[str, dict[str, int]] = {}
        self._flusher: asyncio.Task[None] | None = None

    def limits_for(self, key: APIKey) -> dict[str, int]:
        """The key's own limits where its line sets them, else the service-wide ones; 0 or
        absent means unlimited."""
        rpm = self._rpm if key.rpm is None else key.rpm
        tpm = self._tpm if key.tpm is None else key.tpm
        return {kind: limit for kind, limit in (("requests", rpm), ("tokens", tpm)) if limit}

    async def admit(self, key: APIKey, tokens: int) -> Admission:
        """Charge one request and `tokens`; raise 429 (refunded) when over a limit."""
        limits = self.limits_for(key)
        if not limits:
            return Admission()
        window, elapsed = window_position(self._clock())
        costs = {"requests": 1, "tokens": tokens}
        changes = [
            CounterChange(
                _counter_key(key.name, kind, window),
                _counter_key(key.name, kind, window - 1),
                costs[kind],
            )
            for kind in limits
        ]
        # This key's pending settles ride along, first, so the counts read include them (if
        # the store is down they are lost with this request's 503, as a failed settle is).
        settles = _settle_changes(self._pending.pop(key.name, {}))
        counts = (await self._add([*settles, *changes]))[len(settles) :]
        decision = decide(
            (kind, Usage(limit, costs[kind], previous, current, elapsed))
            for (kind, limit), (current, previous) in zip(limits.items(), counts, strict=True)
        )
        if not decision.allowed:
            await self._add([CounterChange(c.key, c.previous_key, -c.delta) for c in changes])
            for limit in decision.refused_by:
                self._metrics.rate_limited(_METRIC[limit.kind])
            raise _refusal(decision, key)
        token_key = changes[-1].key if "tokens" in limits else None
        return Admission(decision.headers(), token_key, tokens if token_key else 0, key.name)

    def settle(self, admission: Admission, used_tokens: int) -> None:
        """Replace the token reservation with what the request used, in the window charged:
        held until the key's next admission, or written within `settle_delay` seconds."""
        delta = used_tokens - admission.reserved_tokens
        if admission.token_key is None or delta == 0:
            return
        admission.reserved_tokens = used_tokens
        counters = self._pending.setdefault(admission.scope, {})
        counters[admission.token_key] = counters.get(admission.token_key, 0) + delta
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._settle_delay)
        await self.flush()

    async def flush(self) -> None:
        """Write every pending settle now: one call per key name (one hash slot each)."""
        pending, self._pending = self._pending, {}
        for counters in pending.values():
            try:
                await self._store.add(_settle_changes(counters), _TTL_SECONDS)
            except StoreUnavailableError as error:
                # The answers are already sent; a missed settle skews one minute of one key.
                log.warning("rate limit settle failed", error=str(error))

    async def aclose(self) -> None:
        """At shutdown: no settle is left behind in memory."""
        if self._flusher is not None:
            # Waited for, not cancelled: a flush in progress holds settles no longer pending.
            await self._flusher
        await self.flush()

    async def _add(self, changes: list[CounterChange]) -> list[tuple[int, int]]:
        try:
            return await self._store.add(changes, _TTL_SECONDS)
        except StoreUnavailableError as error:
            log.warning("rate limiter unavailable", error=str(error))
            raise APIError(
                503,
                "Rate limiting is unavailable (the shared store cannot be reached); retry shortly",
                type="server_error",
                code="rate_limiter_unavailable",
                headers={"Retry-After": "1"},
            ) from None
