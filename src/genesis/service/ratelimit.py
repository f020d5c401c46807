"""Rate-limit decisions, pure: given what the counters say, allow or deny, and the headers.

The algorithm is a sliding-window counter (as Cloudflare and nginx-style limiters use): one
counter per key per minute, and the usage at a moment is the current minute's count plus the
previous minute's count weighted by how much of it still falls inside the last 60 seconds.
It needs two integers per limit, so a shared store only has to add atomically, and it has no
boundary burst (a fixed window lets 2x the limit through around each minute's turn).

The counters are charged first and the decision made on the counts that come back: every
charge is atomic, so of N concurrent requests exactly those whose own charge still fits are
allowed — across any number of replicas — and a denied request's charge is refunded. The
store never decides, so this module is the one place the rules live.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from genesis.service.schemas import ChatCompletionRequest

WINDOW_SECONDS = 60
# OpenAI's own rule of thumb for English text; the estimate is settled to actual usage later.
CHARS_PER_TOKEN = 4
# Role and separators of each message, as OpenAI's chat format adds them.
TOKENS_PER_MESSAGE = 4


def window_position(now: float, window: int = WINDOW_SECONDS) -> tuple[int, float]:
    """The number of the window `now` falls in and how many seconds into it."""
    index = math.floor(now / window)
    return index, now - index * window


def estimate_prompt_tokens(body: ChatCompletionRequest) -> int:
    chars = sum(len(message.text()) for message in body.messages)
    return math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(body.messages)


def token_reservation(body: ChatCompletionRequest) -> int:
    """Tokens charged up front: the prompt estimate plus the completion the client allows.

    Admission has to be decided before any work starts, so the charge is the worst case the
    client declared (`max_tokens`); a client that declares none is charged its completion
    when it is known (see `RateLimiter.settle`).
    """
    return estimate_prompt_tokens(body) + (body.token_limit or 0)


@dataclass(frozen=True)
class Usage:
    """One limit's counters as the store returned them, the request's charge included."""

    limit: int
    cost: int
    previous: int
    current: int
    elapsed: float
    window: int = WINDOW_SECONDS

    def weighted(self, current: int) -> float:
        return self.previous * (self.window - self.elapsed) / self.window + current


@dataclass(frozen=True)
class LimitDecision:
    """The verdict of one limit (requests or tokens) for one request."""

    kind: str  # "requests" or "tokens", as in OpenAI's header names
    limit: int
    cost: int
    allowed: bool
    remaining: int
    reset_seconds: float
    # Seconds until this request would fit; None when allowed, math.inf when it never can.
    retry_after: float | None


def _reset_seconds(previous: int, current: int, elapsed: float, window: int) -> float:
    """Until the usage falls back to zero, with no new requests (OpenAI's 'reset')."""
    if current > 0:
        return 2 * window - elapsed
    if previous > 0:
        return window - elapsed
    return 0.0


def _retry_after(usage: Usage, base: int) -> float:
    """Seconds until `usage.cost` fits on top of `base` (the count without this request)."""
    limit, cost, previous, window = usage.limit, usage.cost, usage.previous, usage.window
    left_in_window = window - usage.elapsed
    if base + cost <= limit:
        # It fits once enough of the previous window has slid out (so `previous` > 0: with
        # nothing left to slide out, the request would have been allowed).
        return max(0.0, left_in_window - window * (limit - base - cost) / previous)
    if cost > limit:
        return math.inf
    # In the next window, this window's count becomes the sliding-out previous one.
    return left_in_window + window * (1 - (limit - cost) / base)


def decide_limit(kind: str, usage: Usage) -> LimitDecision:
    """Allow when the weighted usage, this request's charge included, is within the limit."""
    allowed = usage.weighted(usage.current) <= usage.limit
    # A denied request's charge is refunded, so what is left is computed without it.
    current = usage.current if allowed else usage.current - usage.cost
    remaining = max(0, math.floor(usage.limit - usage.weighted(current)))
    return LimitDecision(
        kind=kind,
        limit=usage.limit,
        cost=usage.cost,
        allowed=allowed,
        remaining=remaining,
        reset_seconds=_reset_seconds(usage.previous, current, usage.elapsed, usage.window),
        retry_after=None if allowed else _retry_after(usage, current),
    )


@dataclass(frozen=True)
class Decision:
    """The verdict over every limit of a request: allowed only when all allow it."""

    limits: tuple[LimitDecision, ...]

    @property
    def allowed(self) -> bool:
        return all(limit.allowed for limit in self.limits)

    @property
    def refused_by(self) -> list[LimitDecision]:
        return [limit for limit in self.limits if not limit.allowed]

    @property
    def retry_after(self) -> float | None:
        """Seconds until every refusing limit lets the request through."""
        waits = [limit.retry_after for limit in self.refused_by if limit.retry_after is not None]
        return max(waits) if waits else None

    def headers(self) -> dict[str, str]:
        """OpenAI's `x-ratelimit-*` headers, and `Retry-After` when refused."""
        headers = rate_limit_headers(self.limits)
        wait = self.retry_after
        if wait is not None and math.isfinite(wait):
            # Whole seconds, rounded up: a client that waits this long will fit.
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return headers


def decide(limits: Iterable[tuple[str, Usage]]) -> Decision:
    return Decision(tuple(decide_limit(kind, usage) for kind, usage in limits))


def format_duration(seconds: float) -> str:
    """A duration the way OpenAI's headers write it: `20ms`, `1s`, `6m0s`."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def rate_limit_headers(limits: Sequence[LimitDecision]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for limit in limits:
        headers[f"x-ratelimit-limit-{limit.kind}"] = str(limit.limit)
        headers[f"x-ratelimit-remaining-{limit.kind}"] = str(limit.remaining)
        headers[f"x-ratelimit-reset-{limit.kind}"] = format_duration(limit.reset_seconds)
    return headers
