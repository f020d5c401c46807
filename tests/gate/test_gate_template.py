import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.gate.duration import format_duration, parse_duration
from genesis.gate.template import TemplateError, check_variable, render, variables_in

QUERY = 'sum(rate(http_requests_total{job="{{service}}", track="{{ track }}"}[{{window}}]))'


def test_render_substitutes_every_placeholder() -> None:
    text = render(QUERY, {"service": "chat", "track": "canary", "window": "5m"})
    assert text == 'sum(rate(http_requests_total{job="chat", track="canary"}[5m]))'


def test_variables_in_lists_names_in_order_once() -> None:
    assert variables_in(QUERY + "{{service}}") == ["service", "track", "window"]
    assert variables_in("up") == []


def test_unknown_variables_are_named() -> None:
    with pytest.raises(
        TemplateError, match=r"unknown variable window in query; known variables: service"
    ):
        render("x[{{window}}]", {"service": "a"})
    with pytest.raises(TemplateError, match="unknown variables a, b"):
        render("{{a}}{{b}}", {})
    with pytest.raises(TemplateError, match="known variables: none"):
        render("{{a}}", {})


@pytest.mark.parametrize("template", ["{{ service", "up{{{}}}", "{{1abc}}", "x }}", "{{a-b}}"])
def test_malformed_placeholders_are_errors(template: str) -> None:
    with pytest.raises(TemplateError, match="malformed placeholder"):
        variables_in(template)


@pytest.mark.parametrize("value", ['a"} or up{x="', "a\\", "a\nb", "`"])
def test_values_cannot_break_out_of_a_promql_string(value: str) -> None:
    with pytest.raises(TemplateError, match="break out of a PromQL string"):
        render('{job="{{service}}"}', {"service": value})


def test_variable_names_and_types_are_checked() -> None:
    with pytest.raises(TemplateError, match="must start with a letter"):
        check_variable("9lives", "x")
    with pytest.raises(TemplateError, match="must be a string"):
        check_variable("n", 5)  # type: ignore[arg-type]


def test_regex_values_are_allowed() -> None:
    assert render('{status=~"{{codes}}"}', {"codes": "5..|429"}) == '{status=~"5..|429"}'


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("1d", 86400), ("0s", 0)],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5", "5x", "", "m5", "-5m", "1.5m", None])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r'e\.g\. "30s"'):
        parse_duration(text)


@settings(max_examples=100)
@given(st.integers(min_value=0, max_value=10**10))
def test_format_and_parse_round_trip(millis: int) -> None:
    assert parse_duration(format_duration(millis / 1000)) == pytest.approx(millis / 1000)


def test_format_duration_examples() -> None:
    assert format_duration(90) == "1m30s"
    assert format_duration(0) == "0s"
    assert format_duration(3600.25) == "1h250ms"
