"""The pure retry and circuit-breaker decisions, exhaustively, on a clock the test moves."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genesis.observability import CircuitState
from genesis.service.resilience import (
    RETRYABLE,
    UNHEALTHY,
    UNPERMITTED,
    CircuitBreaker,
    Failure,
    Permit,
    RetryPolicy,
    parse_retry_after,
    retry_after_header,
    retry_delay,
)


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


POLICY = RetryPolicy(max_retries=3, base_delay=0.5, max_delay=3.0, max_retry_after=10.0)


# -- retries ------------------------------------------------------------------------------------


def test_only_transient_failures_are_retried() -> None:
    assert Failure.REJECTED not in RETRYABLE
    assert set(Failure) - {Failure.REJECTED} == RETRYABLE
    # 429 is retried but says nothing bad about the upstream's health.
    assert Failure.RATE_LIMITED in RETRYABLE
    assert Failure.RATE_LIMITED not in UNHEALTHY
    assert Failure.REJECTED not in UNHEALTHY


@pytest.mark.parametrize("failure", sorted(RETRYABLE))
def test_retryable_failure_waits_a_jittered_backoff(failure: Failure) -> None:
    delay = retry_delay(
        POLICY,
        retries_done=0,
        failure=failure,
        retry_after=None,
        remaining=60,
        rng=random.Random(1),
    )
    assert delay is not None
    assert 0 <= delay <= 0.5


def test_a_rejected_request_is_never_retried() -> None:
    assert (
        retry_delay(
            POLICY,
            retries_done=0,
            failure=Failure.REJECTED,
            retry_after=None,
            remaining=60,
            rng=random.Random(1),
        )
        is None
    )


def test_retries_stop_at_max_retries() -> None:
    def delay(done: int) -> float | None:
        return retry_delay(
            POLICY,
            retries_done=done,
            failure=Failure.SERVER,
            retry_after=None,
            remaining=60,
            rng=random.Random(1),
        )

    assert all(delay(done) is not None for done in range(3))
    assert delay(3) is None
    none = RetryPolicy(max_retries=0)
    assert (
        retry_delay(
            none,
            retries_done=0,
            failure=Failure.CONNECT,
            retry_after=None,
            remaining=60,
            rng=random.Random(1),
        )
        is None
    )


@given(retry=st.integers(0, 200), seed=st.integers(0, 2**32))
def test_backoff_is_full_jitter_under_an_exponential_ceiling(retry: int, seed: int) -> None:
    delay = POLICY.backoff(retry, random.Random(seed))
    assert 0 <= delay <= min(POLICY.max_delay, POLICY.base_delay * 2**retry)


def test_backoff_ceiling_doubles_then_caps() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert [POLICY.backoff(n, Top()) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_retry_after_is_honoured_exactly() -> None:
    assert (
        retry_delay(
            POLICY,
            retries_done=0,
            failure=Failure.RATE_LIMITED,
            retry_after=2.5,
            remaining=60,
            rng=random.Random(1),
        )
        == 2.5
    )


def test_retry_after_longer_than_the_cap_gives_up_at_once() -> None:
    assert (
        retry_delay(
            POLICY,
            retries_done=0,
            failure=Failure.RATE_LIMITED,
            retry_after=10.5,
            remaining=60,
            rng=random.Random(1),
        )
        is None
    )


@pytest.mark.parametrize(("retry_after", "remaining"), [(2.0, 2.0), (2.0, 1.0), (None, 0.0)])
def test_a_wait_that_would_use_up_the_deadline_is_not_started(
    retry_after: float | None, remaining: float
) -> None:
    assert (
        retry_delay(
            POLICY,
            retries_done=0,
            failure=Failure.SERVER,
            retry_after=retry_after,
            remaining=remaining,
            rng=random.Random(1),
        )
        is None
    )


@pytest.mark.parametrize(
    ("header", "millis", "expected"),
    [
        ("7", None, 7.0),
        ("0.5", None, 0.5),
        ("0", None, 0.0),
        (None, "250", 0.25),
        ("7", "1500", 1.5),
        ("7", "soon", 7.0),
        ("7", "-3", 7.0),
        ("7", "nan", 7.0),
        (None, None, None),
        ("", None, None),
        ("-1", None, None),
        ("inf", None, None),
        ("whenever", None, None),
    ],
)
def test_parse_retry_after(header: str | None, millis: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, millis) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == 30.0
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0
    # A date without a zone is read as UTC, as HTTP dates are.
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:10 -0000", now=now) == 10.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:10", now=now) == 10.0


@pytest.mark.parametrize(("seconds", "header"), [(0, "1"), (0.2, "1"), (1.0, "1"), (29.1, "30")])
def test_retry_after_header_rounds_up_to_at_least_one(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header


# -- circuit breaker ----------------------------------------------------------------------------


def breaker(threshold: int = 3, cooldown: float = 10.0) -> tuple[CircuitBreaker, Clock, list[str]]:
    clock = Clock()
    changes: list[str] = []
    return (
        CircuitBreaker(threshold, cooldown, clock, on_change=lambda s: changes.append(s.name)),
        clock,
        changes,
    )


def fail(cb: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        permit = cb.acquire()
        assert permit is not None
        cb.failure(permit)


def test_closed_breaker_lets_everything_through() -> None:
    cb, _, changes = breaker()
    assert cb.state is CircuitState.CLOSED
    assert cb.acquire() == Permit(probe=False)
    assert cb.retry_after() == 0
    assert changes == []


def test_opens_after_threshold_consecutive_failures() -> None:
    cb, _, changes = breaker(threshold=3)
    fail(cb, 2)
    assert cb.state is CircuitState.CLOSED
    assert cb.consecutive_failures == 2
    fail(cb, 1)
    assert cb.state is CircuitState.OPEN
    assert changes == ["OPEN"]
    assert cb.acquire() is None


def test_a_success_resets_the_count() -> None:
    cb, _, _ = breaker(threshold=3)
    fail(cb, 2)
    cb.success(Permit())
    assert cb.consecutive_failures == 0
    fail(cb, 2)
    assert cb.state is CircuitState.CLOSED


def test_open_refuses_until_the_cooldown_and_says_how_long() -> None:
    cb, clock, _ = breaker(threshold=1, cooldown=10)
    fail(cb, 1)
    clock.advance(4)
    assert cb.acquire() is None
    assert cb.retry_after() == pytest.approx(6)
    clock.advance(5.9)
    assert cb.acquire() is None
    assert cb.retry_after() == pytest.approx(0.1)


def test_half_open_lets_exactly_one_probe_through() -> None:
    cb, clock, changes = breaker(threshold=1, cooldown=10)
    fail(cb, 1)
    clock.advance(10)
    probe = cb.acquire()
    assert probe == Permit(probe=True)
    assert cb.state is CircuitState.HALF_OPEN
    assert cb.acquire() is None, "a second caller waits for the probe's verdict"
    assert 0 < cb.retry_after() <= 1
    assert changes == ["OPEN", "HALF_OPEN"]


def test_probe_success_closes() -> None:
    cb, clock, changes = breaker(threshold=1, cooldown=10)
    fail(cb, 1)
    clock.advance(10)
    probe = cb.acquire()
    assert probe is not None
    cb.success(probe)
    assert cb.state is CircuitState.CLOSED
    assert cb.consecutive_failures == 0
    assert cb.acquire() == Permit()
    assert changes == ["OPEN", "HALF_OPEN", "CLOSED"]


def test_probe_failure_reopens_for_a_fresh_cooldown() -> None:
    cb, clock, changes = breaker(threshold=1, cooldown=10)
    fail(cb, 1)
    clock.advance(15)
    probe = cb.acquire()
    assert probe is not None
    cb.failure(probe)
    assert cb.state is CircuitState.OPEN
    assert cb.retry_after() == pytest.approx(10)
    clock.advance(9)
    assert cb.acquire() is None
    clock.advance(1)
    assert cb.acquire() == Permit(probe=True)
    assert changes == ["OPEN", "HALF_OPEN", "OPEN", "HALF_OPEN"]


def test_an_abandoned_probe_frees_the_slot() -> None:
    cb, clock, _ = breaker(threshold=1, cooldown=1)
    fail(cb, 1)
    clock.advance(1)
    probe = cb.acquire()
    assert probe is not None
    cb.abandon(probe)
    assert cb.state is CircuitState.HALF_OPEN
    assert cb.acquire() == Permit(probe=True)


def test_abandoning_an_ordinary_call_changes_nothing() -> None:
    cb, _, _ = breaker(threshold=2)
    fail(cb, 1)
    cb.abandon(Permit())
    assert cb.consecutive_failures == 1
    assert cb.state is CircuitState.CLOSED


def test_late_results_of_calls_from_before_the_opening_are_ignored() -> None:
    cb, clock, _ = breaker(threshold=1, cooldown=10)
    early = cb.acquire()
    assert early is not None
    fail(cb, 1)
    cb.success(early)
    assert cb.state is CircuitState.OPEN, "only a probe may close the circuit"
    clock.advance(10)
    probe = cb.acquire()
    assert probe is not None
    cb.failure(UNPERMITTED)
    assert cb.state is CircuitState.HALF_OPEN, "only the probe's verdict counts"
    cb.success(UNPERMITTED)
    assert cb.state is CircuitState.HALF_OPEN
    cb.success(probe)
    assert cb.state is CircuitState.CLOSED


def test_threshold_zero_never_opens() -> None:
    cb, _, changes = breaker(threshold=0)
    fail(cb, 1000)
    assert cb.state is CircuitState.CLOSED
    assert changes == []


def test_breaker_without_listener() -> None:
    clock = Clock()
    cb = CircuitBreaker(1, 0, clock)
    fail(cb, 1)
    assert cb.state is CircuitState.OPEN
    # Zero cooldown: the next call is the probe at once.
    assert cb.acquire() == Permit(probe=True)


def test_invalid_breaker_settings() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        CircuitBreaker(-1, 1, Clock())
    with pytest.raises(ValueError, match=">= 0"):
        CircuitBreaker(1, -1, Clock())


@given(st.lists(st.sampled_from(["ok", "fail", "abandon", "wait"]), max_size=60))
def test_breaker_invariants_hold_for_any_history(steps: list[str]) -> None:
    """Whatever happens: at most one probe in flight, open never lets a call through before
    its cooldown, and closed always does."""
    cb, clock, _ = breaker(threshold=2, cooldown=5)
    in_flight: list[Permit] = []
    for step in steps:
        if step == "wait":
            clock.advance(3)
            continue
        permit = cb.acquire()
        if cb.state is CircuitState.CLOSED:
            assert permit is not None
        if permit is None:
            assert cb.state is not CircuitState.CLOSED
            assert cb.retry_after() > 0
            continue
        in_flight.append(permit)
        assert sum(p.probe for p in in_flight) <= 1
        done = in_flight.pop(0)
        {"ok": cb.success, "fail": cb.failure, "abandon": cb.abandon}[step](done)
