"""Argo-style threshold measurements and their limits, as a pure state machine.

Each interval the gate queries the canary and turns the answer into a Measurement (successful,
failed, inconclusive or error) with the metric's conditions. A metric's progress is a tally of
its measurements, and `assess` says whether the metric is still running or done, and how:
failed once failures exceed failureLimit, inconclusive once inconclusive measurements exceed
inconclusiveLimit, error once consecutive errors exceed consecutiveErrorLimit. A query error
is an error, never a failure; an empty or NaN result is inconclusive, never a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from genesis.gate.expression import Condition, EvaluationError, NoDataError
from genesis.gate.verdict import Verdict, worst

DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4  # Argo Rollouts' default


class Phase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"

    @property
    def completed(self) -> bool:
        return self not in (Phase.PENDING, Phase.RUNNING)

    @property
    def verdict(self) -> Verdict | None:
        return _VERDICTS.get(self)


_VERDICTS = {
    Phase.SUCCESSFUL: Verdict.PASS,
    Phase.FAILED: Verdict.FAIL,
    Phase.INCONCLUSIVE: Verdict.INCONCLUSIVE,
    Phase.ERROR: Verdict.ERROR,
}


@dataclass(frozen=True)
class Measurement:
    phase: Phase
    value: tuple[float, ...] | None
    message: str


def measure(
    result: Sequence[float] | float | None,
    success: Condition | None,
    failure: Condition | None,
    error: str | None = None,
) -> Measurement:
    """Classify one query answer with the metric's conditions (Argo's rules).

    With only a success condition, not succeeding is failing; with only a failure condition,
    not failing is succeeding; with both, neither holding is inconclusive; with none, any
    answer succeeds. `error` is the query's own failure (timeout, bad PromQL, server down).
    """
    if error is not None:
        return Measurement(Phase.ERROR, None, f"query failed: {error}")
    if result is None:
        return Measurement(Phase.ERROR, None, "query gave no answer")
    value = (float(result),) if isinstance(result, int | float) else tuple(map(float, result))
    try:
        succeeded = success(value) if success is not None else None
        failed = failure(value) if failure is not None else None
    except NoDataError as exc:
        return Measurement(Phase.INCONCLUSIVE, value, str(exc))
    except EvaluationError as exc:
        return Measurement(Phase.ERROR, value, str(exc))
    if failed:
        return Measurement(Phase.FAILED, value, f"failureCondition {failure.source!r} held")  # type: ignore[union-attr]
    if succeeded is None and failed is None:
        return Measurement(Phase.SUCCESSFUL, value, "no condition to check")
    if succeeded is False and failed is None:
        return Measurement(
            Phase.FAILED,
            value,
            f"successCondition {success.source!r} did not hold",  # type: ignore[union-attr]
        )
    if succeeded is None or succeeded:
        return Measurement(Phase.SUCCESSFUL, value, "conditions met")
    return Measurement(
        Phase.INCONCLUSIVE, value, "neither the success nor the failure condition held"
    )


@dataclass(frozen=True)
class Limits:
    count: int | None = None  # measurements to take; None runs until the gate stops
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = DEFAULT_CONSECUTIVE_ERROR_LIMIT

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError(f"count must be at least 1, got {self.count}")
        for name in ("failure_limit", "inconclusive_limit", "consecutive_error_limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative, got {getattr(self, name)}")


@dataclass(frozen=True)
class Progress:
    """The tally of one metric's measurements so far."""

    measurements: tuple[Measurement, ...] = ()
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0

    def record(self, measurement: Measurement) -> Progress:
        phase = measurement.phase
        return replace(
            self,
            measurements=(*self.measurements, measurement),
            successful=self.successful + (phase is Phase.SUCCESSFUL),
            failed=self.failed + (phase is Phase.FAILED),
            inconclusive=self.inconclusive + (phase is Phase.INCONCLUSIVE),
            errors=self.errors + (phase is Phase.ERROR),
            consecutive_errors=self.consecutive_errors + 1 if phase is Phase.ERROR else 0,
        )


def assess(limits: Limits, progress: Progress, terminating: bool = False) -> tuple[Phase, str]:
    """Where a metric stands. Checked from the strongest evidence down: a measured failure
    outranks inconclusive data, which outranks trouble querying (Argo lets a later check
    overwrite an earlier one, so a run of errors could hide failures)."""
    if progress.failed > limits.failure_limit:
        return Phase.FAILED, (
            f"{progress.failed} failed measurements exceed failureLimit {limits.failure_limit}"
        )
    if progress.inconclusive > limits.inconclusive_limit:
        return Phase.INCONCLUSIVE, (
            f"{progress.inconclusive} inconclusive measurements exceed inconclusiveLimit "
            f"{limits.inconclusive_limit}"
        )
    if progress.consecutive_errors > limits.consecutive_error_limit:
        return Phase.ERROR, (
            f"{progress.consecutive_errors} consecutive query errors exceed "
            f"consecutiveErrorLimit {limits.consecutive_error_limit}"
        )
    taken = len(progress.measurements)
    done = limits.count is not None and taken >= limits.count
    if not (done or terminating):
        return (
            (Phase.RUNNING, f"{taken} measurements taken")
            if taken
            else (
                Phase.PENDING,
                "no measurement yet",
            )
        )
    if progress.successful == 0:
        # Argo calls this Successful; with nothing measured successfully that is a guess.
        return Phase.INCONCLUSIVE, f"none of {taken} measurements succeeded"
    return Phase.SUCCESSFUL, (
        f"{progress.successful} of {taken} measurements successful, within the limits"
    )


@dataclass(frozen=True)
class MetricStatus:
    name: str
    phase: Phase
    message: str
    dry_run: bool = False


def run_verdict(statuses: Sequence[MetricStatus]) -> Verdict | None:
    """The worst verdict of the metrics that count; None while any of them is still running.

    Dry-run metrics are measured and reported but never decide the run. With no counted
    metric the threshold checks raise no objection (PASS); lint warns about such a spec.
    """
    counted = [s for s in statuses if not s.dry_run]
    if any(not s.phase.completed for s in counted):
        return None
    verdicts = [s.phase.verdict for s in counted]
    return worst(v for v in verdicts if v is not None) if counted else Verdict.PASS
