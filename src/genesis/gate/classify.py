"""Classify one metric: canary against baseline over the same window.

Continuous metrics get Kayenta's Mann-Whitney rule (the confidence interval of the shift must
clear tolerance x |shift|), an effect-size floor (mean ratio), and a Brown-Forsythe spread test.
Proportion metrics are judged on event counts with Fisher's exact test. Too little data is
NODATA with the number of missing samples, never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from genesis.gate.brown_forsythe import compare_spread
from genesis.gate.mann_whitney import shift_estimate
from genesis.gate.preprocess import Cleaned, FloatArray, clean, summarize
from genesis.gate.proportions import Counts, compare_proportions, required_total
from genesis.gate.rules import JudgeConfig, MetricKind, MetricRule
from genesis.gate.verdict import (
    Classification,
    LocationTest,
    MetricResult,
    ProportionTest,
    SampleSummary,
    SpreadTest,
)


@dataclass(frozen=True)
class MetricData:
    """What was measured for one metric on each track over the analysis window."""

    name: str
    baseline: Sequence[float] = ()
    canary: Sequence[float] = ()
    baseline_counts: Counts | None = None
    canary_counts: Counts | None = None
    error: str | None = None  # set by the adapter when the query itself failed


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}"


def _pct(value: float) -> str:
    return f"{100 * value:.3g}%"


def mean_ratio(canary: FloatArray, baseline: FloatArray) -> float | None:
    """Effect size as Kayenta reports it; None where a ratio means nothing (negative base)."""
    base, can = float(np.mean(baseline)), float(np.mean(canary))
    if base < 0 or can < 0:
        return None
    if base == 0.0:
        return 1.0 if can == 0.0 else math.inf
    return can / base


def _result(rule: MetricRule, classification: Classification, reason: str) -> MetricResult:
    return MetricResult(
        name=rule.name,
        classification=classification,
        reason=reason,
        kind=rule.kind.value,
        direction=rule.direction,
        group=rule.group,
        critical=rule.critical,
        dry_run=rule.dry_run,
    )


def classify(rule: MetricRule, data: MetricData, config: JudgeConfig) -> MetricResult:
    """Classify one metric; malformed input becomes an ERROR result, never an exception."""
    if data.error is not None:
        return _result(rule, Classification.ERROR, f"could not be measured: {data.error}")
    try:
        if rule.kind is MetricKind.PROPORTION:
            return _classify_proportion(rule, data, config)
        return _classify_continuous(rule, data, config)
    except ValueError as exc:
        return _result(rule, Classification.ERROR, f"could not be judged: {exc}")


def _missing_sentence(baseline: SampleSummary, canary: SampleSummary, needed: int) -> str:
    parts = []
    for label, summary in (("canary", canary), ("baseline", baseline)):
        if summary.count < needed:
            text = (
                f"the {label} has {summary.count} of the {needed} samples needed "
                f"({needed - summary.count} missing)"
            )
            if summary.dropped_nonfinite:
                text += f"; {summary.dropped_nonfinite} NaN/infinite values were dropped"
            parts.append(text)
    return "not enough data: " + " and ".join(parts)


def _classify_continuous(rule: MetricRule, data: MetricData, config: JudgeConfig) -> MetricResult:
    base_clean: Cleaned = clean(data.baseline, rule.outliers)
    can_clean: Cleaned = clean(data.canary, rule.outliers)
    base_sum, can_sum = summarize(base_clean), summarize(can_clean)
    result = replace(_result(rule, Classification.PASS, ""), baseline=base_sum, canary=can_sum)
    needed = rule.min_samples
    if base_sum.count < needed or can_sum.count < needed:
        missing = max(needed - base_sum.count, needed - can_sum.count)
        return replace(
            result,
            classification=Classification.NODATA,
            reason=_missing_sentence(base_sum, can_sum, needed),
            missing_samples=missing,
        )
    if rule.min_requests:
        if data.canary_counts is None:
            return replace(
                result,
                classification=Classification.NODATA,
                reason=(
                    f"the canary's request count was not measured; {rule.min_requests} "
                    "requests are needed before this metric can pass"
                ),
                missing_samples=rule.min_requests,
            )
        served = round(data.canary_counts.total)
        if served < rule.min_requests:
            return replace(
                result,
                classification=Classification.NODATA,
                reason=(
                    f"not enough traffic: the canary served {served} requests, "
                    f"{rule.min_requests} are needed ({rule.min_requests - served} missing)"
                ),
                missing_samples=rule.min_requests - served,
            )

    canary, baseline = can_clean.values, base_clean.values
    ratio = mean_ratio(canary, baseline)
    result = replace(result, mean_ratio=ratio)
    if np.array_equal(np.sort(canary), np.sort(baseline)):
        return replace(result, reason="canary and baseline values are identical")
    if np.ptp(canary) == 0 and np.ptp(baseline) == 0:
        return _classify_constant(rule, result, float(canary[0]), float(baseline[0]), ratio)

    shift = shift_estimate(canary, baseline, config.confidence)
    bound = config.tolerance * abs(shift.estimate)
    location = LocationTest(
        u_statistic=shift.u_statistic,
        p_value=shift.p_value,
        estimate=shift.estimate,
        ci_low=shift.ci_low,
        ci_high=shift.ci_high,
        bound=bound,
        confidence=config.confidence,
    )
    result = replace(result, location=location)
    if rule.spread_check:
        # Computed for every continuous metric, so reports show it even when location decides.
        spread = compare_spread(canary, baseline)
        result = replace(
            result,
            spread=SpreadTest(
                statistic=spread.statistic,
                p_value=spread.p_value,
                ratio=spread.ratio,
                confidence=config.spread_confidence,
            ),
        )
    level = f"{100 * config.confidence:g}%"
    interval = f"[{_fmt(shift.ci_low)}, {_fmt(shift.ci_high)}]"
    medians = f"canary median {_fmt(can_sum.median)} vs baseline {_fmt(base_sum.median)}"

    above, below = shift.ci_low > bound, shift.ci_high < -bound
    high = rule.direction.watches_increase and above
    low = rule.direction.watches_decrease and below
    if high and (ratio is None or ratio >= rule.allowed_increase):
        return _critical(
            replace(
                result,
                classification=Classification.HIGH,
                reason=(
                    f"higher on the canary: {medians}; the {level} interval of the shift "
                    f"{interval} lies above +{_fmt(bound)} (Mann-Whitney p={shift.p_value:.3g})"
                    f" and the mean ratio {_fmt(ratio)} reaches {rule.allowed_increase:g}"
                ),
            ),
            rule,
        )
    if low and (ratio is None or ratio <= rule.allowed_decrease):
        return _critical(
            replace(
                result,
                classification=Classification.LOW,
                reason=(
                    f"lower on the canary: {medians}; the {level} interval of the shift "
                    f"{interval} lies below -{_fmt(bound)} (Mann-Whitney p={shift.p_value:.3g})"
                    f" and the mean ratio {_fmt(ratio)} reaches {rule.allowed_decrease:g}"
                ),
            ),
            rule,
        )
    if high or low:
        why_not = f"the mean ratio {_fmt(ratio)} stays within the allowed change"
    elif above or below:
        moved = "higher" if above else "lower"
        why_not = f"the canary is {moved}, which direction {rule.direction.value} allows"
    else:
        why_not = f"the {level} interval of the shift {interval} does not clear ±{_fmt(bound)}"
    location_sentence = f"{medians}; {why_not} (Mann-Whitney p={shift.p_value:.3g})"

    measured = result.spread
    if measured is not None:
        significant = measured.p_value < 1.0 - config.spread_confidence
        if (
            significant
            and measured.ratio is not None
            and measured.ratio >= rule.allowed_spread_increase
        ):
            return _critical(
                replace(
                    result,
                    classification=Classification.WIDER,
                    reason=(
                        f"more erratic on the canary: its spread is {_fmt(measured.ratio)}x "
                        f"the baseline's (Brown-Forsythe W={_fmt(measured.statistic)}, "
                        f"p={measured.p_value:.3g}), although {location_sentence}"
                    ),
                ),
                rule,
            )
        location_sentence += f"; spread ratio {_fmt(measured.ratio)} (p={measured.p_value:.3g})"
    return replace(result, reason=f"no significant regression: {location_sentence}")


def _classify_constant(
    rule: MetricRule, result: MetricResult, canary: float, baseline: float, ratio: float | None
) -> MetricResult:
    """Both tracks flat: the difference is exact, so decide it without a test.

    (Kayenta adds Gaussian noise here to make its test run; the answer then varies by chance.)
    """
    sentence = f"both tracks are constant: canary {_fmt(canary)} vs baseline {_fmt(baseline)}"
    higher = canary > baseline and rule.direction.watches_increase
    if higher and (ratio is None or ratio >= rule.allowed_increase):
        return _critical(replace(result, classification=Classification.HIGH, reason=sentence), rule)
    lower = canary < baseline and rule.direction.watches_decrease
    if lower and (ratio is None or ratio <= rule.allowed_decrease):
        return _critical(replace(result, classification=Classification.LOW, reason=sentence), rule)
    return replace(result, reason=f"{sentence}, within the allowed change")


def _critical(result: MetricResult, rule: MetricRule) -> MetricResult:
    """Mark a failure of a critical metric that is large enough to fail the whole run."""
    if not rule.critical:
        return result
    ratio = result.mean_ratio
    if result.classification is Classification.HIGH:
        beyond = ratio is None or ratio >= rule.critical_increase
    elif result.classification is Classification.LOW:
        beyond = ratio is None or ratio <= rule.critical_decrease
    else:
        beyond = result.classification is Classification.WIDER
    return replace(result, critical_failure=beyond)


def _classify_proportion(rule: MetricRule, data: MetricData, config: JudgeConfig) -> MetricResult:
    result = _result(rule, Classification.PASS, "")
    if data.baseline or data.canary:
        result = replace(
            result,
            baseline=summarize(clean(data.baseline)),
            canary=summarize(clean(data.canary)),
        )
    if data.canary_counts is None or data.baseline_counts is None:
        return replace(
            result,
            classification=Classification.NODATA,
            reason="no event counts (errors and requests) were measured for this rate",
        )
    canary_total = round(data.canary_counts.total)
    baseline_total = round(data.baseline_counts.total)
    directional = rule.direction.watches_increase != rule.direction.watches_decrease
    alpha = (1.0 - config.confidence) / 2.0 if directional else 1.0 - config.confidence
    if canary_total <= 0 or baseline_total <= 0:
        silent = "canary" if canary_total <= 0 else "baseline"
        needed = required_total(0.0, rule.detectable_increase, alpha)
        return replace(
            result,
            classification=Classification.NODATA,
            reason=(
                f"the {silent} served no requests in the window; {needed} are needed on each track"
            ),
            missing_samples=needed,
        )

    test = compare_proportions(data.canary_counts, data.baseline_counts, rule.direction)
    needed = required_total(test.baseline_rate, rule.detectable_increase, alpha)
    ratio = None if test.baseline_rate == 0 else test.canary_rate / test.baseline_rate
    if test.baseline_rate == 0 and test.canary_rate == 0:
        ratio = 1.0
    result = replace(
        result,
        mean_ratio=ratio,
        proportion=ProportionTest(
            baseline_events=test.baseline_events,
            baseline_total=test.baseline_total,
            canary_events=test.canary_events,
            canary_total=test.canary_total,
            baseline_rate=test.baseline_rate,
            canary_rate=test.canary_rate,
            difference=test.difference,
            p_value=test.p_value,
            required_total=needed,
        ),
    )
    rates = (
        f"canary {_pct(test.canary_rate)} ({test.canary_events}/{test.canary_total}) vs "
        f"baseline {_pct(test.baseline_rate)} ({test.baseline_events}/{test.baseline_total})"
    )
    significant = test.p_value < alpha
    margin = rule.allowed_rate_increase
    if rule.direction.watches_increase and significant and test.difference > margin:
        return _critical(
            replace(
                result,
                classification=Classification.HIGH,
                reason=(
                    f"higher on the canary: {rates}, +{100 * test.difference:.3g} points "
                    f"(Fisher exact p={test.p_value:.3g}, allowed +{100 * margin:.3g} points)"
                ),
            ),
            rule,
        )
    if rule.direction.watches_decrease and significant and -test.difference > margin:
        return _critical(
            replace(
                result,
                classification=Classification.LOW,
                reason=(
                    f"lower on the canary: {rates}, {100 * test.difference:.3g} points "
                    f"(Fisher exact p={test.p_value:.3g}, allowed -{100 * margin:.3g} points)"
                ),
            ),
            rule,
        )
    fewest = min(test.canary_total, test.baseline_total)
    if fewest < needed:
        return replace(
            result,
            classification=Classification.NODATA,
            reason=(
                f"not enough traffic to trust a pass: {rates}; seeing a "
                f"+{100 * rule.detectable_increase:.3g}-point increase needs {needed} requests "
                f"per track ({needed - fewest} missing)"
            ),
            missing_samples=needed - fewest,
        )
    return replace(
        result,
        reason=f"no significant increase: {rates} (Fisher exact p={test.p_value:.3g})",
    )
