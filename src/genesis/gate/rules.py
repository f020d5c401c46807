"""What the comparative judge is told: per-metric rules and judge-wide settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from genesis.gate.preprocess import OutlierPolicy
from genesis.gate.verdict import Direction

# Kayenta's NetflixACAJudge defaults.
DEFAULT_CONFIDENCE = 0.98
DEFAULT_TOLERANCE = 0.25
DEFAULT_PASS_THRESHOLD = 95.0
DEFAULT_MARGINAL_THRESHOLD = 75.0


class MetricKind(StrEnum):
    CONTINUOUS = "continuous"  # a series of values per step: latency, saturation
    PROPORTION = "proportion"  # events out of a total: errors out of requests


@dataclass(frozen=True)
class MetricRule:
    """How one metric is compared; defaults are genesis' and documented in docs/gate.md."""

    name: str
    kind: MetricKind = MetricKind.CONTINUOUS
    direction: Direction = Direction.INCREASE
    group: str = "default"
    critical: bool = False
    dry_run: bool = False
    # Effect size (canary mean / baseline mean) a significant shift must also reach to count,
    # so a statistically clear but harmless difference does not fail a deploy.
    allowed_increase: float = 1.05
    allowed_decrease: float = 0.95
    # A critical metric fails the whole run only beyond these (Kayenta's criticalThresholds).
    critical_increase: float = 1.0
    critical_decrease: float = 1.0
    spread_check: bool = True
    allowed_spread_increase: float = 1.5
    min_samples: int = 10
    min_requests: int = 0
    outliers: OutlierPolicy = OutlierPolicy.KEEP
    # Proportion metrics: the absolute rate increase tolerated, and the increase the traffic
    # must be large enough to detect before a PASS is believed.
    allowed_rate_increase: float = 0.002
    detectable_increase: float = 0.01

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.name:
            problems.append("a metric needs a name")
        if self.allowed_increase < 1.0:
            problems.append(f"allowed_increase must be >= 1.0, got {self.allowed_increase}")
        if not 0.0 <= self.allowed_decrease <= 1.0:
            problems.append(f"allowed_decrease must be in [0, 1], got {self.allowed_decrease}")
        if self.critical_increase < 1.0:
            problems.append(f"critical_increase must be >= 1.0, got {self.critical_increase}")
        if not 0.0 <= self.critical_decrease <= 1.0:
            problems.append(f"critical_decrease must be in [0, 1], got {self.critical_decrease}")
        if self.allowed_spread_increase < 1.0:
            problems.append(
                f"allowed_spread_increase must be >= 1.0, got {self.allowed_spread_increase}"
            )
        if self.min_samples < 2:
            problems.append(f"min_samples must be at least 2, got {self.min_samples}")
        if self.min_requests < 0:
            problems.append(f"min_requests cannot be negative, got {self.min_requests}")
        if not 0.0 <= self.allowed_rate_increase < 1.0:
            problems.append(
                f"allowed_rate_increase must be in [0, 1), got {self.allowed_rate_increase}"
            )
        if not self.allowed_rate_increase < self.detectable_increase < 1.0:
            problems.append(
                "detectable_increase must lie between allowed_rate_increase and 1, got "
                f"{self.detectable_increase}"
            )
        if problems:
            raise ValueError(f"metric rule {self.name!r}: " + "; ".join(problems))


@dataclass(frozen=True)
class JudgeConfig:
    confidence: float = DEFAULT_CONFIDENCE
    tolerance: float = DEFAULT_TOLERANCE
    # The spread test runs beside the location test on every continuous metric, so it gets a
    # stricter level: together they stay within a 1% false-alarm budget on A/A (see
    # docs/benchmarks.md).
    spread_confidence: float = 0.99
    pass_threshold: float = DEFAULT_PASS_THRESHOLD
    marginal_threshold: float = DEFAULT_MARGINAL_THRESHOLD
    group_weights: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name in ("confidence", "spread_confidence"):
            value = getattr(self, name)
            if not 0.5 <= value < 1.0:
                problems.append(f"{name} must be in [0.5, 1), got {value}")
        if self.tolerance < 0:
            problems.append(f"tolerance cannot be negative, got {self.tolerance}")
        if not 0 <= self.marginal_threshold <= self.pass_threshold <= 100:
            problems.append(
                "thresholds need 0 <= marginal <= pass <= 100, got "
                f"marginal={self.marginal_threshold} pass={self.pass_threshold}"
            )
        negative = sorted(g for g, w in self.group_weights.items() if w < 0)
        if negative:
            problems.append(f"group weights cannot be negative: {', '.join(negative)}")
        if sum(self.group_weights.values()) > 100.0 + 1e-9:
            problems.append(
                f"group weights add up to {sum(self.group_weights.values()):g}, more than 100"
            )
        if problems:
            raise ValueError("judge config: " + "; ".join(problems))
