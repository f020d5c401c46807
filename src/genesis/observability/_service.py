"""Service metrics (cache, rate limits, circuit breakers, retries, jobs) behind named methods."""

from __future__ import annotations

import enum

from genesis.observability._instruments import Instruments


class CircuitState(enum.IntEnum):
    """Exported as the gauge value, ordered by severity so `max` is the worst."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class JobOutcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class ServiceMetrics:
    def __init__(self, instruments: Instruments, track: str) -> None:
        self._i = instruments
        self._track = track

    def cache_hit(self, cache: str) -> None:
        self._i.cache_lookups.labels(cache=cache, result="hit", track=self._track).inc()

    def cache_miss(self, cache: str) -> None:
        self._i.cache_lookups.labels(cache=cache, result="miss", track=self._track).inc()

    def rate_limited(self, limit: str) -> None:
        """A request was refused by `limit` (for example `rpm` or `tpm`)."""
        self._i.rate_limit_rejections.labels(limit=limit, track=self._track).inc()

    def circuit_state(self, circuit: str, state: CircuitState) -> None:
        self._i.circuit_state.labels(circuit=circuit, track=self._track).set(int(state))

    def upstream_retry(self, provider: str) -> None:
        self._i.upstream_retries.labels(provider=provider, track=self._track).inc()

    def job_queue(self, queue: str, *, depth: int, oldest_age_seconds: float) -> None:
        """Report what a look at the queue saw: how many jobs wait and how old the oldest is."""
        if depth < 0 or oldest_age_seconds < 0:
            raise ValueError(
                f"queue depth and age must be >= 0, got {depth} and {oldest_age_seconds}"
            )
        self._i.job_queue_depth.labels(queue=queue, track=self._track).set(depth)
        self._i.job_oldest_age.labels(queue=queue, track=self._track).set(oldest_age_seconds)

    def job_finished(self, queue: str, outcome: JobOutcome) -> None:
        self._i.jobs_finished.labels(
            queue=queue, outcome=JobOutcome(outcome).value, track=self._track
        ).inc()
