"""The condition language of successCondition and failureCondition: small, safe, no eval.

Conditions read like Argo Rollouts' (`result[0] < 0.01 && len(result) > 0`) and are parsed
with Python's `ast` into a tree that is checked against a whitelist, then walked by a tiny
interpreter. Nothing is ever passed to eval or exec; names, calls, attributes, strings and
anything else outside the whitelist are rejected with a message saying what is allowed.

`result` is the query's answer: a vector of numbers, one per series (a scalar is a vector of
one). Used as a number, it must hold exactly one value. An empty result, or a NaN reaching a
comparison, is "no data" (the measurement is inconclusive), unless the condition asks for it
explicitly with len() or isNaN().
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Union

MAX_LENGTH = 1000
MAX_NODES = 200

Vector = tuple[float, ...]
Value = Union[float, bool, Vector]  # noqa: UP007 (a runtime alias; mypy reads it either way)


class ExpressionError(ValueError):
    """The condition is not valid in the language (found when it is compiled)."""


class EvaluationError(ValueError):
    """The condition is valid but cannot be evaluated on this result."""


class NoDataError(EvaluationError):
    """The result holds no usable number (no series, or NaN) and the condition did not ask."""


_FUNCTIONS = ("abs", "isInf", "isNaN", "len", "max", "min", "sum")
_NAMES = {"result", "true", "false", "True", "False", "NaN", "Inf"}
_COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ARITHMETIC: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Mod: "%",
}
_OPERATOR_NAMES = {
    ast.Pow: "**",
    ast.FloorDiv: "//",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}

# Argo's expr syntax: && and || and a ! that is not part of !=.
_ARGO_TOKENS = [(re.compile(r"&&"), " and "), (re.compile(r"\|\|"), " or "),
                (re.compile(r"!(?!=)"), " not ")]  # fmt: skip


@dataclass(frozen=True)
class Condition:
    """A compiled condition; `source` is what the user wrote."""

    source: str
    tree: ast.Expression
    checks_nan: bool
    checks_empty: bool

    def __call__(self, result: float | Sequence[float]) -> bool:
        return evaluate(self, result)


def _describe(node: ast.AST) -> str:
    op = getattr(node, "op", None)
    for candidate in (node, op):
        if candidate is not None and type(candidate) in _OPERATOR_NAMES:
            return f"operator {_OPERATOR_NAMES[type(candidate)]}"
    if isinstance(node, ast.Constant):
        return f"constant {node.value!r}"
    if isinstance(node, ast.Attribute):
        return f"attribute access .{node.attr}"
    return type(node).__name__


def _reject(source: str, what: str, hint: str = "") -> ExpressionError:
    message = f"condition {source!r}: {what} is not allowed"
    return ExpressionError(message + (f"; {hint}" if hint else ""))


def _check(node: ast.AST, source: str) -> None:
    if isinstance(node, ast.Expression):
        _check(node.body, source)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, source)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.Not | ast.USub | ast.UAdd):
            raise _reject(source, _describe(node))
        _check(node.operand, source)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _ARITHMETIC:
            raise _reject(source, _describe(node), "use + - * / %")
        _check(node.left, source)
        _check(node.right, source)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise _reject(source, _describe(op), "use < <= > >= == !=")
        _check(node.left, source)
        for comparator in node.comparators:
            _check(comparator, source)
    elif isinstance(node, ast.Name):
        if node.id not in _NAMES:
            raise _reject(
                source, f"name {node.id!r}", "the only variable is result (and true, false)"
            )
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, bool | int | float):
            raise _reject(source, _describe(node), "only numbers, true and false")
    elif isinstance(node, ast.Subscript):
        if not (isinstance(node.value, ast.Name) and node.value.id == "result"):
            raise _reject(source, "indexing anything but result")
        index = node.slice
        if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub):
            index = index.operand
        if not (isinstance(index, ast.Constant) and type(index.value) is int):
            raise _reject(source, "an index that is not a whole number", "write result[0]")
    elif isinstance(node, ast.Call):
        allowed = f"allowed functions: {', '.join(_FUNCTIONS)}"
        if not isinstance(node.func, ast.Name):
            raise _reject(source, f"calling the result of {_describe(node.func)}", allowed)
        if node.func.id not in _FUNCTIONS:
            raise _reject(source, f"function {node.func.id!r}", allowed)
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise _reject(source, "keyword or starred arguments")
        if not node.args:
            raise _reject(source, f"calling {node.func.id}() without arguments")
        for arg in node.args:
            _check(arg, source)
    else:
        raise _reject(source, _describe(node))


def compile_condition(source: str) -> Condition:
    """Parse and check a condition; every problem is an ExpressionError with a clear message."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("a condition must be a non-empty expression such as result[0] < 1")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"a condition is limited to {MAX_LENGTH} characters")
    translated = source.strip()
    for pattern, replacement in _ARGO_TOKENS:
        translated = pattern.sub(replacement, translated)
    translated = translated.strip()
    try:
        tree = ast.parse(translated, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(
            f"condition {source!r} is not a valid expression: {exc.msg}"
        ) from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise ExpressionError(f"condition {source!r} is too complex (over {MAX_NODES} parts)")
    _check(tree, source)
    calls = {n.func.id for n in nodes if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return Condition(
        source=source,
        tree=tree,
        checks_nan="isNaN" in calls,
        checks_empty="len" in calls,
    )


class _Interpreter:
    def __init__(self, condition: Condition, result: Vector) -> None:
        self.condition = condition
        self.result = result

    def fail(self, message: str) -> EvaluationError:
        return EvaluationError(f"condition {self.condition.source!r}: {message}")

    def number(self, value: Value) -> float:
        """A single number from a value; vectors must hold exactly one."""
        if isinstance(value, tuple):
            if not value:
                raise NoDataError(
                    f"condition {self.condition.source!r}: the query returned no series "
                    "(no traffic yet?); test len(result) to decide what that means"
                )
            if len(value) > 1:
                raise self.fail(
                    f"result has {len(value)} values; pick one with result[i], or use "
                    "min(), max() or sum()"
                )
            return value[0]
        return float(value)

    def vector(self, value: Value) -> Vector:
        return value if isinstance(value, tuple) else (float(value),)

    def truth(self, value: Value) -> bool:
        if isinstance(value, bool):
            return value
        raise self.fail(f"expected true or false, got {value!r}; compare it, e.g. result[0] < 1")

    def visit(self, node: ast.AST) -> Value:
        if isinstance(node, ast.Expression):
            return self.visit(node.body)
        if isinstance(node, ast.BoolOp):
            is_and = isinstance(node.op, ast.And)
            for child in node.values:
                if self.truth(self.visit(child)) != is_and:
                    return not is_and
            return is_and
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            if isinstance(node.op, ast.Not):
                return not self.truth(operand)
            number = self.number(operand)
            return -number if isinstance(node.op, ast.USub) else number
        if isinstance(node, ast.BinOp):
            return self.arithmetic(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.Constant):
            constant = node.value
            assert isinstance(constant, bool | int | float)  # guaranteed by _check
            return constant if isinstance(constant, bool) else float(constant)
        if isinstance(node, ast.Subscript):
            return self.index(node)
        assert isinstance(node, ast.Call)
        assert isinstance(node.func, ast.Name)
        return self.call(node.func.id, [self.visit(a) for a in node.args])

    def name(self, name: str) -> Value:
        constants: dict[str, Value] = {
            "true": True,
            "True": True,
            "false": False,
            "False": False,
            "NaN": math.nan,
            "Inf": math.inf,
        }
        return self.result if name == "result" else constants[name]

    def index(self, node: ast.Subscript) -> float:
        index_node = node.slice
        negative = isinstance(index_node, ast.UnaryOp)
        if isinstance(index_node, ast.UnaryOp):
            index_node = index_node.operand
        assert isinstance(index_node, ast.Constant)
        assert isinstance(index_node.value, int)  # guaranteed by _check
        index = -index_node.value if negative else index_node.value
        if not self.result:
            raise NoDataError(
                f"condition {self.condition.source!r}: the query returned no series "
                "(no traffic yet?); test len(result) to decide what that means"
            )
        if not -len(self.result) <= index < len(self.result):
            raise self.fail(f"result[{index}] is out of range; the result has {len(self.result)}")
        return self.result[index]

    def arithmetic(self, node: ast.BinOp) -> float:
        left = self.number(self.visit(node.left))
        right = self.number(self.visit(node.right))
        symbol = _ARITHMETIC[type(node.op)]
        if symbol in "/%" and right == 0:
            raise self.fail("division by zero")
        if symbol == "+":
            return left + right
        if symbol == "-":
            return left - right
        if symbol == "*":
            return left * right
        if symbol == "/":
            return left / right
        return math.fmod(left, right)

    def compare(self, node: ast.Compare) -> bool:
        left = self.number(self.visit(node.left))
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.number(self.visit(comparator))
            if (math.isnan(left) or math.isnan(right)) and not self.condition.checks_nan:
                raise NoDataError(
                    f"condition {self.condition.source!r}: the result is NaN (often 0/0: no "
                    "requests in the window); test isNaN(result) to decide what that means"
                )
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def call(self, name: str, args: list[Value]) -> Value:
        if name == "len":
            if len(args) != 1:
                raise self.fail("len() takes one argument")
            return float(len(self.vector(args[0])))
        if name in ("isNaN", "isInf", "abs"):
            if len(args) != 1:
                raise self.fail(f"{name}() takes one argument")
            if name == "abs":
                return abs(self.number(args[0]))
            check = math.isnan if name == "isNaN" else math.isinf
            values = self.vector(args[0])
            return bool(values) and all(check(v) for v in values)
        values = tuple(v for arg in args for v in self.vector(arg))
        if not values:
            raise NoDataError(
                f"condition {self.condition.source!r}: {name}() of an empty result "
                "(no series); test len(result) to decide what that means"
            )
        if name == "sum":
            return math.fsum(values)
        return min(values) if name == "min" else max(values)


def evaluate(condition: Condition, result: float | Sequence[float]) -> bool:
    """True or false for this result; EvaluationError (or NoDataError) when it cannot say."""
    if isinstance(result, bool):
        raise EvaluationError("a query result must be numbers, not true/false")
    if isinstance(result, int | float):
        vector: Vector = (float(result),)
    else:
        try:
            vector = tuple(float(v) for v in result)
        except (TypeError, ValueError) as exc:
            raise EvaluationError(f"a query result must be numbers: {exc}") from None
    interpreter = _Interpreter(condition, vector)
    return interpreter.truth(interpreter.visit(condition.tree))
