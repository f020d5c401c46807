"""genesis.gate: metric-gated deploy verification and statistical canary analysis.

The pure core lives here: verdicts, the comparative judge (Mann-Whitney with Kayenta's
semantics, effect sizes, a spread test, exact rate comparison), Argo-style measurement limits,
the analysis spec with its safe condition language, and PromQL template rendering. On top of
it, the I/O: a Prometheus client and GateRun, which runs an analysis live or over a past window.
"""

from genesis.gate.classify import MetricData, classify
from genesis.gate.expression import Condition, compile_condition
from genesis.gate.judge import decide, judge
from genesis.gate.lint import lint
from genesis.gate.measurement import Limits, Measurement, MetricStatus, Phase, Progress
from genesis.gate.preprocess import OutlierPolicy
from genesis.gate.prometheus import PrometheusClient, PrometheusError
from genesis.gate.proportions import Counts
from genesis.gate.rules import JudgeConfig, MetricKind, MetricRule
from genesis.gate.run import GateResult, GateRun
from genesis.gate.spec import AnalysisSpec, Problem, SpecError
from genesis.gate.verdict import (
    Classification,
    Direction,
    GroupScore,
    Judgment,
    LocationTest,
    MetricResult,
    ProportionTest,
    SampleSummary,
    SpreadTest,
    Verdict,
    worst,
)

__all__ = [
    "AnalysisSpec",
    "Classification",
    "Condition",
    "Counts",
    "Direction",
    "GateResult",
    "GateRun",
    "GroupScore",
    "JudgeConfig",
    "Judgment",
    "Limits",
    "LocationTest",
    "Measurement",
    "MetricData",
    "MetricKind",
    "MetricResult",
    "MetricRule",
    "MetricStatus",
    "OutlierPolicy",
    "Phase",
    "Problem",
    "Progress",
    "PrometheusClient",
    "PrometheusError",
    "ProportionTest",
    "SampleSummary",
    "SpecError",
    "SpreadTest",
    "Verdict",
    "classify",
    "compile_condition",
    "decide",
    "judge",
    "lint",
    "worst",
]
