"""What a person watching `genesis gate run` sees on stderr while it runs.

On a terminal, a live rich table (one row per metric: its threshold check's phase and last
measurement, and whether it is compared) that redraws after each measurement. Elsewhere (CI
logs), one plain line per event, since a redrawn table leaves only noise in a log file. Stdout
stays free for whatever the caller pipes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from genesis.gate.measurement import Measurement, MetricStatus, Phase
from genesis.gate.plan import Plan
from genesis.gate.spec import AnalysisSpec
from genesis.gate.verdict import Verdict

if TYPE_CHECKING:
    from genesis.gate.run import GateResult

_STYLES = {
    Phase.PENDING: "dim",
    Phase.RUNNING: "cyan",
    Phase.SUCCESSFUL: "green",
    Phase.FAILED: "bold red",
    Phase.INCONCLUSIVE: "yellow",
    Phase.ERROR: "magenta",
}
_VERDICT_STYLES = {
    Verdict.PASS: "bold green",
    Verdict.FAIL: "bold red",
    Verdict.INCONCLUSIVE: "bold yellow",
    Verdict.ERROR: "bold magenta",
}


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%SZ")


def _value(value: tuple[float, ...] | None) -> str:
    if value is None:
        return "-"
    if not value:
        return "(no series)"
    shown = ", ".join("NaN" if math.isnan(v) else f"{v:.4g}" for v in value[:3])
    return shown + (f" (+{len(value) - 3})" if len(value) > 3 else "")


class _Row:
    def __init__(self, name: str, dry_run: bool, compared: bool, count: int | None) -> None:
        self.name = name
        self.dry_run = dry_run
        self.compared = compared
        self.count = count
        self.taken = 0
        self.phase: Phase | None = Phase.PENDING if count else None
        self.value = "-"
        self.message = "waiting" if count else ""
        self.comparison = "pending" if compared else ""


class GateDisplay:
    """An Observer for GateRun that draws progress on a rich console (stderr by default)."""

    def __init__(self, console: Console | None = None) -> None:
        if console is None:
            console = Console(stderr=True)
            if not console.is_terminal:
                # A CI log has no width of its own; the default 80 columns fold every reason.
                console = Console(stderr=True, width=160)
        self.console = console
        self.rows: dict[str, _Row] = {}
        self._live: Live | None = None
        self._title = "genesis gate"

    # -- Observer -------------------------------------------------------------------------------

    def planned(self, plan: Plan, spec: AnalysisSpec) -> None:
        counts = {c.metric: len(c.times) for c in plan.checks}
        for metric in spec.metrics:
            self.rows[metric.name] = _Row(
                metric.name, metric.dry_run, metric.compare is not None, counts.get(metric.name)
            )
        window = (
            f", comparing {_clock(plan.comparison[0])}-{_clock(plan.comparison[1])}"
            if plan.comparison
            else ""
        )
        self._title = f"genesis gate {plan.mode}{window}"
        if self.console.is_terminal:
            self._live = Live(self.table(), console=self.console, auto_refresh=False)
            self._live.start()
        else:
            self.console.print(f"{self._title}: until {_clock(plan.end)}", highlight=False)

    def measured(self, status: MetricStatus, measurement: Measurement, at: float) -> None:
        row = self.rows[status.name]
        row.taken += 1
        row.phase = status.phase
        row.value = _value(measurement.value)
        row.message = measurement.message if not status.phase.completed else status.message
        if self._live is None:
            self.console.print(
                f"{_clock(at)} {status.name}: {measurement.phase.value} ({row.value}): "
                f"{measurement.message} -> {status.phase.value}",
                highlight=False,
                markup=False,
            )
        self._refresh()

    def comparing(self, start: float, end: float) -> None:
        for row in self.rows.values():
            if row.compared:
                row.comparison = "comparing..."
        if self._live is None:
            self.console.print(
                f"comparing canary against baseline from {_clock(start)} to {_clock(end)}",
                highlight=False,
            )
        self._refresh()

    def finished(self, result: GateResult) -> None:
        classified = {m.name: m.classification.value for m in result.judgment.metrics}
        for row in self.rows.values():
            if row.compared:
                row.comparison = classified.get(row.name, "not compared")
        for check in result.checks:
            if (checked := self.rows.get(check.name)) is not None:
                checked.phase, checked.message = check.phase, check.message
        if self._live is not None:
            self._refresh()
            self._live.stop()
            self._live = None
        else:
            self.console.print(self.table())
        verdict = result.verdict
        self.console.print(
            Text.assemble(
                ("verdict: ", "bold"),
                (verdict.value, _VERDICT_STYLES[verdict]),
                f" (exit {verdict.exit_code}, score {result.judgment.score:g}) ",
                result.judgment.reason,
            )
        )

    # -- drawing --------------------------------------------------------------------------------

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.table(), refresh=True)

    def table(self) -> Table:
        table = Table(title=self._title, expand=False)
        for column in ("metric", "check", "measured", "last value", "detail", "compared"):
            table.add_column(column, overflow="fold")
        for row in self.rows.values():
            name = row.name + (" (dry run)" if row.dry_run else "")
            phase = (
                Text(row.phase.value, style=_STYLES[row.phase]) if row.phase else Text("-", "dim")
            )
            measured = f"{row.taken}/{row.count}" if row.count else "-"
            table.add_row(name, phase, measured, row.value, row.message, row.comparison or "-")
        return table
