"""Prometheus-style durations ("30s", "5m", "1h30m") for the analysis spec."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:ms|s|m|h|d|w))+")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "90s", "1m30s" or "250ms"; a clear error otherwise."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text.strip()):
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit (ms, s, m, h, d, w), "
            'e.g. "30s", "5m" or "1m30s"'
        )
    return sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text.strip()))


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for a whole number of milliseconds."""
    millis = round(seconds * 1000)
    if millis <= 0:
        return "0s"
    parts = []
    for unit, size in (("w", 604800000), ("d", 86400000), ("h", 3600000), ("m", 60000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    whole, millis = divmod(millis, 1000)
    if whole:
        parts.append(f"{whole}s")
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts)
