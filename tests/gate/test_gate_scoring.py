"""Scoring groups and turning scores into verdicts."""

import pytest

from genesis.gate import Classification, JudgeConfig, MetricResult, Verdict, decide, judge
from genesis.gate.rules import MetricRule
from genesis.gate.scoring import score_groups


def _r(
    name: str,
    classification: Classification,
    group: str = "default",
    *,
    critical_failure: bool = False,
    dry_run: bool = False,
) -> MetricResult:
    return MetricResult(
        name=name,
        classification=classification,
        reason=f"{name} was {classification.value}",
        group=group,
        critical=critical_failure,
        critical_failure=critical_failure,
        dry_run=dry_run,
    )


P, H, N = Classification.PASS, Classification.HIGH, Classification.NODATA


def test_group_score_is_the_share_of_judged_metrics_that_passed() -> None:
    groups, summary = score_groups([_r("a", P), _r("b", H), _r("c", P), _r("d", N)], {})
    assert len(groups) == 1
    assert groups[0].score == pytest.approx(200 / 3)
    assert (groups[0].passed, groups[0].failed, groups[0].nodata) == (2, 1, 1)
    assert summary == pytest.approx(200 / 3)


def test_explicit_weights_and_shared_remainder() -> None:
    results = [_r("a", P, "errors"), _r("b", H, "latency"), _r("c", P, "other")]
    groups, summary = score_groups(results, {"errors": 50})
    weights = {g.name: g.weight for g in groups}
    assert weights == {"errors": 50, "latency": 25, "other": 25}
    assert summary == pytest.approx((100 * 50 + 0 * 25 + 100 * 25) / 100)


def test_groups_without_data_are_left_out_and_weights_renormalised() -> None:
    results = [_r("a", P, "errors"), _r("b", N, "latency")]
    groups, summary = score_groups(results, {"errors": 50, "latency": 50})
    assert summary == 100.0
    assert next(g for g in groups if g.name == "latency").score is None


def test_nothing_judged_has_no_score() -> None:
    _, summary = score_groups([_r("a", N)], {})
    assert summary is None
    _, zero_weight = score_groups([_r("a", P, "g")], {"g": 0})
    assert zero_weight is None


CONFIG = JudgeConfig()


def test_critical_failure_fails_with_score_zero() -> None:
    judgment = decide([_r("a", P), _r("errors", H, critical_failure=True)], CONFIG)
    assert judgment.verdict is Verdict.FAIL
    assert judgment.score == 0.0
    assert "critical metric failed: errors" in judgment.reason


def test_score_below_marginal_fails() -> None:
    judgment = decide([_r("a", H), _r("b", H), _r("c", P)], CONFIG)
    assert judgment.verdict is Verdict.FAIL
    assert judgment.score == pytest.approx(33.33)
    assert "below the marginal threshold 75" in judgment.reason


def test_marginal_score_is_inconclusive() -> None:
    judgment = decide([_r("a", H), _r("b", P), _r("c", P), _r("d", P)], CONFIG)
    assert judgment.verdict is Verdict.INCONCLUSIVE
    assert judgment.score == 75.0
    assert "marginal" in judgment.reason
    assert "a was HIGH" in judgment.reason


def test_high_enough_score_passes_and_names_what_failed() -> None:
    results = [_r(f"m{i}", P) for i in range(19)] + [_r("slow", H)]
    judgment = decide(results, CONFIG)
    assert judgment.verdict is Verdict.PASS
    assert "despite" in judgment.reason
    assert "slow" in judgment.reason
    clean = decide([_r("a", P)], CONFIG)
    assert clean.verdict is Verdict.PASS
    assert clean.reason.endswith("every metric passed")


def test_missing_data_is_inconclusive_never_pass() -> None:
    judgment = decide([_r("a", P), _r("b", N)], CONFIG)
    assert judgment.verdict is Verdict.INCONCLUSIVE
    assert "too little data" in judgment.reason
    assert "b was NODATA" in judgment.reason


def test_a_critical_metric_without_data_is_inconclusive_not_fail() -> None:
    nodata = MetricResult(name="errors", classification=N, reason="no data", critical=True)
    judgment = decide([_r("a", P), nodata], CONFIG)
    assert judgment.verdict is Verdict.INCONCLUSIVE


def test_errors_make_an_error_verdict_unless_evidence_fails() -> None:
    errored = decide([_r("a", P), _r("b", Classification.ERROR)], CONFIG)
    assert errored.verdict is Verdict.ERROR
    failing = decide([_r("a", H), _r("b", H), _r("c", Classification.ERROR)], CONFIG)
    assert failing.verdict is Verdict.FAIL


def test_dry_run_metrics_are_reported_but_never_decide() -> None:
    judgment = decide([_r("a", P), _r("b", H, dry_run=True)], CONFIG)
    assert judgment.verdict is Verdict.PASS
    assert len(judgment.metrics) == 2
    only_dry = decide([_r("b", P, dry_run=True)], CONFIG)
    assert only_dry.verdict is Verdict.ERROR
    assert "no metric to judge" in only_dry.reason


def test_thresholds_are_configurable() -> None:
    results = [_r("a", H), _r("b", P)]
    lenient = decide(results, JudgeConfig(pass_threshold=50, marginal_threshold=25))
    assert lenient.verdict is Verdict.PASS
    assert (lenient.pass_threshold, lenient.marginal_threshold) == (50, 25)


def test_judge_refuses_duplicate_metric_names() -> None:
    with pytest.raises(ValueError, match="repeated: m"):
        judge([MetricRule("m"), MetricRule("m")], {})
