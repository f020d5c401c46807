"""The safe condition language: what it accepts, what it refuses, and how it evaluates."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.gate.expression import (
    EvaluationError,
    ExpressionError,
    NoDataError,
    compile_condition,
    evaluate,
)


@pytest.mark.parametrize(
    ("source", "result", "expected"),
    [
        ("result[0] < 0.01", [0.001], True),
        ("result[0] < 0.01", [0.5], False),
        ("result < 0.01", 0.001, True),
        ("result[-1] >= 2", [1, 2], True),
        ("len(result) == 0 || result[0] < 1", [], True),
        ("len(result) > 0 && result[0] < 1", [], False),
        ("!(result[0] > 1)", [0.5], True),
        ("not result[0] > 1 and true", [0.5], True),
        ("result[0] != 1", [2], True),
        ("isNaN(result) || result < 0.01", [math.nan], True),
        ("isNaN(result[0])", [1.0], False),
        ("isInf(result)", [math.inf], True),
        ("isNaN(result)", [], False),
        ("abs(result[0] - 1) < 0.1", [1.05], True),
        ("max(result) < 1", [0.1, 0.9], True),
        ("min(result) >= 1", [1, 2, 3], True),
        ("sum(result) / len(result) > 2", [1, 2, 6], True),
        ("max(result[0], 2) == 2", [1], True),
        ("result[0] * 100 % 7 == 2", [0.09], True),
        ("-result[0] < +1", [0], True),
        ("0 < result[0] < 1", [0.5], True),
        ("0 < result[0] < 1", [1.5], False),
        ("result[0] < Inf", [1e300], True),
        ("False or True", [1], True),
    ],
)
def test_conditions_evaluate(source: str, result: object, expected: bool) -> None:
    assert evaluate(compile_condition(source), result) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('__import__("os").system("true")', "calling the result of attribute access .system"),
        ('__import__("os")', "function '__import__' is not allowed"),
        ("open('/etc/passwd')", "function 'open' is not allowed"),
        ("result.__class__", "attribute access .__class__"),
        ("'a' == 'a'", "constant 'a'"),
        ("result ** 2 < 1", "operator **"),
        ("result // 2 < 1", "operator //"),
        ("result[0] in [1]", "operator in"),
        ("result is None", "operator is"),
        ("x < 1", "name 'x'"),
        ("result[0:1] < 1", "whole number"),
        ("result[1.5] < 1", "whole number"),
        ("len(result)[0] < 1", "indexing anything but result"),
        ("lambda: 1", "Lambda"),
        ("[1, 2]", "List"),
        ("(result).real", "attribute"),
        ("len()", "without arguments"),
        ("max(*result)", "starred"),
        ("len(result, key=1)", "keyword"),
        ("(lambda: 1)()", "calling the result of Lambda"),
        ("~result", "operator ~"),
        ("result <", "not a valid expression"),
        ("", "non-empty"),
        ("1j < 2", "constant 1j"),
        ("x = 1", "not a valid expression"),
    ],
)
def test_unsafe_or_unknown_constructs_are_refused(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace("*", r"\*")):
        compile_condition(source)


def test_size_limits() -> None:
    with pytest.raises(ExpressionError, match="limited to"):
        compile_condition("result < 1 " + "or result < 1 " * 100)
    with pytest.raises(ExpressionError, match="too complex"):
        compile_condition(" or ".join(["result[0]<1"] * 60))


def test_empty_result_is_no_data_unless_the_condition_asks() -> None:
    with pytest.raises(NoDataError, match="no series"):
        evaluate(compile_condition("result[0] < 1"), [])
    with pytest.raises(NoDataError, match="no series"):
        evaluate(compile_condition("result < 1"), [])
    with pytest.raises(NoDataError, match="empty result"):
        evaluate(compile_condition("max(result) < 1"), [])


def test_nan_is_no_data_unless_the_condition_asks() -> None:
    with pytest.raises(NoDataError, match="NaN"):
        evaluate(compile_condition("result[0] < 1"), [math.nan])
    assert evaluate(compile_condition("isNaN(result) or result[0] < 1"), [math.nan])


@pytest.mark.parametrize(
    ("source", "result", "message"),
    [
        ("result < 1", [1, 2], "result has 2 values"),
        ("result[3] < 1", [1], "out of range"),
        ("result[0] / 0 < 1", [1], "division by zero"),
        ("result[0] % 0 < 1", [1], "division by zero"),
        ("result[0]", [1], "expected true or false"),
        ("result[0] + 1", [1], "expected true or false"),
        ("result[0] < 1 and 2", [0], "expected true or false"),
        ("len(result, result) > 0", [1], "one argument"),
        ("abs(result, 1) > 0", [1], "one argument"),
    ],
)
def test_evaluation_problems_are_reported(source: str, result: list[float], message: str) -> None:
    with pytest.raises(EvaluationError, match=message):
        evaluate(compile_condition(source), result)


@pytest.mark.parametrize("result", [True, ["a"], [None]])
def test_results_must_be_numbers(result: object) -> None:
    with pytest.raises(EvaluationError, match="numbers"):
        evaluate(compile_condition("result[0] < 1"), result)  # type: ignore[arg-type]


def test_a_condition_is_callable() -> None:
    condition = compile_condition("result[0] < 1")
    assert condition([0.5]) is True
    assert not condition.checks_nan
    assert not condition.checks_empty
    assert compile_condition("len(result) > 0 and isNaN(result)").checks_nan


numbers = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(numbers, numbers, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
def test_comparisons_agree_with_python(value: float, threshold: float, op: str) -> None:
    expected = {
        "<": value < threshold,
        "<=": value <= threshold,
        ">": value > threshold,
        ">=": value >= threshold,
        "==": value == threshold,
        "!=": value != threshold,
    }[op]
    assert evaluate(compile_condition(f"result[0] {op} {threshold!r}"), [value]) is expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_is_either_a_condition_or_a_clear_error(text: str) -> None:
    try:
        condition = compile_condition(text)
    except ExpressionError as exc:
        message = str(exc)
    else:
        try:
            evaluate(condition, [0.5])
            return
        except EvaluationError as exc:
            message = str(exc)
    assert message.startswith(("condition", "a condition", "a query result"))
