"""Points in time for `genesis gate retro --from/--to`: RFC 3339, unix seconds or relative.

Pure: `now` is passed in, so "-10m" means the same thing in a test as on the command line.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from genesis.gate.duration import parse_duration

_UNIX = re.compile(r"\d+(\.\d+)?")
_RELATIVE = re.compile(r"(?:now)?\s*-\s*(.+)")


def parse_time(text: str, now: float) -> float:
    """Unix seconds for `now`, `-10m` / `now-1h30m`, `1714567890[.5]` or an RFC 3339 time."""
    value = text.strip()
    if value == "now":
        return now
    relative = _RELATIVE.fullmatch(value)
    if relative:
        try:
            return now - parse_duration(relative.group(1))
        except ValueError:
            raise ValueError(
                f"{text!r} is not a relative time; write a duration after the minus sign, "
                'e.g. "-10m" or "now-1h30m"'
            ) from None
    if _UNIX.fullmatch(value):
        seconds = float(value)
        if not math.isfinite(seconds):  # pragma: no cover - the pattern admits only digits
            raise ValueError(f"{text!r} is not a finite unix time")
        return seconds
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time; use RFC 3339 (2024-05-01T12:00:00Z), unix seconds "
            '(1714564800), "now", or a time relative to now ("-10m", "now-2h")'
        ) from None
    if moment.tzinfo is None:
        raise ValueError(
            f"{text!r} has no time zone; add one (Z for UTC, or an offset such as +02:00) "
            "so the window does not depend on this machine's clock settings"
        )
    return moment.timestamp()


def parse_window(start: str, end: str, now: float) -> tuple[float, float]:
    """A past window [start, end]: both parsed, in order, and not in the future."""
    first, last = parse_time(start, now), parse_time(end, now)
    if last <= first:
        raise ValueError(f"--to ({end}) must be later than --from ({start})")
    if last > now + 1:
        raise ValueError(f"--to ({end}) is in the future; retro judges a past window")
    return first, last
