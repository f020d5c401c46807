"""Reports of a judgment: a JSON document and Markdown for $GITHUB_STEP_SUMMARY.

Pure rendering: every number behind a verdict is shown, with the test statistic and the
sentence saying why, so a judgment can be explained without rerunning it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from enum import Enum
from typing import Any

from genesis.gate.measurement import MetricStatus
from genesis.gate.verdict import Judgment, MetricResult, SampleSummary


def plain(value: Any) -> Any:
    """JSON-ready: enums as their values, NaN and infinities as null, tuples as lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def to_dict(judgment: Judgment, checks: Sequence[MetricStatus] = ()) -> dict[str, Any]:
    document: dict[str, Any] = plain(judgment)
    document["exit_code"] = judgment.verdict.exit_code
    document["checks"] = [plain(c) for c in checks]
    return document


def to_json(judgment: Judgment, checks: Sequence[MetricStatus] = ()) -> str:
    return json.dumps(to_dict(judgment, checks), indent=2, allow_nan=False)


def _n(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _track(summary: SampleSummary | None) -> str:
    if summary is None:
        return "-"
    text = f"median {_n(summary.median)}, p99 {_n(summary.p99)}, n={summary.count}"
    if summary.dropped_nonfinite:
        text += f" ({summary.dropped_nonfinite} NaN dropped)"
    return text


def _sides(metric: MetricResult) -> tuple[str, str]:
    if metric.proportion is not None:
        p = metric.proportion
        return (
            f"{100 * p.canary_rate:.3g}% ({p.canary_events}/{p.canary_total})",
            f"{100 * p.baseline_rate:.3g}% ({p.baseline_events}/{p.baseline_total})",
        )
    return _track(metric.canary), _track(metric.baseline)


def _statistics(metric: MetricResult) -> str:
    parts = []
    if metric.proportion is not None:
        p = metric.proportion
        parts.append(f"Fisher p={p.p_value:.3g}, Δ={100 * p.difference:+.3g} pp")
    if metric.location is not None:
        loc = metric.location
        parts.append(
            f"Mann-Whitney U={loc.u_statistic:g} p={loc.p_value:.3g}, shift {_n(loc.estimate)} "
            f"[{_n(loc.ci_low)}, {_n(loc.ci_high)}] vs ±{_n(loc.bound)}"
        )
    if metric.spread is not None:
        s = metric.spread
        parts.append(f"Brown-Forsythe W={_n(s.statistic)} p={s.p_value:.3g}, spread x{_n(s.ratio)}")
    if metric.mean_ratio is not None:
        parts.append(f"mean ratio {_n(metric.mean_ratio)}")
    return "; ".join(parts) or "-"


def to_markdown(
    judgment: Judgment, checks: Sequence[MetricStatus] = (), title: str = "genesis gate"
) -> str:
    lines = [
        f"## {title}: {judgment.verdict.value} (score {judgment.score:g})",
        "",
        _cell(judgment.reason),
        "",
        f"Pass at {judgment.pass_threshold:g}, marginal at {judgment.marginal_threshold:g}; "
        f"exit code {judgment.verdict.exit_code}.",
        "",
    ]
    if judgment.metrics:
        lines += [
            "| metric | result | canary | baseline | statistics | why |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for metric in judgment.metrics:
            flags = [metric.group]
            if metric.critical:
                flags.append("critical")
            if metric.dry_run:
                flags.append("dry run")
            canary, baseline = _sides(metric)
            lines.append(
                f"| {_cell(metric.name)} ({', '.join(flags)}) | {metric.classification.value} | "
                f"{_cell(canary)} | {_cell(baseline)} | {_cell(_statistics(metric))} | "
                f"{_cell(metric.reason)} |"
            )
        lines.append("")
    if judgment.groups:
        lines += [
            "| group | weight | score | passed | failed | no data |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for group in judgment.groups:
            lines.append(
                f"| {_cell(group.name)} | {group.weight:g} | {_n(group.score)} | {group.passed} "
                f"| {group.failed} | {group.nodata} |"
            )
        lines.append("")
    if checks:
        lines += ["| threshold check | phase | detail |", "| --- | --- | --- |"]
        for check in checks:
            name = check.name + (" (dry run)" if check.dry_run else "")
            lines.append(f"| {_cell(name)} | {check.phase.value} | {_cell(check.message)} |")
        lines.append("")
    return "\n".join(lines)
