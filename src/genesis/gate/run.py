"""A gate run: spec -> rendered PromQL -> Prometheus -> measurements and judge -> one verdict.

This module sequences the work and holds no decisions of its own: when to query comes from
`plan`, how an answer becomes a measurement from `measurement`, how measurements become a
phase from `measurement.assess`, how series become a classification from `judge`, and how both
become the run's verdict from `outcome`. The only I/O is the Prometheus client it is given,
the clock and the observer that shows progress.

Two modes share it: `run_live` (during a deploy, on the wall clock) and `run_retro` (a past
window, judged at once through range queries).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from genesis.gate import answers, report
from genesis.gate.classify import MetricData
from genesis.gate.duration import parse_duration
from genesis.gate.expression import Condition
from genesis.gate.judge import judge
from genesis.gate.measurement import (
    Limits,
    Measurement,
    MetricStatus,
    Phase,
    Progress,
    assess,
    measure,
)
from genesis.gate.outcome import combine
from genesis.gate.plan import CheckSchedule, Mode, Plan, live_plan, retro_plan
from genesis.gate.prometheus import PrometheusClient, PrometheusError
from genesis.gate.proportions import Counts
from genesis.gate.rules import MetricKind
from genesis.gate.spec import AnalysisSpec, Compare, MetricSpec, templates_of
from genesis.gate.template import GATE_SET_VARIABLES, TemplateError, render
from genesis.gate.verdict import Judgment, Verdict


class GateSetupError(ValueError):
    """The run cannot start as asked (an unknown --var, a value that breaks a query)."""


@dataclass(frozen=True)
class TimedMeasurement:
    at: float
    measurement: Measurement


@dataclass
class _Check:
    """One threshold metric while the run goes on."""

    metric: MetricSpec
    schedule: CheckSchedule
    query: str
    success: Condition | None
    failure: Condition | None
    limits: Limits
    progress: Progress = field(default_factory=Progress)
    timeline: list[TimedMeasurement] = field(default_factory=list)
    status: MetricStatus | None = None

    def __post_init__(self) -> None:
        self.status = MetricStatus(
            self.metric.name, Phase.PENDING, "no measurement yet", self.metric.dry_run
        )

    @property
    def current(self) -> MetricStatus:
        assert self.status is not None
        return self.status

    def record(self, at: float, measurement: Measurement, terminating: bool = False) -> None:
        self.progress = self.progress.record(measurement)
        self.timeline.append(TimedMeasurement(at, measurement))
        self.settle(terminating)

    def settle(self, terminating: bool = False) -> None:
        phase, message = assess(self.limits, self.progress, terminating)
        self.status = MetricStatus(self.metric.name, phase, message, self.metric.dry_run)


class Observer(Protocol):
    """What a run tells the person waiting for it (a live table, a log, nothing)."""

    def planned(self, plan: Plan, spec: AnalysisSpec) -> None: ...

    def measured(self, status: MetricStatus, measurement: Measurement, at: float) -> None: ...

    def comparing(self, start: float, end: float) -> None: ...

    def finished(self, result: GateResult) -> None: ...


class SilentObserver:
    def planned(self, plan: Plan, spec: AnalysisSpec) -> None:
        return None

    def measured(self, status: MetricStatus, measurement: Measurement, at: float) -> None:
        return None

    def comparing(self, start: float, end: float) -> None:
        return None

    def finished(self, result: GateResult) -> None:
        return None


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class GateResult:
    """Everything a run found: the verdict and every number and measurement behind it."""

    mode: Mode
    plan: Plan
    judgment: Judgment  # the whole run's (verdict, score, reason, comparison metrics)
    comparison: Judgment | None  # the comparative judge's own answer
    checks: tuple[MetricStatus, ...]
    timelines: Mapping[str, tuple[TimedMeasurement, ...]]
    prometheus: str
    baseline_track: str
    canary_track: str
    started: float
    finished: float
    stopped_early: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        return self.judgment.verdict

    @property
    def exit_code(self) -> int:
        return self.judgment.verdict.exit_code

    def to_dict(self) -> dict[str, Any]:
        document = report.to_dict(self.judgment, self.checks)
        window = self.plan.comparison
        document.update(
            mode=self.mode.value,
            prometheus=self.prometheus,
            baseline_track=self.baseline_track,
            canary_track=self.canary_track,
            started=_iso(self.started),
            finished=_iso(self.finished),
            stopped_early=self.stopped_early,
            comparison_window=(
                {"start": _iso(window[0]), "end": _iso(window[1])} if window else None
            ),
            comparison_verdict=self.comparison.verdict.value if self.comparison else None,
            measurements={
                name: [
                    {
                        "time": _iso(t.at),
                        "phase": t.measurement.phase.value,
                        "value": report.plain(t.measurement.value),
                        "message": t.measurement.message,
                    }
                    for t in timeline
                ]
                for name, timeline in self.timelines.items()
            },
            **self.extra,
        )
        return document

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def to_markdown(self) -> str:
        text = report.to_markdown(self.judgment, self.checks, title=f"genesis gate {self.mode}")
        window = self.plan.comparison
        where = (
            f"compared {self.canary_track} against {self.baseline_track} from "
            f"{_iso(window[0])} to {_iso(window[1])}"
            if window
            else f"checked {self.canary_track}"
        )
        note = " (stopped early: a threshold check failed)" if self.stopped_early else ""
        return f"{text}\n_{where} on {self.prometheus}{note}._\n"


class GateRun:
    """One analysis against one Prometheus; `live()` or `retro(start, end)` runs it once."""

    def __init__(
        self,
        spec: AnalysisSpec,
        client: PrometheusClient,
        *,
        baseline_track: str | None = None,
        canary_track: str | None = None,
        variables: Mapping[str, str] | None = None,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.spec = spec
        self.client = client
        self.baseline_track = baseline_track or spec.baseline_track
        self.canary_track = canary_track or spec.canary_track
        if self.baseline_track == self.canary_track:
            raise GateSetupError(
                f"the baseline and canary tracks must differ (both are {self.canary_track!r})"
            )
        self.variables = dict(variables or {})
        self._check_variables()
        self.observer: Observer = observer or SilentObserver()
        self.clock = clock
        self.sleep = sleep

    # -- setup ----------------------------------------------------------------------------------

    def _check_variables(self) -> None:
        known = {"service", "namespace", *self.spec.variables}
        for name in self.variables:
            if name in GATE_SET_VARIABLES:
                raise GateSetupError(f"--var {name}: {{{{{name}}}}} is set by the gate itself")
            if name not in known:
                raise GateSetupError(
                    f"--var {name}: the analysis has no variable {name!r}; "
                    f"it knows: {', '.join(sorted(known))}"
                )
        # Render every query once for both tracks now, so a bad value stops the run before
        # it waits through an initial delay.
        for metric in self.spec.metrics:
            for _, template in templates_of(metric):
                for track in (self.baseline_track, self.canary_track):
                    self._render(template, track, self.spec.window)

    def _render(self, template: str, track: str, window: str) -> str:
        try:
            values = self.spec.variables_for(track, self.variables)
        except TemplateError as exc:
            raise GateSetupError(str(exc)) from None
        values["window"] = window
        try:
            return render(template, values)
        except TemplateError as exc:  # pragma: no cover - the spec was validated against these
            raise GateSetupError(str(exc)) from None

    def _checks(self, plan: Plan) -> list[_Check]:
        by_name = {m.name: m for m in self.spec.metrics}
        checks = []
        for schedule in plan.checks:
            metric = by_name[schedule.metric]
            assert metric.query is not None  # only metrics with a query are scheduled
            success, failure = metric.conditions()
            checks.append(
                _Check(
                    metric,
                    schedule,
                    self._render(metric.query, self.canary_track, self.spec.window),
                    success,
                    failure,
                    metric.limits(self.spec.count),
                )
            )
        return checks

    def _preflight(self) -> str | None:
        """Prometheus' own answer to a trivial query: a gate that cannot reach it says so at
        once rather than after its initial delay and every interval."""
        try:
            self.client.query("vector(1)")
        except PrometheusError as exc:
            if exc.kind != "query":
                return str(exc)
        return None

    # -- the two modes --------------------------------------------------------------------------

    def live(self) -> GateResult:
        started = self.clock()
        plan = live_plan(self.spec, started)
        checks = self._checks(plan)
        self.observer.planned(plan, self.spec)
        unreachable = self._preflight()
        if unreachable is not None:
            return self._unreachable(plan, checks, unreachable, started)
        due = sorted(
            ((at, index) for index, c in enumerate(checks) for at in c.schedule.times),
        )
        stopped_early = False
        for at, index in due:
            check = checks[index]
            if check.current.phase.completed:
                continue
            self._wait_until(at)
            now = self.clock()
            try:
                measurement = measure(
                    answers.vector(self.client.query(check.query)), check.success, check.failure
                )
            except PrometheusError as exc:
                measurement = measure(None, check.success, check.failure, error=str(exc))
            check.record(now, measurement)
            self.observer.measured(check.current, measurement, now)
            if check.current.phase is Phase.FAILED and not check.metric.dry_run:
                stopped_early = True  # nothing later can outrank a measured failure
                break
        comparison = None
        if plan.comparison is not None and not stopped_early:
            start, end = plan.comparison
            self._wait_until(end)
            self.observer.comparing(start, end)
            comparison = self._compare(start, end, self.spec.window)
        return self._result(plan, checks, comparison, started, stopped_early=stopped_early)

    def retro(self, start: float, end: float) -> GateResult:
        started = self.clock()
        plan = retro_plan(self.spec, start, end)
        checks = self._checks(plan)
        self.observer.planned(plan, self.spec)
        unreachable = self._preflight()
        if unreachable is not None:
            return self._unreachable(plan, checks, unreachable, started)
        for check in checks:
            times = check.schedule.times
            try:
                series = self.client.query_range(
                    check.query, times[0], times[-1], check.schedule.interval
                )
                results: list[tuple[float, ...] | None] = list(
                    answers.vectors_at(series, times, times[0], check.schedule.interval)
                )
                error = None
            except PrometheusError as exc:
                results, error = [None] * len(times), str(exc)
            for index, (at, value) in enumerate(zip(times, results, strict=True)):
                measurement = measure(value, check.success, check.failure, error=error)
                last = index == len(times) - 1
                # The window may hold fewer measurements than `count`: judge what it holds.
                check.record(at, measurement, terminating=last)
                self.observer.measured(check.current, measurement, at)
                if check.current.phase.completed:
                    break
        comparison = None
        if plan.comparison is not None:
            self.observer.comparing(start, end)
            comparison = self._compare(start, end, plan.window_variable or self.spec.window)
        return self._result(plan, checks, comparison, started)

    # -- comparisons ----------------------------------------------------------------------------

    def _compare(self, start: float, end: float, window: str) -> Judgment:
        data = {}
        for metric in self.spec.metrics:
            if metric.compare is not None:
                data[metric.name] = self._metric_data(
                    metric.name, metric.compare, start, end, window
                )
        return judge(self.spec.rules(), data, self.spec.judge_config())

    def _metric_data(
        self, name: str, compare: Compare, start: float, end: float, window: str
    ) -> MetricData:
        step = parse_duration(self.spec.step)
        series: dict[str, list[float]] = {}
        counts: dict[str, Counts | None] = {}
        try:
            for track in (self.baseline_track, self.canary_track):
                if compare.query is not None:
                    query = self._render(compare.query, track, window)
                    series[track] = answers.pooled(self.client.query_range(query, start, end, step))
                counts[track] = None
                if compare.total is not None:
                    requests = self.client.query(self._render(compare.total, track, window), end)
                    events = (
                        self.client.query(self._render(compare.events, track, window), end)
                        if compare.events is not None and compare.kind is MetricKind.PROPORTION
                        else []
                    )
                    counts[track] = answers.counts(events, requests)
        except (PrometheusError, ValueError) as exc:
            return MetricData(name, error=str(exc))
        return MetricData(
            name,
            baseline=series.get(self.baseline_track, []),
            canary=series.get(self.canary_track, []),
            baseline_counts=counts[self.baseline_track],
            canary_counts=counts[self.canary_track],
        )

    # -- endings --------------------------------------------------------------------------------

    def _wait_until(self, at: float) -> None:
        while (left := at - self.clock()) > 0:
            self.sleep(min(left, 1.0))

    def _unreachable(
        self, plan: Plan, checks: Sequence[_Check], message: str, started: float
    ) -> GateResult:
        judgment = Judgment(Verdict.ERROR, 0.0, f"cannot measure: {message}", ())
        for check in checks:
            check.status = MetricStatus(
                check.metric.name,
                Phase.ERROR,
                "not measured: Prometheus unreachable",
                check.metric.dry_run,
            )
        return self._result(plan, checks, None, started, overall=judgment)

    def _result(
        self,
        plan: Plan,
        checks: Sequence[_Check],
        comparison: Judgment | None,
        started: float,
        *,
        stopped_early: bool = False,
        overall: Judgment | None = None,
    ) -> GateResult:
        statuses = tuple(c.current for c in checks)
        result = GateResult(
            mode=plan.mode,
            plan=plan,
            judgment=overall or combine(comparison, statuses),
            comparison=comparison,
            checks=statuses,
            timelines={c.metric.name: tuple(c.timeline) for c in checks},
            prometheus=self.client.display_url,
            baseline_track=self.baseline_track,
            canary_track=self.canary_track,
            started=started,
            finished=self.clock(),
            stopped_early=stopped_early,
        )
        self.observer.finished(result)
        return result
