"""Pure statistics of the benchmark: percentiles, medians over rounds, per-round comparisons.

Plain functions over plain lists, no I/O, so they are tested on their own
(tests/benchmarks/test_service_benchmark.py).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between order statistics.

    The same definition as numpy's default (`method="linear"`); NaN for no values.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile is between 0 and 100, got {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The median, ignoring NaN (a round that measured nothing); NaN when nothing is left."""
    kept = [v for v in values if not math.isnan(v)]
    return float(statistics.median(kept)) if kept else math.nan


def paired(a: Sequence[float], b: Sequence[float], op: str) -> list[float]:
    """Round-by-round `a - b` (op "delta") or `a / b` (op "ratio").

    Each pair ran in the same round, back to back, so it shares that round's noise; the median
    of these is the comparison to report, not the difference of two medians.
    """
    if len(a) != len(b):
        raise ValueError(f"paired series differ in length: {len(a)} and {len(b)}")
    if op == "delta":
        return [x - y for x, y in zip(a, b, strict=True)]
    if op == "ratio":
        return [x / y if y else math.nan for x, y in zip(a, b, strict=True)]
    raise ValueError(f"op is 'delta' or 'ratio', got {op!r}")


def rotate(items: Sequence[str], round_index: int) -> list[str]:
    """`items` starting at a different one each round, so no target always runs first."""
    if not items:
        return []
    shift = round_index % len(items)
    return [*items[shift:], *items[:shift]]
