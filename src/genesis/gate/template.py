"""PromQL templates with {{variable}} placeholders.

Rendering is plain substitution with strict checks: an unknown variable is an error naming it
(never an empty string that silently widens a label matcher), and a value may not contain
characters that would break out of a PromQL string literal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Set by the gate itself for every query; users may not redefine them.
BUILTIN_VARIABLES = ("service", "namespace", "track", "window")
GATE_SET_VARIABLES = ("track", "window")

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PLACEHOLDER = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")
_VARIABLE_NAME = re.compile(_NAME)
_FORBIDDEN_IN_VALUES = set('"\\`\n\r')


class TemplateError(ValueError):
    """A template or variable problem, worded for the person who wrote the spec."""


def _stray_braces(template: str) -> int | None:
    """Offset of a "{{" or "}}" that is not part of a well-formed placeholder."""
    remainder = _PLACEHOLDER.sub(lambda m: " " * len(m.group(0)), template)
    positions = [p for p in (remainder.find("{{"), remainder.find("}}")) if p >= 0]
    return min(positions) if positions else None


def variables_in(template: str) -> list[str]:
    """Names used by a template, in order of first use; malformed placeholders are errors."""
    stray = _stray_braces(template)
    if stray is not None:
        snippet = template[stray : stray + 20]
        raise TemplateError(
            f"malformed placeholder at character {stray + 1} ({snippet!r}); "
            "write {{name}} with a name made of letters, digits and underscores"
        )
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def check_variable(name: str, value: str) -> None:
    if not _VARIABLE_NAME.fullmatch(name):
        raise TemplateError(
            f"variable name {name!r} must start with a letter or underscore and contain only "
            "letters, digits and underscores"
        )
    if not isinstance(value, str):
        raise TemplateError(f"variable {name!r} must be a string, got {type(value).__name__}")
    bad = sorted(_FORBIDDEN_IN_VALUES & set(value))
    if bad:
        raise TemplateError(
            f"variable {name!r} contains {', '.join(repr(c) for c in bad)}, which would break "
            "out of a PromQL string; quotes, backslashes, backticks and newlines are not allowed"
        )


def render(template: str, variables: Mapping[str, str]) -> str:
    """Substitute every {{name}}; unknown names are an error listing the known ones."""
    used = variables_in(template)
    unknown = [name for name in used if name not in variables]
    if unknown:
        known = ", ".join(sorted(variables)) or "none"
        plural = "s" if len(unknown) > 1 else ""
        raise TemplateError(
            f"unknown variable{plural} {', '.join(unknown)} in query; known variables: {known}"
        )
    for name in used:
        check_variable(name, variables[name])
    return _PLACEHOLDER.sub(lambda m: variables[m.group(1)], template)
