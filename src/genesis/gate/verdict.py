"""Verdicts and the per-metric results a judgment is made of.

Everything here is plain, immutable data: the judge builds it, reports render it, and nothing
in this module does I/O or statistics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    """The outcome of a gate, with the process exit code the CLI returns for it."""

    PASS = "PASS"  # noqa: S105 (a verdict, not a password)
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    ERROR = "ERROR"

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]

    @property
    def severity(self) -> int:
        """Rank used to combine verdicts: evidence of harm outranks trouble measuring it."""
        return _SEVERITY[self]


_EXIT_CODES = {
    Verdict.PASS: 0,
    Verdict.FAIL: 1,
    Verdict.INCONCLUSIVE: 2,
    Verdict.ERROR: 3,
}

# Argo Rollouts' order (Successful < Inconclusive < Error < Failed): a measured failure is
# worse news than a measurement that could not be made.
_SEVERITY = {
    Verdict.PASS: 0,
    Verdict.INCONCLUSIVE: 1,
    Verdict.ERROR: 2,
    Verdict.FAIL: 3,
}


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe of several verdicts (FAIL > ERROR > INCONCLUSIVE > PASS)."""
    ranked = list(verdicts)
    if not ranked:
        raise ValueError("worst() needs at least one verdict; nothing was judged")
    return max(ranked, key=lambda v: v.severity)


class Direction(StrEnum):
    """Which way a metric may not move on the canary."""

    INCREASE = "increase"  # higher is worse: latency, error rate
    DECREASE = "decrease"  # lower is worse: throughput, success rate
    EITHER = "either"

    @property
    def watches_increase(self) -> bool:
        return self in (Direction.INCREASE, Direction.EITHER)

    @property
    def watches_decrease(self) -> bool:
        return self in (Direction.DECREASE, Direction.EITHER)


class Classification(StrEnum):
    """How one metric compares on the canary against the baseline."""

    PASS = "PASS"  # noqa: S105 (a classification, not a password)
    HIGH = "HIGH"  # canary's level is significantly higher
    LOW = "LOW"  # canary's level is significantly lower
    WIDER = "WIDER"  # canary's spread (variance, tail) is significantly larger
    NODATA = "NODATA"  # too little data to claim anything; never counts as a pass
    ERROR = "ERROR"  # the inputs could not be judged (malformed data)

    @property
    def is_failure(self) -> bool:
        return self in (Classification.HIGH, Classification.LOW, Classification.WIDER)

    @property
    def is_scored(self) -> bool:
        """Scores are shares of passes among metrics that could be judged at all."""
        return self is Classification.PASS or self.is_failure


@dataclass(frozen=True)
class SampleSummary:
    """Descriptive numbers for one track's series after preprocessing."""

    count: int
    dropped_nonfinite: int = 0
    dropped_outliers: int = 0
    mean: float | None = None
    median: float | None = None
    p99: float | None = None
    std: float | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class LocationTest:
    """Mann-Whitney U with the Hodges-Lehmann confidence interval, judged the Kayenta way."""

    u_statistic: float
    p_value: float
    estimate: float  # Hodges-Lehmann shift, canary minus baseline
    ci_low: float
    ci_high: float
    bound: float  # tolerance x |estimate|; the interval must clear it to count
    confidence: float


@dataclass(frozen=True)
class SpreadTest:
    """Brown-Forsythe (Levene around the median) test for a change in spread."""

    statistic: float
    p_value: float
    ratio: float | None  # canary / baseline mean absolute deviation from the median
    confidence: float


@dataclass(frozen=True)
class ProportionTest:
    """Fisher's exact test on event counts (errors out of requests) over the whole window."""

    baseline_events: int
    baseline_total: int
    canary_events: int
    canary_total: int
    baseline_rate: float
    canary_rate: float
    difference: float  # canary rate minus baseline rate
    p_value: float
    required_total: int  # requests each track needs to detect the configured increase


@dataclass(frozen=True)
class MetricResult:
    """One metric's classification, every number behind it and a sentence saying why."""

    name: str
    classification: Classification
    reason: str
    kind: str = "continuous"
    direction: Direction = Direction.INCREASE
    group: str = "default"
    critical: bool = False
    critical_failure: bool = False  # a critical metric failed badly enough to fail the run
    dry_run: bool = False
    baseline: SampleSummary | None = None
    canary: SampleSummary | None = None
    mean_ratio: float | None = None  # effect size: canary mean / baseline mean
    location: LocationTest | None = None
    spread: SpreadTest | None = None
    proportion: ProportionTest | None = None
    missing_samples: int = 0  # how many more samples (or requests) a verdict needs


@dataclass(frozen=True)
class GroupScore:
    name: str
    score: float | None  # None when no metric of the group could be judged
    weight: float
    passed: int
    failed: int
    nodata: int


@dataclass(frozen=True)
class Judgment:
    """The comparative judge's answer for a whole analysis."""

    verdict: Verdict
    score: float
    reason: str
    metrics: tuple[MetricResult, ...]
    groups: tuple[GroupScore, ...] = field(default=())
    pass_threshold: float = 95.0
    marginal_threshold: float = 75.0


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity; reports carry them as null."""
    if value is None or not math.isfinite(value):
        return None
    return value
