"""Brown-Forsythe test for a change in spread, the check Mann-Whitney cannot make.

A canary whose median stays put while its values scatter more widely (stalls, GC pauses,
a tail that grows) has the same ranks on average, so a rank test passes it. Comparing the
absolute deviations from each side's median catches it, and is robust to skewed latency data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from genesis.gate.preprocess import FloatArray


@dataclass(frozen=True)
class SpreadComparison:
    statistic: float
    p_value: float
    ratio: float | None  # canary / baseline mean absolute deviation from the median


def mean_absolute_deviation(values: FloatArray) -> float:
    return float(np.mean(np.abs(values - np.median(values))))


def spread_ratio(canary: FloatArray, baseline: FloatArray) -> float | None:
    """Canary spread over baseline spread; None when the baseline does not vary at all."""
    base = mean_absolute_deviation(baseline)
    can = mean_absolute_deviation(canary)
    if base == 0.0:
        return None if can == 0.0 else float("inf")
    return can / base


def compare_spread(canary: FloatArray, baseline: FloatArray) -> SpreadComparison:
    if canary.size < 2 or baseline.size < 2:
        raise ValueError("Brown-Forsythe needs at least two values on each side")
    ratio = spread_ratio(canary, baseline)
    if ratio is None:
        # Both sides constant: no spread on either side, so nothing to test.
        return SpreadComparison(statistic=0.0, p_value=1.0, ratio=None)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = stats.levene(canary, baseline, center="median")
    statistic = float(result.statistic)
    p_value = float(result.pvalue)
    if not np.isfinite(p_value):
        # Every deviation equal within each side: the test degenerates to 0/0 or x/0, and the
        # answer is plain: the same spread on both sides, or a perfectly separated one.
        same = ratio == 1.0
        statistic, p_value = (0.0, 1.0) if same else (float("inf"), 0.0)
    return SpreadComparison(statistic=statistic, p_value=p_value, ratio=ratio)
