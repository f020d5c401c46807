"""The three judges compared: genesis, a Flagger-style threshold check, Kayenta-style MW."""

from __future__ import annotations

import math

import numpy as np
from benchmarks.gate.model import STEPS_PER_MINUTE, TrackSeries, quantile_of

from genesis.gate import (
    Classification,
    Counts,
    Direction,
    JudgeConfig,
    MetricData,
    MetricKind,
    MetricResult,
    MetricRule,
    OutlierPolicy,
    Verdict,
    classify,
    judge,
)

GROUP_WEIGHTS = {"errors": 50.0, "latency": 50.0}

GENESIS_RULES = (
    MetricRule(
        "error-rate", kind=MetricKind.PROPORTION, group="errors", critical=True, min_samples=2
    ),
    MetricRule("latency-p95", group="latency", min_requests=500),
    MetricRule("latency-p99", group="latency", min_requests=2000),
)
GENESIS_CONFIG = JudgeConfig(group_weights=GROUP_WEIGHTS)


def _counts(series: TrackSeries) -> Counts:
    return Counts(events=float(series.errors.sum()), total=float(series.requests.sum()))


def _requests(series: TrackSeries) -> Counts:
    return Counts(events=0.0, total=float(series.requests.sum()))


def genesis(baseline: TrackSeries, canary: TrackSeries) -> Verdict:
    data = {
        "error-rate": MetricData(
            "error-rate",
            baseline=baseline.error_ratio.tolist(),
            canary=canary.error_ratio.tolist(),
            baseline_counts=_counts(baseline),
            canary_counts=_counts(canary),
        ),
        "latency-p95": MetricData(
            "latency-p95",
            baseline=baseline.p95.tolist(),
            canary=canary.p95.tolist(),
            baseline_counts=_requests(baseline),
            canary_counts=_requests(canary),
        ),
        "latency-p99": MetricData(
            "latency-p99",
            baseline=baseline.p99.tolist(),
            canary=canary.p99.tolist(),
            baseline_counts=_requests(baseline),
            canary_counts=_requests(canary),
        ),
    }
    return judge(GENESIS_RULES, data, GENESIS_CONFIG).verdict


# Kayenta's NetflixACAJudge: Mann-Whitney only (tolerance 0.25, confidence 0.98), IQR outlier
# removal (factor 3), NaN removed, no effect-size or spread check, every metric a series.
def _kayenta_rule(name: str, group: str, critical: bool = False) -> MetricRule:
    return MetricRule(
        name,
        group=group,
        critical=critical,
        direction=Direction.INCREASE,
        allowed_increase=1.0,
        allowed_decrease=1.0,
        spread_check=False,
        min_samples=2,
        outliers=OutlierPolicy.IQR,
    )


KAYENTA_RULES = (
    _kayenta_rule("error-rate", "errors", critical=True),
    _kayenta_rule("latency-p95", "latency"),
    _kayenta_rule("latency-p99", "latency"),
)
KAYENTA_CONFIG = JudgeConfig()


def _kayenta_score(results: list[MetricResult]) -> float:
    """WeightedSumScorer: NODATA groups are left out and the weights are not renormalised."""
    if any(r.critical and r.classification is not Classification.PASS for r in results):
        return 0.0
    summary = 0.0
    for group, weight in GROUP_WEIGHTS.items():
        labels = [r.classification for r in results if r.group == group]
        judged = [c for c in labels if c.is_scored]
        if judged:
            summary += (
                100.0
                * sum(c is Classification.PASS for c in judged)
                / len(judged)
                * (weight / 100.0)
            )
    return summary


def kayenta(baseline: TrackSeries, canary: TrackSeries) -> Verdict:
    series = {
        "error-rate": (baseline.error_ratio, canary.error_ratio),
        "latency-p95": (baseline.p95, canary.p95),
        "latency-p99": (baseline.p99, canary.p99),
    }
    results = [
        classify(
            rule,
            MetricData(rule.name, series[rule.name][0].tolist(), series[rule.name][1].tolist()),
            KAYENTA_CONFIG,
        )
        for rule in KAYENTA_RULES
    ]
    score = _kayenta_score(results)
    if score >= KAYENTA_CONFIG.pass_threshold:
        return Verdict.PASS
    if score >= KAYENTA_CONFIG.marginal_threshold:
        return Verdict.INCONCLUSIVE  # Kayenta's "marginal"
    return Verdict.FAIL


# Flagger's documented built-in checks: success rate >= 99% and p99 <= 500 ms, each over a
# 1-minute interval; rollback once the failed checks reach the threshold.
FLAGGER_MIN_SUCCESS = 0.99
FLAGGER_MAX_P99_S = 0.5
FLAGGER_THRESHOLD = 2


def flagger(rng: np.random.Generator, baseline: TrackSeries, canary: TrackSeries) -> Verdict:
    del baseline  # threshold checks look at the canary alone
    failed = 0
    for start in range(0, canary.requests.size, STEPS_PER_MINUTE):
        window = slice(start, start + STEPS_PER_MINUTE)
        requests = int(canary.requests[window].sum())
        if requests == 0:
            failed += 1  # "no values found for metric": Flagger counts it as a failed check
            continue
        success = 1.0 - canary.errors[window].sum() / requests
        scale = canary.track.latency_factor * float(np.exp(np.log(canary.jitter[window]).mean()))
        p99 = quantile_of(rng, requests, 0.99, scale)
        if success < FLAGGER_MIN_SUCCESS or not (math.isfinite(p99) and p99 <= FLAGGER_MAX_P99_S):
            failed += 1
    return Verdict.FAIL if failed >= FLAGGER_THRESHOLD else Verdict.PASS
