"""The analysis spec: YAML in, validated models out, with errors that name the line.

A spec lists metrics. Each may carry a threshold check (an instant `query` for the canary,
judged every `interval` by successCondition/failureCondition within Argo-style limits) and/or
a comparison (`compare`: the canary against the baseline over the same window, judged by the
comparative judge). Queries are PromQL templates; see genesis.gate.template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from genesis.gate.duration import parse_duration
from genesis.gate.expression import Condition, compile_condition
from genesis.gate.measurement import DEFAULT_CONSECUTIVE_ERROR_LIMIT, Limits
from genesis.gate.preprocess import OutlierPolicy
from genesis.gate.rules import (
    DEFAULT_CONFIDENCE,
    DEFAULT_MARGINAL_THRESHOLD,
    DEFAULT_PASS_THRESHOLD,
    DEFAULT_TOLERANCE,
    JudgeConfig,
    MetricKind,
    MetricRule,
)
from genesis.gate.template import (
    BUILTIN_VARIABLES,
    GATE_SET_VARIABLES,
    check_variable,
    render,
    variables_in,
)
from genesis.gate.verdict import Direction


def _duration(value: str) -> str:
    parse_duration(value)
    return value


def _positive_duration(value: str) -> str:
    if parse_duration(value) <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    return value


def _condition(value: str) -> str:
    compile_condition(value)
    return value


def _template(value: str) -> str:
    variables_in(value)
    return value


Duration = Annotated[
    str,
    AfterValidator(_duration),
    Field(description='A Prometheus duration such as "30s", "5m" or "1m30s".'),
]
PositiveDuration = Annotated[
    str,
    AfterValidator(_positive_duration),
    Field(description='A Prometheus duration longer than zero, such as "30s" or "5m".'),
]
ConditionText = Annotated[
    str,
    AfterValidator(_condition),
    Field(description="A condition in the gate's safe expression language, e.g. result[0] < 0.01"),
]
Template = Annotated[
    str,
    AfterValidator(_template),
    Field(description="A PromQL query with {{variable}} placeholders."),
]
_NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")


def _name(value: str) -> str:
    if not _NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid name: use 1-63 lowercase letters, digits, '-' and '_', "
            "starting and ending with a letter or digit (e.g. error-rate)"
        )
    return value


Name = Annotated[
    str, AfterValidator(_name), Field(json_schema_extra={"pattern": _NAME_PATTERN.pattern})
]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


class Thresholds(_Model):
    pass_: float = Field(DEFAULT_PASS_THRESHOLD, alias="pass", ge=0, le=100)
    marginal: float = Field(DEFAULT_MARGINAL_THRESHOLD, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.marginal > self.pass_:
            raise ValueError(f"marginal ({self.marginal:g}) must not exceed pass ({self.pass_:g})")
        return self


class JudgeSpec(_Model):
    """Settings of the comparative judge (Kayenta's defaults)."""

    confidence: float = Field(DEFAULT_CONFIDENCE, ge=0.5, lt=1)
    tolerance: float = Field(DEFAULT_TOLERANCE, ge=0)
    spread_confidence: float = Field(0.99, ge=0.5, lt=1)
    thresholds: Thresholds = Thresholds()
    group_weights: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)

    @field_validator("group_weights")
    @classmethod
    def _at_most_100(cls, weights: dict[str, float]) -> dict[str, float]:
        if sum(weights.values()) > 100:
            raise ValueError(f"group weights add up to {sum(weights.values()):g}, more than 100")
        return weights


class Compare(_Model):
    """Compare the canary against the baseline over the same window."""

    kind: MetricKind = MetricKind.CONTINUOUS
    query: Template | None = Field(
        None,
        description="Series for the comparison, range-queried per track over the window at "
        "`step` resolution. Required for continuous metrics.",
    )
    events: Template | None = Field(
        None, description="Proportion metrics: events (e.g. errors) over {{window}} per track."
    )
    total: Template | None = Field(
        None,
        description="Requests over {{window}} per track: the denominator of a proportion, and "
        "the traffic behind a continuous metric (for minRequests).",
    )
    direction: Direction = Direction.INCREASE
    group: Name = "default"
    critical: bool = False
    allowed_increase: float = Field(1.05, ge=1)
    allowed_decrease: float = Field(0.95, ge=0, le=1)
    critical_increase: float = Field(1.0, ge=1)
    critical_decrease: float = Field(1.0, ge=0, le=1)
    spread_check: bool = True
    allowed_spread_increase: float = Field(1.5, ge=1)
    min_samples: int = Field(10, ge=2)
    min_requests: int = Field(0, ge=0)
    outliers: OutlierPolicy = OutlierPolicy.KEEP
    allowed_rate_increase: float = Field(0.002, ge=0, lt=1)
    detectable_increase: float = Field(0.01, gt=0, lt=1)

    @model_validator(mode="after")
    def _queries_for_kind(self) -> Compare:
        if self.kind is MetricKind.PROPORTION:
            missing = [f for f in ("events", "total") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"a proportion comparison needs {' and '.join(missing)}")
            if self.detectable_increase <= self.allowed_rate_increase:
                raise ValueError("detectableIncrease must be larger than allowedRateIncrease")
        elif self.query is None:
            raise ValueError("a continuous comparison needs a query")
        if self.min_requests and self.total is None:
            raise ValueError("minRequests needs a total query to count requests")
        return self


class MetricSpec(_Model):
    name: Name
    query: Template | None = Field(
        None, description="Instant query for the canary, checked every interval."
    )
    success_condition: ConditionText | None = None
    failure_condition: ConditionText | None = None
    interval: PositiveDuration | None = Field(None, description="Overrides the analysis interval.")
    count: int | None = Field(None, ge=1, description="Overrides the analysis count.")
    failure_limit: int = Field(0, ge=0)
    inconclusive_limit: int = Field(0, ge=0)
    consecutive_error_limit: int = Field(DEFAULT_CONSECUTIVE_ERROR_LIMIT, ge=0)
    dry_run: bool = False
    compare: Compare | None = None

    @model_validator(mode="after")
    def _something_to_do(self) -> MetricSpec:
        has_condition = self.success_condition or self.failure_condition
        if has_condition and self.query is None:
            raise ValueError("successCondition/failureCondition need a query to check")
        if self.query is not None and not has_condition and self.compare is None:
            raise ValueError(
                "a query without successCondition, failureCondition or compare checks nothing"
            )
        if self.query is None and self.compare is None:
            raise ValueError("a metric needs a query with conditions, a compare section, or both")
        return self

    @property
    def checks_threshold(self) -> bool:
        return self.query is not None and bool(self.success_condition or self.failure_condition)

    def conditions(self) -> tuple[Condition | None, Condition | None]:
        return (
            compile_condition(self.success_condition) if self.success_condition else None,
            compile_condition(self.failure_condition) if self.failure_condition else None,
        )

    def limits(self, default_count: int) -> Limits:
        return Limits(
            count=self.count or default_count,
            failure_limit=self.failure_limit,
            inconclusive_limit=self.inconclusive_limit,
            consecutive_error_limit=self.consecutive_error_limit,
        )

    def rule(self) -> MetricRule | None:
        if self.compare is None:
            return None
        c = self.compare
        return MetricRule(
            name=self.name,
            kind=c.kind,
            direction=c.direction,
            group=c.group,
            critical=c.critical,
            dry_run=self.dry_run,
            allowed_increase=c.allowed_increase,
            allowed_decrease=c.allowed_decrease,
            critical_increase=c.critical_increase,
            critical_decrease=c.critical_decrease,
            spread_check=c.spread_check,
            allowed_spread_increase=c.allowed_spread_increase,
            min_samples=c.min_samples,
            min_requests=c.min_requests,
            outliers=c.outliers,
            allowed_rate_increase=c.allowed_rate_increase,
            detectable_increase=c.detectable_increase,
        )


class AnalysisSpec(_Model):
    """A genesis gate analysis."""

    version: Literal[1] = Field(1, description="Spec format version.")
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="Values for {{name}} placeholders; service and namespace may be set here.",
    )
    window: PositiveDuration = Field("5m", description="The comparison window ({{window}}).")
    step: PositiveDuration = Field("15s", description="Resolution of comparison series.")
    interval: PositiveDuration = Field("1m", description="Time between threshold checks.")
    count: int = Field(5, ge=1, description="Threshold checks per metric.")
    initial_delay: Duration = Field("0s", description="Wait before the first measurement.")
    baseline_track: Name = "stable"
    canary_track: Name = "canary"
    judge: JudgeSpec = JudgeSpec()
    metrics: list[MetricSpec] = Field(min_length=1)

    @field_validator("variables")
    @classmethod
    def _variables(cls, variables: dict[str, str]) -> dict[str, str]:
        for name, value in variables.items():
            if name in GATE_SET_VARIABLES:
                raise ValueError(f"{{{{{name}}}}} is set by the gate and cannot be redefined")
            check_variable(name, value)
        return variables

    @model_validator(mode="after")
    def _consistent(self) -> AnalysisSpec:
        names = [m.name for m in self.metrics]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"metric names must be unique; repeated: {', '.join(repeated)}")
        if self.baseline_track == self.canary_track:
            raise ValueError("baselineTrack and canaryTrack must differ")
        known = set(self.variables) | set(BUILTIN_VARIABLES)
        for metric in self.metrics:
            for where, template in templates_of(metric):
                unknown = [v for v in variables_in(template) if v not in known]
                if unknown:
                    raise ValueError(
                        f"metric {metric.name!r} {where} uses unknown variable "
                        f"{', '.join(unknown)}; known: {', '.join(sorted(known))}"
                    )
        return self

    def rules(self) -> list[MetricRule]:
        return [rule for m in self.metrics if (rule := m.rule()) is not None]

    def judge_config(self) -> JudgeConfig:
        return JudgeConfig(
            confidence=self.judge.confidence,
            tolerance=self.judge.tolerance,
            spread_confidence=self.judge.spread_confidence,
            pass_threshold=self.judge.thresholds.pass_,
            marginal_threshold=self.judge.thresholds.marginal,
            group_weights=dict(self.judge.group_weights),
        )

    def variables_for(
        self, track: str, overrides: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Every variable a query of this analysis may use, for one track."""
        values = {"service": "genesis", "namespace": ".*", **self.variables, **(overrides or {})}
        values.update(track=track, window=self.window)
        for name, value in values.items():
            check_variable(name, value)
        return values

    def render(self, template: str, track: str, overrides: Mapping[str, str] | None = None) -> str:
        return render(template, self.variables_for(track, overrides))


def templates_of(metric: MetricSpec) -> list[tuple[str, str]]:
    """Every query template of a metric, with the field it sits in."""
    found = [("query", metric.query)]
    if metric.compare is not None:
        c = metric.compare
        found += [("compare.query", c.query), ("compare.events", c.events)]
        found += [("compare.total", c.total)]
    return [(where, t) for where, t in found if t is not None]


# --- loading with line numbers ---------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One finding about a spec; `line` and `column` are 1-based, 0 when unknown."""

    message: str
    path: str = ""
    line: int = 0
    column: int = 0
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.line}:{self.column}: " if self.line else ""
        path = f"{self.path}: " if self.path else ""
        return f"{where}{self.severity}: {path}{self.message}"


class SpecError(ValueError):
    """The spec is invalid; `problems` lists every finding with its line."""

    def __init__(self, problems: list[Problem], source: str = "spec") -> None:
        self.problems = problems
        super().__init__(
            f"{source} is not a valid analysis:\n" + "\n".join(f"  {p}" for p in problems)
        )


def path_of(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def locate(node: yaml.Node | None, loc: tuple[int | str, ...]) -> yaml.Node | None:
    """The YAML node a validation error points at (the deepest one that exists)."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                return node
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _duplicate_keys(node: yaml.Node | None, path: str = "") -> list[Problem]:
    """PyYAML keeps the last of repeated keys without a word; a spec should not."""
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(getattr(key, "value", ""))
            child = f"{path}.{name}" if path else name
            if name in seen:
                mark = key.start_mark
                problems.append(
                    Problem(f"key {name!r} appears twice", child, mark.line + 1, mark.column + 1)
                )
            seen.add(name)
            problems += _duplicate_keys(value, child)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, f"{path}[{index}]")
    return problems


def _clean_message(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def parse(text: str, source: str = "spec") -> AnalysisSpec:
    """Load a spec from YAML text; SpecError lists every problem with its line and column."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise SpecError(
            [Problem(f"YAML syntax: {exc.problem or exc}", "", line, column)], source
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(f"YAML: {exc}")], source) from None
    duplicates = _duplicate_keys(root)
    if duplicates:
        raise SpecError(duplicates, source)
    if not isinstance(data, dict):
        raise SpecError(
            [Problem("an analysis is a mapping with at least a 'metrics' list", "", 1, 1)], source
        )
    try:
        return AnalysisSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            node = locate(root, loc)
            mark = node.start_mark if node is not None else None
            problems.append(
                Problem(
                    _clean_message(error["msg"]),
                    path_of(loc),
                    mark.line + 1 if mark else 0,
                    mark.column + 1 if mark else 0,
                )
            )
        raise SpecError(problems, source) from None


def load(path: str) -> AnalysisSpec:
    with open(path, encoding="utf-8") as handle:
        return parse(handle.read(), source=path)


BUILTIN_SOURCE = "builtin analysis"


def builtin_text() -> str:
    """The YAML of the built-in analysis, as shipped in the package."""
    return resources.files("genesis.gate").joinpath("builtin.yaml").read_text(encoding="utf-8")


def builtin() -> AnalysisSpec:
    """The analysis used when no spec is given: genesis' own metrics, no configuration."""
    return parse(builtin_text(), source=BUILTIN_SOURCE)
