"""Example tests of single-metric classification, one per documented behaviour."""

import math

import numpy as np
import pytest

from genesis.gate import (
    Classification,
    Counts,
    Direction,
    JudgeConfig,
    MetricData,
    MetricKind,
    MetricRule,
    OutlierPolicy,
    classify,
)
from genesis.gate.classify import mean_ratio

CONFIG = JudgeConfig()


def _kayenta_rule(name: str = "m") -> MetricRule:
    """Mann-Whitney alone, as Kayenta's NetflixACAJudge runs it."""
    return MetricRule(
        name, allowed_increase=1.0, allowed_decrease=1.0, spread_check=False, min_samples=2
    )


def test_variance_only_regression_is_caught_where_mann_whitney_alone_passes() -> None:
    rng = np.random.default_rng(42)
    base = 0.3 * np.exp(rng.normal(0, 0.03, 20))
    canary = 0.3 * np.exp(rng.normal(0, 0.15, 20))  # same median, five times the wobble
    data = MetricData("latency", base.tolist(), canary.tolist())
    mw_only = classify(_kayenta_rule("latency"), data, CONFIG)
    assert mw_only.classification is Classification.PASS
    result = classify(MetricRule("latency"), data, CONFIG)
    assert result.classification is Classification.WIDER
    assert result.spread is not None
    assert result.spread.ratio is not None
    assert result.spread.ratio > 1.5
    assert result.spread.p_value < 0.02
    assert "more erratic" in result.reason
    assert "Brown-Forsythe" in result.reason


def test_sparse_error_series_is_judged_on_counts() -> None:
    # 1 request/s, 15 s steps: error ratios are mostly zero on both tracks.
    base_errors = [0] * 19 + [1]
    canary_errors = [0, 2, 0, 0, 1, 0, 0, 2, 0, 1, 0, 0, 1, 0, 2, 0, 0, 1, 0, 2]
    requests = [15] * 20
    base_series = [e / r for e, r in zip(base_errors, requests, strict=True)]
    canary_series = [e / r for e, r in zip(canary_errors, requests, strict=True)]
    as_series = classify(
        _kayenta_rule("errors"), MetricData("errors", base_series, canary_series), CONFIG
    )
    data = MetricData(
        "errors",
        base_series,
        canary_series,
        baseline_counts=Counts(sum(base_errors), sum(requests)),
        canary_counts=Counts(sum(canary_errors), sum(requests)),
    )
    result = classify(MetricRule("errors", kind=MetricKind.PROPORTION), data, CONFIG)
    assert as_series.classification is Classification.PASS  # Kayenta's gap (b)
    assert result.classification is Classification.HIGH
    assert result.proportion is not None
    assert result.proportion.canary_events == 12
    assert result.proportion.baseline_events == 1
    assert result.proportion.p_value < 0.01
    assert "Fisher" in result.reason


def test_low_traffic_without_a_difference_is_nodata_with_missing_requests() -> None:
    data = MetricData("errors", baseline_counts=Counts(1, 300), canary_counts=Counts(2, 300))
    result = classify(MetricRule("errors", kind=MetricKind.PROPORTION), data, CONFIG)
    assert result.classification is Classification.NODATA
    assert result.proportion is not None
    needed = result.proportion.required_total
    assert needed > 300
    assert result.missing_samples == needed - 300
    assert f"({needed - 300} missing)" in result.reason


def test_enough_traffic_and_equal_rates_pass_with_the_numbers_in_the_reason() -> None:
    data = MetricData(
        "errors", baseline_counts=Counts(150, 30000), canary_counts=Counts(160, 30000)
    )
    result = classify(MetricRule("errors", kind=MetricKind.PROPORTION), data, CONFIG)
    assert result.classification is Classification.PASS
    assert "160/30000" in result.reason
    assert "150/30000" in result.reason
    assert result.mean_ratio == pytest.approx(160 / 150)


def test_proportion_margin_tolerates_a_small_significant_increase() -> None:
    data = MetricData(
        "errors", baseline_counts=Counts(1000, 1_000_000), canary_counts=Counts(1500, 1_000_000)
    )
    strict = classify(
        MetricRule("errors", kind=MetricKind.PROPORTION, allowed_rate_increase=0.0), data, CONFIG
    )
    lenient = classify(MetricRule("errors", kind=MetricKind.PROPORTION), data, CONFIG)
    assert strict.classification is Classification.HIGH
    assert lenient.classification is Classification.PASS


def test_proportion_decrease_direction_flags_a_drop() -> None:
    data = MetricData(
        "success", baseline_counts=Counts(9900, 10000), canary_counts=Counts(9000, 10000)
    )
    rule = MetricRule("success", kind=MetricKind.PROPORTION, direction=Direction.DECREASE)
    result = classify(rule, data, CONFIG)
    assert result.classification is Classification.LOW
    either = classify(
        MetricRule("success", kind=MetricKind.PROPORTION, direction=Direction.EITHER), data, CONFIG
    )
    assert either.classification is Classification.LOW


def test_proportion_without_counts_or_traffic_is_nodata() -> None:
    rule = MetricRule("errors", kind=MetricKind.PROPORTION)
    no_counts = classify(rule, MetricData("errors", [0.0] * 20, [0.0] * 20), CONFIG)
    assert no_counts.classification is Classification.NODATA
    assert "no event counts" in no_counts.reason
    silent = classify(
        rule,
        MetricData("errors", baseline_counts=Counts(5, 1000), canary_counts=Counts(0, 0)),
        CONFIG,
    )
    assert silent.classification is Classification.NODATA
    assert "canary served no requests" in silent.reason
    assert silent.missing_samples > 0


def test_zero_errors_on_both_tracks_have_ratio_one() -> None:
    data = MetricData("errors", baseline_counts=Counts(0, 50000), canary_counts=Counts(0, 50000))
    result = classify(MetricRule("errors", kind=MetricKind.PROPORTION), data, CONFIG)
    assert result.classification is Classification.PASS
    assert result.mean_ratio == 1.0


def test_errors_appearing_from_zero_have_no_ratio_but_fail() -> None:
    data = MetricData("errors", baseline_counts=Counts(0, 50000), canary_counts=Counts(400, 50000))
    result = classify(MetricRule("errors", kind=MetricKind.PROPORTION), data, CONFIG)
    assert result.classification is Classification.HIGH
    assert result.mean_ratio is None


@pytest.mark.parametrize(
    ("events", "total", "message"),
    [(5.0, 2.0, "exceed the total"), (-1.0, 5.0, "negative"), (math.nan, 5.0, "finite")],
)
def test_malformed_counts_are_refused(events: float, total: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Counts(events, total)


def test_counts_extrapolated_by_prometheus_are_rounded() -> None:
    data = MetricData(
        "errors", baseline_counts=Counts(149.6, 30000.4), canary_counts=Counts(150.2, 29999.7)
    )
    result = classify(MetricRule("errors", kind=MetricKind.PROPORTION), data, CONFIG)
    assert result.proportion is not None
    assert (result.proportion.baseline_events, result.proportion.baseline_total) == (150, 30000)
    assert (result.proportion.canary_events, result.proportion.canary_total) == (150, 30000)


def test_effect_size_floor_keeps_a_tiny_significant_shift_passing() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(100.0, 0.1, 30)
    canary = rng.permutation(base) + 1.0  # clearly shifted, but only 1%
    result = classify(MetricRule("m"), MetricData("m", base.tolist(), canary.tolist()), CONFIG)
    assert result.classification is Classification.PASS
    assert "within the allowed change" in result.reason
    assert result.mean_ratio == pytest.approx(1.01, abs=1e-3)
    mw_only = classify(_kayenta_rule(), MetricData("m", base.tolist(), canary.tolist()), CONFIG)
    assert mw_only.classification is Classification.HIGH


def test_decrease_that_the_direction_allows_says_so() -> None:
    base = np.linspace(100, 101, 20)
    canary = base - 50
    result = classify(MetricRule("m"), MetricData("m", base.tolist(), canary.tolist()), CONFIG)
    assert result.classification is Classification.PASS
    assert "lower, which direction increase allows" in result.reason


def test_constant_tracks_are_decided_without_noise() -> None:
    higher = classify(MetricRule("m"), MetricData("m", [1.0] * 12, [2.0] * 12), CONFIG)
    assert higher.classification is Classification.HIGH
    assert "constant" in higher.reason
    lower = classify(
        MetricRule("m", direction=Direction.DECREASE),
        MetricData("m", [2.0] * 12, [1.0] * 12),
        CONFIG,
    )
    assert lower.classification is Classification.LOW
    allowed = classify(MetricRule("m"), MetricData("m", [2.0] * 12, [1.0] * 12), CONFIG)
    assert allowed.classification is Classification.PASS
    assert "within the allowed change" in allowed.reason


def test_all_values_equal_pass() -> None:
    result = classify(MetricRule("m"), MetricData("m", [3.0] * 12, [3.0] * 10), CONFIG)
    assert result.classification is Classification.PASS


def test_min_requests_makes_a_quiet_canary_nodata() -> None:
    rule = MetricRule("p99", min_requests=2000)
    data = MetricData(
        "p99", [0.3] * 20, [0.31] * 20, canary_counts=Counts(0, 300), baseline_counts=None
    )
    result = classify(rule, data, CONFIG)
    assert result.classification is Classification.NODATA
    assert "served 300 requests" in result.reason
    assert "(1700 missing)" in result.reason
    assert result.missing_samples == 1700
    unmeasured = classify(rule, MetricData("p99", [0.3] * 20, [0.31] * 20), CONFIG)
    assert unmeasured.classification is Classification.NODATA
    assert "not measured" in unmeasured.reason
    assert unmeasured.missing_samples == 2000


def test_nan_samples_are_reported_in_the_missing_sentence() -> None:
    canary = [0.3] * 5 + [math.nan] * 15
    result = classify(MetricRule("m"), MetricData("m", [0.3] * 20, canary), CONFIG)
    assert result.classification is Classification.NODATA
    assert "15 NaN/infinite values were dropped" in result.reason
    assert result.missing_samples == 5


def test_query_errors_and_malformed_series_are_errors_not_failures() -> None:
    failed = classify(MetricRule("m"), MetricData("m", error="connection refused"), CONFIG)
    assert failed.classification is Classification.ERROR
    assert "connection refused" in failed.reason
    nested = classify(MetricRule("m"), MetricData("m", [[1.0, 2.0]] * 10, [1.0] * 10), CONFIG)  # type: ignore[list-item]
    assert nested.classification is Classification.ERROR
    assert "one-dimensional" in nested.reason
    words = classify(MetricRule("m"), MetricData("m", ["fast"] * 10, [1.0] * 10), CONFIG)  # type: ignore[list-item]
    assert words.classification is Classification.ERROR
    assert "list of numbers" in words.reason


def test_outlier_removal_is_optional_and_counted() -> None:
    base = [1.0 + 0.01 * i for i in range(20)]
    canary = [1.0 + 0.01 * i for i in range(19)] + [100.0]
    kept = classify(MetricRule("m"), MetricData("m", base, canary), CONFIG)
    trimmed = classify(
        MetricRule("m", outliers=OutlierPolicy.IQR), MetricData("m", base, canary), CONFIG
    )
    assert kept.canary is not None
    assert kept.canary.dropped_outliers == 0
    assert trimmed.canary is not None
    assert trimmed.canary.dropped_outliers == 1
    assert trimmed.canary.maximum is not None
    assert trimmed.canary.maximum < 2


def test_critical_failure_respects_critical_thresholds() -> None:
    base = np.linspace(100, 101, 20)
    canary = base * 1.2
    data = MetricData("m", base.tolist(), canary.tolist())
    beyond = classify(MetricRule("m", critical=True, critical_increase=1.1), data, CONFIG)
    within = classify(MetricRule("m", critical=True, critical_increase=1.5), data, CONFIG)
    assert beyond.classification is Classification.HIGH
    assert beyond.critical_failure
    assert within.classification is Classification.HIGH
    assert not within.critical_failure
    low = classify(
        MetricRule("m", critical=True, direction=Direction.DECREASE, critical_decrease=0.9),
        MetricData("m", canary.tolist(), base.tolist()),
        CONFIG,
    )
    assert low.classification is Classification.LOW
    assert low.critical_failure


def test_a_wider_critical_metric_is_a_critical_failure() -> None:
    rng = np.random.default_rng(42)
    base = 0.3 * np.exp(rng.normal(0, 0.03, 20))
    canary = 0.3 * np.exp(rng.normal(0, 0.15, 20))
    result = classify(
        MetricRule("m", critical=True), MetricData("m", base.tolist(), canary.tolist()), CONFIG
    )
    assert result.classification is Classification.WIDER
    assert result.critical_failure


def test_mean_ratio_edge_cases() -> None:
    assert mean_ratio(np.array([2.0]), np.array([1.0])) == 2.0
    assert mean_ratio(np.array([0.0]), np.array([0.0])) == 1.0
    assert mean_ratio(np.array([1.0]), np.array([0.0])) == math.inf
    assert mean_ratio(np.array([1.0]), np.array([-1.0])) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "needs a name"),
        ({"allowed_increase": 0.9}, "allowed_increase"),
        ({"allowed_decrease": 1.2}, "allowed_decrease"),
        ({"critical_increase": 0.5}, "critical_increase"),
        ({"critical_decrease": 2.0}, "critical_decrease"),
        ({"allowed_spread_increase": 0.5}, "allowed_spread_increase"),
        ({"min_samples": 1}, "min_samples"),
        ({"min_requests": -1}, "min_requests"),
        ({"allowed_rate_increase": 1.5}, "allowed_rate_increase"),
        ({"detectable_increase": 0.001}, "detectable_increase"),
    ],
)
def test_bad_rules_are_refused_with_the_field_named(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    arguments = {"name": "m", **kwargs}
    with pytest.raises(ValueError, match=message):
        MetricRule(**arguments)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 1.0}, "confidence"),
        ({"spread_confidence": 0.1}, "spread_confidence"),
        ({"tolerance": -0.1}, "tolerance"),
        ({"pass_threshold": 50, "marginal_threshold": 75}, "thresholds"),
        ({"group_weights": {"a": -1}}, "negative: a"),
        ({"group_weights": {"a": 60, "b": 50}}, "more than 100"),
    ],
)
def test_bad_judge_configs_are_refused(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        JudgeConfig(**kwargs)
