"""When a gate measures what: the schedule of a live or retro run, as plain data.

Pure: the runner asks the plan when to query, and nothing here reads a clock or a server.

- **live** (`genesis gate run`): each threshold metric is measured `count` times, every
  `interval`, the first after `initialDelay`; the comparison covers the `window` that starts
  after `initialDelay`, and runs when that window has passed.
- **retro** (`genesis gate retro --from --to`): the window is given and already past. Threshold
  metrics are measured as a live run started at `--from` would have measured them (every
  `interval`, at most `count` times, within the window; `initialDelay` is not applied, since the
  window is chosen by hand), and the comparison covers the whole window.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from genesis.gate.duration import format_duration, parse_duration
from genesis.gate.spec import AnalysisSpec


class Mode(StrEnum):
    LIVE = "live"
    RETRO = "retro"


@dataclass(frozen=True)
class CheckSchedule:
    """The times (unix seconds) at which one threshold metric is measured."""

    metric: str
    times: tuple[float, ...]
    interval: float


@dataclass(frozen=True)
class Plan:
    mode: Mode
    start: float
    checks: tuple[CheckSchedule, ...]
    # The comparison window; None when the analysis has no comparisons.
    comparison: tuple[float, float] | None

    @property
    def end(self) -> float:
        """When the last planned query is due."""
        ends = [c.times[-1] for c in self.checks if c.times]
        if self.comparison is not None:
            ends.append(self.comparison[1])
        return max(ends, default=self.start)

    @property
    def window_variable(self) -> str | None:
        """`{{window}}` for comparison queries: the length of the compared window."""
        if self.comparison is None:
            return None
        start, end = self.comparison
        return format_duration(round(end - start))


def _interval(spec: AnalysisSpec, metric_interval: str | None) -> float:
    return parse_duration(metric_interval or spec.interval)


def live_plan(spec: AnalysisSpec, start: float) -> Plan:
    delay = parse_duration(spec.initial_delay)
    checks = []
    for metric in spec.metrics:
        if not metric.checks_threshold:
            continue
        every = _interval(spec, metric.interval)
        count = metric.count or spec.count
        times = tuple(start + delay + k * every for k in range(count))
        checks.append(CheckSchedule(metric.name, times, every))
    comparison = None
    if spec.rules():
        begin = start + delay
        comparison = (begin, begin + parse_duration(spec.window))
    return Plan(Mode.LIVE, start, tuple(checks), comparison)


def retro_plan(spec: AnalysisSpec, start: float, end: float) -> Plan:
    if end <= start:
        raise ValueError("a retro window must end after it starts")
    checks = []
    for metric in spec.metrics:
        if not metric.checks_threshold:
            continue
        every = _interval(spec, metric.interval)
        count = metric.count or spec.count
        fitting = int((end - start) // every) + 1
        times = tuple(start + k * every for k in range(min(count, fitting)))
        checks.append(CheckSchedule(metric.name, times, every))
    comparison = (start, end) if spec.rules() else None
    return Plan(Mode.RETRO, start, tuple(checks), comparison)
