"""Reports: JSON that is valid JSON (no NaN), Markdown that explains each metric."""

import json
import math

import numpy as np
import pytest

from genesis.gate import Counts, JudgeConfig, MetricData, MetricKind, MetricRule, Verdict, judge
from genesis.gate.brown_forsythe import compare_spread
from genesis.gate.measurement import MetricStatus, Phase
from genesis.gate.report import to_dict, to_json, to_markdown


def _judgment():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(9)
    base = 0.25 * np.exp(rng.normal(0, 0.03, 20))
    slow = base * 1.3
    rules = [
        MetricRule("error-rate", kind=MetricKind.PROPORTION, critical=True, group="errors"),
        MetricRule("latency-p99", group="latency"),
        MetricRule("saturation", group="saturation", dry_run=True),
        MetricRule("quiet", group="latency"),
    ]
    data = {
        "error-rate": MetricData(
            "error-rate",
            baseline=[0.005] * 20,
            canary=[0.006] * 20,
            baseline_counts=Counts(150, 30000),
            canary_counts=Counts(160, 30000),
        ),
        "latency-p99": MetricData("latency-p99", base.tolist(), slow.tolist()),
        "saturation": MetricData("saturation", [1.0] * 20, [math.nan] * 3 + [1.0] * 17),
        "quiet": MetricData("quiet", [0.2] * 20, [0.2] * 3),
    }
    return judge(rules, data, JudgeConfig(group_weights={"errors": 50, "latency": 50}))


def test_json_report_is_strict_json_with_every_number() -> None:
    judgment = _judgment()
    # errors pass (100), latency has one HIGH and one NODATA (0): score 50 is below 75.
    assert judgment.verdict is Verdict.FAIL
    text = to_json(judgment)
    document = json.loads(text)
    assert document["verdict"] == "FAIL"
    assert document["exit_code"] == 1
    assert document["score"] == 50.0
    metrics = {m["name"]: m for m in document["metrics"]}
    assert metrics["error-rate"]["proportion"]["canary_events"] == 160
    assert metrics["latency-p99"]["classification"] == "HIGH"
    assert metrics["latency-p99"]["location"]["p_value"] < 0.01
    assert metrics["latency-p99"]["spread"]["ratio"] > 1
    assert metrics["saturation"]["canary"]["dropped_nonfinite"] == 3
    assert metrics["quiet"]["missing_samples"] == 7
    assert document["checks"] == []


def test_non_finite_numbers_become_null() -> None:
    spread = compare_spread(np.array([1.0, 5.0, 1.0, 5.0]), np.array([5.0] * 4))
    assert spread.statistic == math.inf
    judgment = judge([MetricRule("m")], {"m": MetricData("m", [1.0] * 10, [1.0] * 9 + [2.0])})
    document = to_dict(judgment)
    assert json.dumps(document, allow_nan=False)
    rule = MetricRule("m", min_samples=2)
    flat = judge([rule], {"m": MetricData("m", [5.0] * 4, [1.0, 5.0, 1.0, 5.0])})
    spread_doc = to_dict(flat)["metrics"][0]["spread"]
    assert spread_doc is None or spread_doc["statistic"] is None


def test_markdown_shows_numbers_statistics_and_reasons() -> None:
    checks = [
        MetricStatus("availability", Phase.SUCCESSFUL, "5 of 5 measurements successful"),
        MetricStatus("guard", Phase.FAILED, "a | b", dry_run=True),
    ]
    text = to_markdown(_judgment(), checks, title="staging gate")
    assert text.startswith("## staging gate: FAIL (score 50)")
    assert "exit code 1" in text
    assert (
        "| error-rate (errors, critical) | PASS | 0.533% (160/30000) | 0.5% (150/30000) |" in text
    )
    assert "Fisher p=" in text
    assert "Mann-Whitney U=" in text
    assert "Brown-Forsythe W=" in text
    assert "saturation (saturation, dry run)" in text
    assert "3 NaN dropped" in text
    assert "| quiet (latency) | NODATA |" in text
    assert "(7 missing)" in text
    assert "| latency | 50 | 0 | 0 | 1 | 1 |" in text
    assert "| guard (dry run) | Failed | a \\| b |" in text


@pytest.mark.parametrize("verdict", list(Verdict))
def test_markdown_of_an_empty_judgment(verdict: Verdict) -> None:
    from genesis.gate import Judgment

    text = to_markdown(Judgment(verdict=verdict, score=0.0, reason="nothing", metrics=()))
    assert f": {verdict.value} (score 0)" in text
    assert "| metric |" not in text
