"""Synthetic traffic for one 5-minute canary analysis, as Prometheus would report it.

Each track serves Poisson traffic. Per 15-second step we draw the request count, the error
count (binomial) and the per-step latency quantiles. A sample quantile of n requests is an
order statistic, so it is drawn exactly: the k-th smallest of n uniforms is Beta(k, n - k + 1),
mapped through the lognormal quantile function. Each step also carries a small multiplicative
jitter per track (noisy neighbours, GC), which is what the variance-only scenario enlarges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

STEP_SECONDS = 15
WINDOW_SECONDS = 300
STEPS = WINDOW_SECONDS // STEP_SECONDS
STEPS_PER_MINUTE = 60 // STEP_SECONDS

BASELINE_ERROR_RATE = 0.005
LATENCY_MEDIAN_S = 0.2
LATENCY_SIGMA = 0.35  # p99 ~ 0.45 s, under Flagger's documented 500 ms threshold
STEP_JITTER = 0.03


@dataclass(frozen=True)
class Track:
    rps: float
    error_rate: float = BASELINE_ERROR_RATE
    latency_factor: float = 1.0
    jitter: float = STEP_JITTER


@dataclass(frozen=True)
class Scenario:
    name: str
    baseline: Track
    canary: Track
    regression: bool  # True when a good judge should fail the canary


@dataclass(frozen=True)
class TrackSeries:
    requests: np.ndarray  # per step
    errors: np.ndarray  # per step
    jitter: np.ndarray  # per step multiplicative factor
    p95: np.ndarray  # per step, NaN where no request was served
    p99: np.ndarray
    track: Track

    @property
    def error_ratio(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.requests > 0, self.errors / self.requests, np.nan)


def _quantile(
    rng: np.random.Generator, requests: np.ndarray, q: float, scale: np.ndarray
) -> np.ndarray:
    n = requests.astype(np.float64)
    out = np.full(n.shape, np.nan)
    served = n > 0
    k = np.ceil(q * n[served])
    u = rng.beta(k, n[served] - k + 1)
    z = stats.norm.ppf(u)
    out[served] = LATENCY_MEDIAN_S * scale[served] * np.exp(LATENCY_SIGMA * z)
    return out


def quantile_of(rng: np.random.Generator, requests: int, q: float, scale: float) -> float:
    """One quantile over `requests` requests (a whole minute, for the threshold check)."""
    if requests <= 0:
        return math.nan
    k = math.ceil(q * requests)
    u = rng.beta(k, requests - k + 1)
    return float(LATENCY_MEDIAN_S * scale * math.exp(LATENCY_SIGMA * stats.norm.ppf(u)))


def simulate(rng: np.random.Generator, track: Track) -> TrackSeries:
    requests = rng.poisson(track.rps * STEP_SECONDS, size=STEPS)
    errors = rng.binomial(requests, track.error_rate)
    jitter = np.exp(rng.normal(0.0, track.jitter, size=STEPS))
    scale = track.latency_factor * jitter
    return TrackSeries(
        requests=requests,
        errors=errors,
        jitter=jitter,
        p95=_quantile(rng, requests, 0.95, scale),
        p99=_quantile(rng, requests, 0.99, scale),
        track=track,
    )


def scenarios() -> list[Scenario]:
    base = Track(rps=100)
    low = Track(rps=1)
    p = BASELINE_ERROR_RATE
    return [
        Scenario("A/A, 100 req/s", base, base, regression=False),
        Scenario("errors +1 pp", base, Track(rps=100, error_rate=p + 0.01), regression=True),
        Scenario("errors +2 pp", base, Track(rps=100, error_rate=p + 0.02), regression=True),
        Scenario("errors +5 pp", base, Track(rps=100, error_rate=p + 0.05), regression=True),
        Scenario("latency +10%", base, Track(rps=100, latency_factor=1.10), regression=True),
        Scenario("latency +25%", base, Track(rps=100, latency_factor=1.25), regression=True),
        Scenario(
            "variance only (median unchanged)",
            base,
            Track(rps=100, jitter=4 * STEP_JITTER),
            regression=True,
        ),
        Scenario("low traffic A/A, 1 req/s", low, low, regression=False),
        Scenario("low traffic, errors +2 pp", low, Track(rps=1, error_rate=p + 0.02), True),
    ]
