"""Property-based tests of the comparative judge: the promises made in docs/gate.md."""

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from genesis.gate import (
    Classification,
    Counts,
    Direction,
    JudgeConfig,
    MetricData,
    MetricKind,
    MetricRule,
    Verdict,
    classify,
    judge,
)

CONFIG = JudgeConfig()
values = st.floats(min_value=0.001, max_value=1e4, allow_nan=False, allow_infinity=False)
series = st.lists(values, min_size=10, max_size=40)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=60, deadline=None)
@given(series, st.sampled_from(list(Direction)), st.randoms())
def test_identical_samples_pass(data: list[float], direction: Direction, rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(data)
    rnd.shuffle(shuffled)
    rule = MetricRule("m", direction=direction)
    result = classify(rule, MetricData("m", data, shuffled), CONFIG)
    assert result.classification is Classification.PASS
    assert judge([rule], {"m": MetricData("m", data, shuffled)}).verdict is Verdict.PASS


def _noisy(seed: int, n: int = 20, level: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """Two tracks with the same spread (the canary a reshuffle), so only location differs."""
    rng = np.random.default_rng(seed)
    base = rng.normal(level, 1.0, n)
    return base, rng.permutation(base)


@settings(max_examples=40, deadline=None)
@given(seeds, st.floats(min_value=10.0, max_value=1000.0))
def test_shift_up_is_high_when_increase_is_watched(seed: int, shift: float) -> None:
    base, can = _noisy(seed)
    data = MetricData("m", base.tolist(), (can + shift).tolist())
    for direction in (Direction.INCREASE, Direction.EITHER):
        result = classify(MetricRule("m", direction=direction), data, CONFIG)
        assert result.classification is Classification.HIGH, result.reason
        assert result.location is not None
        assert result.location.ci_low > 0
    allowed = classify(MetricRule("m", direction=Direction.DECREASE), data, CONFIG)
    assert allowed.classification is Classification.PASS, allowed.reason


@settings(max_examples=40, deadline=None)
@given(seeds, st.floats(min_value=10.0, max_value=90.0))
def test_shift_down_is_low_when_decrease_is_watched(seed: int, shift: float) -> None:
    base, can = _noisy(seed)
    data = MetricData("m", base.tolist(), (can - shift).tolist())
    for direction in (Direction.DECREASE, Direction.EITHER):
        result = classify(MetricRule("m", direction=direction), data, CONFIG)
        assert result.classification is Classification.LOW, result.reason
        assert result.location is not None
        assert result.location.ci_high < 0
    allowed = classify(MetricRule("m", direction=Direction.INCREASE), data, CONFIG)
    assert allowed.classification is Classification.PASS, allowed.reason


@settings(max_examples=40, deadline=None)
@given(seeds, st.floats(min_value=10.0, max_value=1000.0))
def test_a_shifted_canary_fails_the_run(seed: int, shift: float) -> None:
    base, can = _noisy(seed)
    rule = MetricRule("m", critical=True)
    judgment = judge([rule], {"m": MetricData("m", base.tolist(), (can + shift).tolist())})
    assert judgment.verdict is Verdict.FAIL
    assert "m" in judgment.reason


bad = st.sampled_from([math.nan, math.inf, -math.inf])


@settings(max_examples=60, deadline=None)
@given(series, st.lists(bad, min_size=1, max_size=15), st.randoms())
def test_nan_and_inf_are_dropped_and_counted(data: list[float], junk: list[float], rnd) -> None:  # type: ignore[no-untyped-def]
    polluted = data + junk
    rnd.shuffle(polluted)
    result = classify(MetricRule("m"), MetricData("m", data, polluted), CONFIG)
    assert result.canary is not None
    assert result.canary.dropped_nonfinite == len(junk)
    assert result.canary.count == len(data)
    assert result.classification is Classification.PASS


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(values, bad), max_size=9), series, st.booleans())
def test_too_little_data_is_nodata_with_the_missing_count(
    short: list[float], enough: list[float], canary_short: bool
) -> None:
    finite = sum(math.isfinite(v) for v in short)
    data = MetricData("m", enough, short) if canary_short else MetricData("m", short, enough)
    result = classify(MetricRule("m", min_samples=10), data, CONFIG)
    assert result.classification is Classification.NODATA
    assert result.missing_samples == 10 - finite
    assert f"({10 - finite} missing)" in result.reason
    verdict = judge([MetricRule("m", min_samples=10)], {"m": data}).verdict
    assert verdict is Verdict.INCONCLUSIVE


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=100_000),
    st.integers(min_value=1, max_value=100_000),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_a_canary_rate_no_higher_than_the_baseline_never_fails(
    base_total: int, canary_total: int, base_share: float, canary_share: float
) -> None:
    # Chance differences between equal rates are the benchmark's business (false-positive
    # rate); what must hold every time is that a canary doing no worse is never HIGH.
    base_events = round(base_share * base_total)
    canary_events = min(
        round(canary_share * canary_total), base_events * canary_total // base_total
    )
    rule = MetricRule("errors", kind=MetricKind.PROPORTION, critical=True)
    data = MetricData(
        "errors",
        baseline_counts=Counts(base_events, base_total),
        canary_counts=Counts(canary_events, canary_total),
    )
    result = classify(rule, data, CONFIG)
    assert result.classification in (Classification.PASS, Classification.NODATA), result.reason
    assert judge([rule], {"errors": data}).verdict in (Verdict.PASS, Verdict.INCONCLUSIVE)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=5000, max_value=100_000), st.floats(min_value=0.0, max_value=0.02))
def test_an_error_rate_five_points_higher_fails(total: int, rate: float) -> None:
    rule = MetricRule("errors", kind=MetricKind.PROPORTION, critical=True)
    base = Counts(round(rate * total), float(total))
    can = Counts(round((rate + 0.05) * total), float(total))
    data = MetricData("errors", baseline_counts=base, canary_counts=can)
    judgment = judge([rule], {"errors": data})
    assert judgment.verdict is Verdict.FAIL
    assert judgment.metrics[0].classification is Classification.HIGH


@settings(max_examples=30, deadline=None)
@given(series)
def test_empty_inputs_are_never_a_pass(data: list[float]) -> None:
    for base, can in (([], data), (data, []), ([], [])):
        result = classify(MetricRule("m"), MetricData("m", base, can), CONFIG)
        assert result.classification is Classification.NODATA
    assume(len(data) > 0)
    missing = judge([MetricRule("m")], {})
    assert missing.verdict is Verdict.INCONCLUSIVE
