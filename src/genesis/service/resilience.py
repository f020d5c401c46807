"""Pure decisions about calls to an upstream: which failures to retry, how long to wait
before the next attempt, and a circuit breaker.

No I/O and no clock of their own: the provider passes the time, the randomness and what
happened, so every branch is tested exhaustively without a network or a sleep.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from genesis.observability import CircuitState


class Failure(enum.StrEnum):
    """What went wrong with one attempt, as far as retrying and the breaker care."""

    CONNECT = "connect"  # no connection, or it was reset before an answer
    TIMEOUT = "timeout"  # connect, read or attempt timeout
    RATE_LIMITED = "rate_limited"  # 429
    SERVER = "server"  # 5xx, a malformed answer, a stream broken mid-way
    REJECTED = "rejected"  # any other 4xx: the request itself is at fault


# Another attempt may succeed; a 4xx would only be refused again (and maybe billed).
RETRYABLE = frozenset({Failure.CONNECT, Failure.TIMEOUT, Failure.RATE_LIMITED, Failure.SERVER})
# What says the upstream is unwell. A 429 or another 4xx is an answer from a working
# upstream, so it never opens the circuit: rate limits are handled by Retry-After instead.
UNHEALTHY = frozenset({Failure.CONNECT, Failure.TIMEOUT, Failure.SERVER})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by a count and by the request's deadline.

    `max_retry_after` caps how long an upstream may ask us to wait (`Retry-After`): asked for
    longer, genesis gives up at once and passes the answer, with its Retry-After, to the
    client, rather than hold the client's connection or retry earlier than the upstream asked.
    """

    max_retries: int = 2
    base_delay: float = 0.25
    max_delay: float = 4.0
    max_retry_after: float = 10.0

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full jitter (uniform in [0, min(max, base * 2**retry)]): retries of many clients
        after one outage spread out instead of arriving together."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(retry, 32))
        return rng.uniform(0.0, ceiling)


def retry_delay(
    policy: RetryPolicy,
    *,
    retries_done: int,
    failure: Failure,
    retry_after: float | None,
    remaining: float,
    rng: random.Random,
) -> float | None:
    """Seconds to wait before the next attempt, or None to give up now.

    `remaining` is what is left of the request's deadline; a wait that would use it all up
    is not worth starting.
    """
    if failure not in RETRYABLE or retries_done >= policy.max_retries:
        return None
    if retry_after is not None:
        if retry_after > policy.max_retry_after:
            return None
        delay = retry_after
    else:
        delay = policy.backoff(retries_done, rng)
    if delay >= remaining:
        return None
    return delay


def parse_retry_after(
    retry_after: str | None, retry_after_ms: str | None = None, *, now: datetime | None = None
) -> float | None:
    """Seconds an upstream asks to wait: `retry-after-ms` (OpenAI's), else `Retry-After` as
    seconds or an HTTP date. None when absent or unreadable."""
    if retry_after_ms:
        try:
            millis = float(retry_after_ms)
        except ValueError:
            millis = math.nan
        if math.isfinite(millis) and millis >= 0:
            return millis / 1000
    if not retry_after:
        return None
    try:
        seconds = float(retry_after)
    except ValueError:
        try:
            when = parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; `probe` marks the single trial call of a half-open circuit."""

    probe: bool = False


# For a failure seen outside any permit (a stream that broke after its first chunk).
UNPERMITTED = Permit()


class CircuitBreaker:
    """Closed → open after `failure_threshold` consecutive failures; open → half-open once
    `cooldown` seconds passed, letting one probe call through; the probe's success closes
    the circuit, its failure opens it for another cooldown.

    Results of calls that started before the circuit opened are ignored while it is open or
    half-open: only the probe decides. `failure_threshold=0` turns the breaker off.
    `on_change` hears every state change (the provider exports it as a metric).
    """

    def __init__(
        self,
        failure_threshold: int,
        cooldown: float,
        clock: Callable[[], float],
        on_change: Callable[[CircuitState], None] | None = None,
    ) -> None:
        if failure_threshold < 0 or cooldown < 0:
            raise ValueError("failure_threshold and cooldown must be >= 0")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> CircuitState:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def _become(self, state: CircuitState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)

    def acquire(self) -> Permit | None:
        """A permit for one call, or None: the circuit is open (see `retry_after`)."""
        if self._state is CircuitState.CLOSED:
            return Permit()
        if self._state is CircuitState.OPEN:
            if self._clock() - self._opened_at < self.cooldown:
                return None
            self._become(CircuitState.HALF_OPEN)
        if self._probing:
            return None
        self._probing = True
        return Permit(probe=True)

    def retry_after(self) -> float:
        """Seconds until a call may be let through again (0 when closed)."""
        if self._state is CircuitState.CLOSED:
            return 0.0
        if self._state is CircuitState.OPEN:
            return max(0.0, self._opened_at + self.cooldown - self._clock())
        # Half-open with its probe in flight: the probe decides soon, one way or the other.
        return min(1.0, self.cooldown)

    def success(self, permit: Permit) -> None:
        if permit.probe:
            self._probing = False
            self._failures = 0
            self._become(CircuitState.CLOSED)
        elif self._state is CircuitState.CLOSED:
            self._failures = 0

    def failure(self, permit: Permit) -> None:
        if permit.probe:
            self._probing = False
            self._open()
        elif self._state is CircuitState.CLOSED and self.failure_threshold:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open()

    def abandon(self, permit: Permit) -> None:
        """The call ended without a verdict (the client left): free the probe slot."""
        if permit.probe:
            self._probing = False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._become(CircuitState.OPEN)


def retry_after_header(seconds: float) -> str:
    """`Retry-After` in whole seconds, rounded up and at least 1 (0 would invite a storm)."""
    return str(max(1, math.ceil(seconds)))
