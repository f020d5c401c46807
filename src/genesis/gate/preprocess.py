"""Preprocessing of metric series before any test sees them.

NaN and infinities are dropped and counted, never silently compared (a NaN makes every
comparison false, which is how a canary with no traffic ends up "passing"). Outlier removal
is optional and off by default: trimming extreme points is exactly what hides a tail or
variance regression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from genesis.gate.verdict import SampleSummary

FloatArray = npt.NDArray[np.float64]


class OutlierPolicy(StrEnum):
    KEEP = "keep"
    IQR = "iqr"  # Kayenta's detector: drop points beyond factor x IQR outside the quartiles


@dataclass(frozen=True)
class Cleaned:
    values: FloatArray
    dropped_nonfinite: int
    dropped_outliers: int


def as_array(values: Sequence[float] | FloatArray) -> FloatArray:
    """A float64 copy of the input; a clear error for anything that is not a flat series."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a metric series must be a list of numbers: {exc}") from exc
    if array.ndim != 1:
        raise ValueError(f"a metric series must be one-dimensional, got shape {array.shape}")
    return array.copy()


def drop_nonfinite(values: FloatArray) -> tuple[FloatArray, int]:
    finite = np.isfinite(values)
    return values[finite], int(values.size - np.count_nonzero(finite))


def drop_outliers_iqr(values: FloatArray, factor: float = 3.0) -> tuple[FloatArray, int]:
    """Remove points beyond `factor` interquartile ranges outside the quartiles."""
    if values.size < 4:
        return values, 0
    q1, q3 = np.percentile(values, [25.0, 75.0])
    iqr = q3 - q1
    keep = (values >= q1 - factor * iqr) & (values <= q3 + factor * iqr)
    return values[keep], int(values.size - np.count_nonzero(keep))


def clean(
    values: Sequence[float] | FloatArray,
    outliers: OutlierPolicy = OutlierPolicy.KEEP,
    iqr_factor: float = 3.0,
) -> Cleaned:
    finite, nonfinite = drop_nonfinite(as_array(values))
    if outliers is OutlierPolicy.IQR:
        kept, removed = drop_outliers_iqr(finite, iqr_factor)
        return Cleaned(kept, nonfinite, removed)
    return Cleaned(finite, nonfinite, 0)


def summarize(cleaned: Cleaned) -> SampleSummary:
    values = cleaned.values
    if values.size == 0:
        return SampleSummary(
            count=0,
            dropped_nonfinite=cleaned.dropped_nonfinite,
            dropped_outliers=cleaned.dropped_outliers,
        )
    return SampleSummary(
        count=int(values.size),
        dropped_nonfinite=cleaned.dropped_nonfinite,
        dropped_outliers=cleaned.dropped_outliers,
        mean=float(np.mean(values)),
        median=float(np.median(values)),
        p99=float(np.percentile(values, 99.0)),
        std=float(np.std(values, ddof=1)) if values.size > 1 else 0.0,
        minimum=float(np.min(values)),
        maximum=float(np.max(values)),
    )
