"""Rate-limit decisions (pure): sliding-window usage, retry-after, OpenAI's headers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.service.ratelimit import (
    WINDOW_SECONDS,
    Decision,
    Usage,
    decide,
    decide_limit,
    estimate_prompt_tokens,
    format_duration,
    token_reservation,
    window_position,
)
from genesis.service.schemas import ChatCompletionRequest

W = WINDOW_SECONDS


def usage_at(prev: int, base: int, cost: int, elapsed: float, wait: float) -> float:
    """Weighted usage plus `cost` after `wait` seconds with no other requests."""
    moment = elapsed + wait
    if moment < W:
        return prev * (W - moment) / W + base + cost
    # One window later this window's count is the previous one; two later, nothing is left.
    later = moment - W
    return (base * (W - later) / W if later < W else 0) + cost


def test_window_position() -> None:
    assert window_position(120.0) == (2, 0.0)
    assert window_position(179.5) == (2, 59.5)
    index, elapsed = window_position(1_700_000_012.25)
    assert index * W + elapsed == pytest.approx(1_700_000_012.25)


def test_allows_up_to_the_limit_then_refuses() -> None:
    allowed = decide_limit("requests", Usage(limit=3, cost=1, previous=0, current=3, elapsed=10))
    assert allowed.allowed
    assert allowed.remaining == 0
    assert allowed.retry_after is None
    refused = decide_limit("requests", Usage(limit=3, cost=1, previous=0, current=4, elapsed=10))
    assert not refused.allowed
    # The refused charge is refunded, so what is left is computed without it.
    assert refused.remaining == 0
    # Three requests in this window: they slide out over the next one; one must go.
    assert refused.retry_after == pytest.approx(50 + W * (1 - 2 / 3))


def test_previous_window_counts_by_its_overlap() -> None:
    # 30 s into the window, half of the previous window's 10 requests still count.
    usage = Usage(limit=10, cost=1, previous=10, current=5, elapsed=30)
    assert usage.weighted(5) == pytest.approx(10)
    assert decide_limit("requests", usage).allowed
    over = decide_limit("requests", Usage(limit=10, cost=1, previous=10, current=6, elapsed=30))
    assert not over.allowed
    # It fits once another 1/10 of the previous window has slid out: 6 s.
    assert over.retry_after == pytest.approx(6)


def test_reset_is_the_time_until_nothing_counts() -> None:
    fresh = decide_limit("tokens", Usage(limit=100, cost=0, previous=0, current=0, elapsed=5))
    assert fresh.reset_seconds == 0
    only_previous = decide_limit(
        "tokens", Usage(limit=100, cost=0, previous=40, current=0, elapsed=5)
    )
    assert only_previous.reset_seconds == 55
    current = decide_limit("tokens", Usage(limit=100, cost=10, previous=0, current=10, elapsed=5))
    assert current.reset_seconds == 2 * W - 5


def test_a_request_larger_than_the_limit_never_fits() -> None:
    refused = decide_limit("tokens", Usage(limit=100, cost=150, previous=0, current=150, elapsed=1))
    assert refused.retry_after == math.inf
    decision = Decision((refused,))
    assert "Retry-After" not in decision.headers()


def test_decision_needs_every_limit_and_waits_for_the_slowest() -> None:
    decision = decide(
        [
            ("requests", Usage(limit=10, cost=1, previous=10, current=6, elapsed=30)),
            ("tokens", Usage(limit=100, cost=50, previous=0, current=150, elapsed=30)),
        ]
    )
    assert not decision.allowed
    assert [limit.kind for limit in decision.refused_by] == ["requests", "tokens"]
    tokens_wait = 30 + W * (1 - 50 / 100)
    assert decision.retry_after == pytest.approx(tokens_wait)
    headers = decision.headers()
    assert headers["Retry-After"] == str(math.ceil(tokens_wait))
    assert headers["x-ratelimit-limit-requests"] == "10"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-limit-tokens"] == "100"
    assert headers["x-ratelimit-remaining-tokens"] == "0"
    assert headers["x-ratelimit-reset-tokens"] == "1m30s"


def test_allowed_decision_has_headers_but_no_retry_after() -> None:
    decision = decide([("requests", Usage(limit=10, cost=1, previous=0, current=1, elapsed=0))])
    assert decision.allowed
    assert decision.retry_after is None
    assert decision.headers() == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "9",
        "x-ratelimit-reset-requests": "2m0s",
    }


def test_retry_after_is_at_least_one_second() -> None:
    decision = decide(
        [("requests", Usage(limit=10, cost=1, previous=10, current=10, elapsed=59.9))]
    )
    assert not decision.allowed
    assert decision.headers()["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0ms"), (0.0204, "21ms"), (0.999, "999ms"), (1, "1s"), (1.2, "2s"), (59, "59s"),
     (60, "1m0s"), (119.5, "2m0s"), (360, "6m0s")],
)  # fmt: skip
def test_durations_are_written_as_openai_does(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_token_reservation_is_prompt_estimate_plus_max_tokens() -> None:
    body = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 100}
    )
    assert estimate_prompt_tokens(body) == 10 + 4
    assert token_reservation(body) == 114
    bare = body.model_copy(update={"max_tokens": None})
    assert token_reservation(bare) == 14


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 500),
    cost=st.integers(1, 600),
    previous=st.integers(0, 1000),
    base=st.integers(0, 1000),
    elapsed=st.floats(0, W, exclude_max=True),
)
def test_retry_after_is_exactly_when_the_request_fits(
    limit: int, cost: int, previous: int, base: int, elapsed: float
) -> None:
    result = decide_limit("tokens", Usage(limit, cost, previous, base + cost, elapsed))
    fits_now = usage_at(previous, base, cost, elapsed, 0) <= limit
    assert result.allowed == fits_now
    if result.allowed:
        return
    assert result.retry_after is not None
    if cost > limit:
        assert result.retry_after == math.inf
        return
    assert usage_at(previous, base, cost, elapsed, result.retry_after) <= limit + 1e-6
    if result.retry_after > 0.01:
        assert usage_at(previous, base, cost, elapsed, result.retry_after - 0.01) > limit - 1e-6


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 20),
    arrivals=st.lists(st.tuples(st.floats(0, 5), st.integers(1, 5)), min_size=1, max_size=80),
)
def test_charge_then_decide_never_lets_usage_exceed_the_limit(
    limit: int, arrivals: list[tuple[float, int]]
) -> None:
    """The service's loop: charge the counter, decide on what came back, refund if refused."""
    counters: dict[int, int] = {}
    now = 1_000.0
    for gap, cost in arrivals:
        now += gap
        index, elapsed = window_position(now)
        counters[index] = counters.get(index, 0) + cost
        usage = Usage(limit, cost, counters.get(index - 1, 0), counters[index], elapsed)
        decision = decide_limit("tokens", usage)
        if not decision.allowed:
            counters[index] -= cost
        # Whatever was decided, the counters left behind are within the limit.
        assert usage.weighted(counters[index]) <= limit + 1e-9
        assert 0 <= decision.remaining <= limit
