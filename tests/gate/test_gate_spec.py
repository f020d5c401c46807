"""The analysis spec: loading, line-aware errors, the published schema, lint."""

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from genesis.gate import schema as schema_module
from genesis.gate import spec as spec_module
from genesis.gate.lint import lint
from genesis.gate.rules import MetricKind
from genesis.gate.spec import AnalysisSpec, SpecError, builtin, load, parse

GOOD = textwrap.dedent(
    """\
    version: 1
    variables:
      service: chat
      route: /v1/chat/completions
    window: 5m
    interval: 1m
    count: 5
    metrics:
      - name: error-rate
        query: >-
          sum(rate(http_requests_total{job="{{service}}", track="{{track}}",
          route="{{route}}", status=~"5.."}[{{window}}]))
        failureCondition: result[0] > 0.05
        compare:
          kind: proportion
          events: >-
            sum(increase(http_requests_total{job="{{service}}", track="{{track}}",
            status=~"5.."}[{{window}}]))
          total: sum(increase(http_requests_total{job="{{service}}", track="{{track}}"}[5m]))
          critical: true
          group: errors
      - name: latency-p99
        dryRun: true
        compare:
          query: >-
            histogram_quantile(0.99, sum by (le)
            (rate(http_request_duration_seconds_bucket{track="{{track}}"}[1m])))
          group: latency
    """
)
ONE = "metrics:\n  - {name: a, compare: {query: up}}\n"


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse(text)
    return [str(p) for p in info.value.problems]


def test_a_good_spec_loads_into_rules_and_judge_config() -> None:
    spec = parse(GOOD)
    rules = spec.rules()
    assert [r.name for r in rules] == ["error-rate", "latency-p99"]
    assert rules[0].kind is MetricKind.PROPORTION
    assert rules[0].critical
    assert rules[1].dry_run
    config = spec.judge_config()
    assert (config.confidence, config.tolerance) == (0.98, 0.25)
    assert (config.pass_threshold, config.marginal_threshold) == (95, 75)
    metric = spec.metrics[0]
    assert metric.checks_threshold
    assert not spec.metrics[1].checks_threshold
    success, failure = metric.conditions()
    assert success is None
    assert failure is not None
    assert failure([0.1])
    assert metric.limits(spec.count).count == 5
    assert spec.metrics[1].rule() is not None
    assert spec.metrics[1].limits(3).count == 3


def test_rendering_sets_track_and_window_and_refuses_bad_values() -> None:
    spec = parse(GOOD)
    query = spec.metrics[0].query
    assert query is not None
    rendered = spec.render(query, "canary")
    assert 'job="chat"' in rendered
    assert 'track="canary"' in rendered
    assert "[5m]" in rendered
    assert 'job="other"' in spec.render(query, "stable", {"service": "other"})
    with pytest.raises(ValueError, match="break out"):
        spec.render(query, 'x"}')


def test_errors_carry_line_column_and_path() -> None:
    text = textwrap.dedent(
        """\
        version: 1
        metrics:
          - name: bad
            query: up
            successCondition: result[0] ** 2 < 1
          - name: Upper
            compare: {kind: proportion}
        window: 5x
        """
    )
    problems = _problems(text)
    assert any(
        p.startswith("5:23: error: metrics[0].successCondition: condition 'result[0] ** 2 < 1'")
        for p in problems
    )
    assert any(
        p.startswith("6:11: error: metrics[1].name: 'Upper' is not a valid name") for p in problems
    )
    assert any(
        p.startswith(
            "7:14: error: metrics[1].compare: a proportion comparison needs events and total"
        )
        for p in problems
    )
    assert any(p.startswith("8:9: error: window: '5x' is not a duration") for p in problems)


def test_yaml_syntax_errors_have_lines() -> None:
    problems = _problems("metrics:\n  - name: a\n   query: [\n")
    assert problems[0].startswith("3:")
    assert "YAML syntax" in problems[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just a list", "an analysis is a mapping"),
        ("metrics: []", "at least 1 item"),
        ("metrics:\n  - name: a\n    query: up\n    query: down\n", "key 'query' appears twice"),
        ("metrics:\n  - name: a\n    query: up\n", "checks nothing"),
        ("metrics:\n  - name: a\n    successCondition: result < 1\n", "need a query"),
        ("metrics:\n  - name: a\n", "a query with conditions, a compare section, or both"),
        ("metrics:\n  - name: a\n    compare: {}\n", "a continuous comparison needs a query"),
        (
            "metrics:\n  - name: a\n    compare: {query: up, minRequests: 5}\n",
            "minRequests needs a total query",
        ),
        (
            "metrics:\n  - name: a\n    compare: {kind: proportion, events: a, total: b,"
            " allowedRateIncrease: 0.05, detectableIncrease: 0.01}\n",
            "detectableIncrease must be larger",
        ),
        (
            "metrics:\n  - {name: a, compare: {query: up}}\n  - {name: a, compare: {query: up}}\n",
            "repeated: a",
        ),
        (
            "baselineTrack: x\ncanaryTrack: x\nmetrics:\n  - {name: a, compare: {query: up}}\n",
            "must differ",
        ),
        (
            "variables: {track: x}\nmetrics:\n  - {name: a, compare: {query: up}}\n",
            "set by the gate",
        ),
        ("variables: {q: 'a\"b'}\nmetrics:\n  - {name: a, compare: {query: up}}\n", "break out"),
        (
            "metrics:\n  - {name: a, compare: {query: 'up{x=\"{{nope}}\"}'}}\n",
            "unknown variable nope",
        ),
        ("metrics:\n  - {name: a, compare: {query: 'up{{'}}\n", "malformed placeholder"),
        (
            "judge: {thresholds: {pass: 50, marginal: 60}}\n" + ONE,
            "must not exceed pass",
        ),
        (
            "judge: {groupWeights: {a: 70, b: 40}}\n" + ONE,
            "more than 100",
        ),
        ("interval: 0s\nmetrics:\n  - {name: a, compare: {query: up}}\n", "longer than zero"),
        (
            "surprise: 1\nmetrics:\n  - {name: a, compare: {query: up}}\n",
            "Extra inputs are not permitted",
        ),
        ("version: 2\nmetrics:\n  - {name: a, compare: {query: up}}\n", "version"),
    ],
)
def test_invalid_specs_say_what_is_wrong(text: str, message: str) -> None:
    problems = _problems(text)
    assert any(message in p for p in problems), problems


def test_spec_error_message_lists_every_problem() -> None:
    with pytest.raises(SpecError) as info:
        parse("window: 5x\ninterval: nope\nmetrics: []\n", source="my.yaml")
    text = str(info.value)
    assert text.startswith("my.yaml is not a valid analysis:")
    assert text.count("error:") == 3


def test_load_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "analysis.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert load(str(path)).variables["service"] == "chat"


def test_builtin_analysis_is_valid_and_covers_the_issue_list() -> None:
    spec = builtin()
    names = {m.name for m in spec.metrics}
    assert names == {
        "request-error-rate",
        "latency-p95",
        "latency-p99",
        "availability",
        "saturation",
        "llm-upstream-error-rate",
    }
    assert (
        lint(spec_module.resources.files("genesis.gate").joinpath("builtin.yaml").read_text()) == []
    )
    for metric in spec.metrics:
        for template in (metric.query, *(vars(metric.compare).values() if metric.compare else ())):
            if isinstance(template, str) and "{{" in template:
                rendered = spec.render(template, "canary")
                assert "{{" not in rendered
                assert 'track="canary"' in rendered


def test_published_schema_is_in_sync_with_the_models() -> None:
    # Regenerate with: python -m genesis.gate.schema > src/genesis/gate/analysis.schema.json
    assert schema_module.published_schema() == schema_module.schema_text()


def test_schema_accepts_the_builtin_and_rejects_unknown_keys() -> None:
    schema = json.loads(schema_module.published_schema())
    text = spec_module.resources.files("genesis.gate").joinpath("builtin.yaml").read_text()
    jsonschema.validate(yaml.safe_load(text), schema)
    jsonschema.validate(yaml.safe_load(GOOD), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"metrics": [{"name": "a", "bogus": 1}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"metrics": [{"name": "Not Valid"}]}, schema)


def test_models_round_trip_through_aliases() -> None:
    spec = parse(GOOD)
    again = AnalysisSpec.model_validate(spec.model_dump(by_alias=True))
    assert again == spec


def test_lint_reports_unknown_variables_next_to_other_errors() -> None:
    text = (
        'metrics:\n  - name: a\n    query: up{job="{{svc}}"}\n'
        "    successCondition: result ** 2 < 1\n"
    )
    problems = [str(p) for p in lint(text)]
    assert problems[0].startswith("3:12: error: metrics[0].query: unknown variable svc")
    assert problems[1].startswith("4:23: error: metrics[0].successCondition")


def test_lint_skips_what_it_cannot_read() -> None:
    assert [p.message for p in lint("- a list")] == [
        "an analysis is a mapping with at least a 'metrics' list"
    ]
    problems = lint("metrics:\n  - 5\n  - {name: a, query: '{{', compare: 3}\n")
    assert problems
    assert all(p.severity == "error" for p in problems)


def test_lint_warnings() -> None:
    text = textwrap.dedent(
        """\
        variables: {unused: x}
        window: 1h
        step: 45m
        count: 2
        metrics:
          - name: a
            dryRun: true
            compare: {query: up}
        """
    )
    messages = [str(p) for p in lint(text)]
    assert any("variable 'unused' is defined but no query uses it" in m for m in messages)
    assert any("every metric is dryRun" in m for m in messages)
    # A window longer than the checks is fine: a live run waits for it (genesis.gate.plan).
    assert not any("window" in m for m in messages if "step" not in m)
    assert any("fewer than two samples" in m for m in messages)
    assert all("warning:" in m for m in messages)
    assert lint(GOOD) == []
