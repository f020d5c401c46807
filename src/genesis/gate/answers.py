"""Prometheus answers turned into what the judges read (pure).

The client returns samples and series; threshold measurements want one vector per point in
time, the comparative judge wants a pooled series per track and event counts. Keeping these
conversions apart from the HTTP calls lets them be tested on plain data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from genesis.gate.prometheus import Sample, Series
from genesis.gate.proportions import Counts


def vector(samples: Sequence[Sample]) -> tuple[float, ...]:
    """An instant answer as a condition's `result`: one number per series."""
    return tuple(s.value for s in samples)


def pooled(series: Sequence[Series]) -> list[float]:
    """Every point of every series, in time order: a query that answers per instance (or per
    route) compares all of its points, rather than silently keeping the first series."""
    points = sorted((t, v) for s in series for t, v in s.points)
    return [v for _, v in points]


def vectors_at(
    series: Sequence[Series], times: Sequence[float], start: float, step: float
) -> list[tuple[float, ...]]:
    """For each planned time, the value of every series there (an empty vector when no series
    had a point: the same "no data" an instant query at that time would give).

    Prometheus evaluates a range query at exactly start + k * step, so points are matched by
    their step index, which is robust to the float formatting of timestamps.
    """
    slots: list[list[float]] = [[] for _ in times]
    index_of = {round((t - start) / step): i for i, t in enumerate(times)}
    for one in series:
        for timestamp, value in one.points:
            slot = index_of.get(round((timestamp - start) / step))
            if slot is not None:
                slots[slot].append(value)
    return [tuple(values) for values in slots]


def total(samples: Sequence[Sample], what: str) -> float:
    """The sum of an instant answer; no series at all means none counted (e.g. no 5xx yet)."""
    value = math.fsum(s.value for s in samples)
    if not math.isfinite(value):
        raise ValueError(f"the {what} query gave {value}, not a count")
    return value


def counts(events: Sequence[Sample], requests: Sequence[Sample]) -> Counts:
    """Events out of requests; `increase()` extrapolates, so both may be fractional."""
    return Counts(total(events, "events"), total(requests, "total"))
