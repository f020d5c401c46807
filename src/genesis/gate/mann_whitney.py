"""Mann-Whitney U test with the Hodges-Lehmann shift and its confidence interval.

The interval is computed the way R's wilcox.test does it asymptotically (and Kayenta's
MannWhitney port of it): invert the normal approximation of the rank-sum statistic, with the
tie correction and the continuity correction, by root finding over candidate shifts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from genesis.gate.preprocess import FloatArray

# Relative to the span of pairwise differences. R's uniroot uses 1e-4 absolute, which is coarse
# for latencies in seconds; Brent converges fast, so a tight tolerance costs a few evaluations.
_ROOT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ShiftEstimate:
    u_statistic: float
    p_value: float
    estimate: float
    ci_low: float
    ci_high: float


class _RankSum:
    """The standardized canary rank sum as a function of a shift subtracted from the canary.

    The rank sum minus its minimum is the count of (canary - shift, baseline) pairs in which
    the canary is larger, ties counting half; with the pairwise differences sorted once, each
    evaluation is a binary search instead of a re-ranking.
    """

    def __init__(self, canary: FloatArray, baseline: FloatArray) -> None:
        self.canary = canary
        self.baseline = baseline
        self.m, self.n = canary.size, baseline.size
        self.differences = np.sort(np.subtract.outer(canary, baseline).ravel())

    def __call__(self, shift: float) -> float:
        m, n = self.m, self.n
        above = np.searchsorted(self.differences, shift, side="right")
        at_or_above = np.searchsorted(self.differences, shift, side="left")
        dz = (self.differences.size - above) + 0.5 * (above - at_or_above) - m * n / 2
        _, tie_sizes = np.unique(
            np.concatenate([self.canary - shift, self.baseline]), return_counts=True
        )
        tie_term = float(np.sum(tie_sizes.astype(np.float64) ** 3 - tie_sizes))
        variance = (m * n / 12) * ((m + n + 1) - tie_term / ((m + n) * (m + n - 1)))
        if variance <= 0:
            return 0.0  # every value tied: no evidence either way
        correction = 0.5 * float(np.sign(dz))
        return float((dz - correction) / np.sqrt(variance))


def _invert(rank_sum: _RankSum, z: float) -> float:
    """The shift at which the standardized rank sum equals `z` (it falls as the shift grows)."""
    low = float(rank_sum.differences[0])
    high = float(rank_sum.differences[-1])

    def f(shift: float) -> float:
        return rank_sum(shift) - z

    f_low, f_high = f(low), f(high)
    if f_low <= 0:
        return low
    if f_high >= 0:
        return high
    tolerance = _ROOT_TOLERANCE * (high - low)
    root: float = optimize.brentq(f, low, high, xtol=tolerance)
    return root


def shift_estimate(canary: FloatArray, baseline: FloatArray, confidence: float) -> ShiftEstimate:
    """Two-sided test and interval for the shift canary - baseline; both need 2+ values."""
    if canary.size < 2 or baseline.size < 2:
        raise ValueError("Mann-Whitney needs at least two values on each side")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    test = stats.mannwhitneyu(canary, baseline, alternative="two-sided")
    z = float(stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    rank_sum = _RankSum(canary, baseline)
    return ShiftEstimate(
        u_statistic=float(test.statistic),
        p_value=float(test.pvalue),
        estimate=_invert(rank_sum, 0.0),
        ci_low=_invert(rank_sum, z),
        ci_high=_invert(rank_sum, -z),
    )
