"""Event-count comparison for rate metrics (errors out of requests).

Sparse error series are mostly zeros; a rank test over per-step ratios sees ties and passes
them. Counting every error and every request over the window and testing the two proportions
exactly judges them on the evidence there is, and says how many requests a verdict needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

from genesis.gate.verdict import Direction

# The power the minimum-traffic rule asks for: with less traffic than this, a real increase of
# the configured size would go unnoticed too often for a PASS to mean anything.
REQUIRED_POWER = 0.8


@dataclass(frozen=True)
class Counts:
    """Events (e.g. 5xx responses) out of a total (requests) over the analysis window."""

    events: float
    total: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.events) and math.isfinite(self.total)):
            raise ValueError(f"counts must be finite, got {self.events} of {self.total}")
        if self.events < 0 or self.total < 0:
            raise ValueError(f"counts cannot be negative, got {self.events} of {self.total}")
        if self.events > self.total + 0.5:
            raise ValueError(f"events ({self.events}) exceed the total ({self.total})")


@dataclass(frozen=True)
class ProportionComparison:
    baseline_events: int
    baseline_total: int
    canary_events: int
    canary_total: int
    p_value: float

    @property
    def baseline_rate(self) -> float:
        return self.baseline_events / self.baseline_total

    @property
    def canary_rate(self) -> float:
        return self.canary_events / self.canary_total

    @property
    def difference(self) -> float:
        return self.canary_rate - self.baseline_rate


def _whole(value: float) -> int:
    # Prometheus' increase() extrapolates to fractional counts; the test needs whole events.
    return round(value)


def compare_proportions(
    canary: Counts, baseline: Counts, direction: Direction
) -> ProportionComparison:
    """Fisher's exact test; one-sided in the direction that would be a regression."""
    c_total, b_total = _whole(canary.total), _whole(baseline.total)
    if c_total <= 0 or b_total <= 0:
        raise ValueError("both tracks need at least one request to compare rates")
    c_events = min(_whole(canary.events), c_total)
    b_events = min(_whole(baseline.events), b_total)
    alternative = {
        Direction.INCREASE: "greater",
        Direction.DECREASE: "less",
        Direction.EITHER: "two-sided",
    }[direction]
    table = [[c_events, c_total - c_events], [b_events, b_total - b_events]]
    result = stats.fisher_exact(table, alternative=alternative)
    return ProportionComparison(
        baseline_events=b_events,
        baseline_total=b_total,
        canary_events=c_events,
        canary_total=c_total,
        p_value=float(result.pvalue),
    )


def required_total(baseline_rate: float, detectable: float, alpha: float) -> int:
    """Requests per track for a one-sided test at `alpha` to see `detectable` with 80% power.

    The usual normal-approximation sample size for two proportions. A baseline with no errors
    at all is treated as having half an error per thousand requests, so the answer stays finite
    and does not depend on luck in a short window.
    """
    if not 0.0 < detectable < 1.0:
        raise ValueError(f"the detectable increase must be between 0 and 1, got {detectable}")
    p1 = min(max(baseline_rate, 0.0005), 1.0 - detectable - 1e-9)
    p2 = p1 + detectable
    pooled = (p1 + p2) / 2
    z_alpha = float(stats.norm.ppf(1.0 - alpha))
    z_beta = float(stats.norm.ppf(REQUIRED_POWER))
    numerator = z_alpha * math.sqrt(2 * pooled * (1 - pooled)) + z_beta * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return math.ceil((numerator / detectable) ** 2)
