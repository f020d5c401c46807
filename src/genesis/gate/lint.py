"""`genesis gate lint`: every problem in a spec, with its line, before anyone trusts it."""

from __future__ import annotations

from typing import Any

import yaml

from genesis.gate.duration import parse_duration
from genesis.gate.spec import AnalysisSpec, Problem, SpecError, locate, parse, path_of
from genesis.gate.template import BUILTIN_VARIABLES, TemplateError, variables_in

_TEMPLATE_FIELDS = ("query",)
_COMPARE_TEMPLATE_FIELDS = ("query", "events", "total")


def lint(text: str, source: str = "spec") -> list[Problem]:
    """Errors make the spec unusable; warnings point at what probably is not meant."""
    try:
        spec = parse(text, source)
    except SpecError as exc:
        problems = list(exc.problems)
        seen = {(p.path, p.message) for p in problems}
        problems += [p for p in _raw_variable_problems(text) if (p.path, p.message) not in seen]
        return sorted(problems, key=lambda p: (p.line, p.column))
    return _warnings(spec)


def _raw_variable_problems(text: str) -> list[Problem]:
    """Unknown {{variables}} even when other errors stop the model from validating."""
    try:
        data: Any = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # pragma: no cover - parse() reported the syntax error already
        return []
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), list):
        return []
    declared = data.get("variables")
    known = set(BUILTIN_VARIABLES) | (set(declared) if isinstance(declared, dict) else set())
    problems = []
    for index, metric in enumerate(data["metrics"]):
        if not isinstance(metric, dict):
            continue
        places: list[tuple[tuple[str | int, ...], Any]] = [
            (("metrics", index, f), metric.get(f)) for f in _TEMPLATE_FIELDS
        ]
        compare = metric.get("compare")
        if isinstance(compare, dict):
            places += [
                (("metrics", index, "compare", f), compare.get(f)) for f in _COMPARE_TEMPLATE_FIELDS
            ]
        for loc, template in places:
            if not isinstance(template, str):
                continue
            try:
                unknown = [v for v in variables_in(template) if v not in known]
            except TemplateError:
                continue  # reported by the model validation already
            if unknown:
                node = locate(root, loc)
                mark = node.start_mark if node is not None else None
                problems.append(
                    Problem(
                        f"unknown variable {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                        path_of(loc),
                        mark.line + 1 if mark else 0,
                        mark.column + 1 if mark else 0,
                    )
                )
    return problems


def _warnings(spec: AnalysisSpec) -> list[Problem]:
    problems: list[Problem] = []
    used: set[str] = set()
    for metric in spec.metrics:
        for template in (
            metric.query,
            *(
                (metric.compare.query, metric.compare.events, metric.compare.total)
                if metric.compare
                else ()
            ),
        ):
            if template is not None:
                used.update(variables_in(template))
    for name in sorted(set(spec.variables) - used - {"service", "namespace"}):
        problems.append(
            Problem(
                f"variable {name!r} is defined but no query uses it", "variables", 0, 0, "warning"
            )
        )
    if all(m.dry_run for m in spec.metrics):
        problems.append(
            Problem(
                "every metric is dryRun: the gate can never fail", "metrics", severity="warning"
            )
        )
    # No warning for a window longer than the checks: `gate run` waits for the whole window
    # after initialDelay (genesis.gate.plan), so it never reaches back before the canary.
    if parse_duration(spec.step) * 2 > parse_duration(spec.window):
        problems.append(
            Problem(
                f"step {spec.step} leaves fewer than two samples per window {spec.window}",
                "step",
                severity="warning",
            )
        )
    return problems
