"""Service metrics (cache, rate limits, circuits, retries, jobs, keys) behind named methods."""

from __future__ import annotations

import enum

from genesis.observability._instruments import Children, Instruments


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


class KeysReload(enum.StrEnum):
    APPLIED = "applied"
    REFUSED = "refused"


class ServiceMetrics:
    # Label values here are names the service chooses (cache, limit, circuit, provider, queue),
    # so the children are kept, as the request path keeps its own.
    def __init__(self, instruments: Instruments, track: str) -> None:
        self._track = track
        self._cache_lookups = Children(instruments.cache_lookups)
        self._rate_limit_rejections = Children(instruments.rate_limit_rejections)
        self._circuit_state = Children(instruments.circuit_state)
        self._upstream_retries = Children(instruments.upstream_retries)
        self._job_queue_depth = Children(instruments.job_queue_depth)
        self._job_oldest_age = Children(instruments.job_oldest_age)
        self._jobs_finished = Children(instruments.jobs_finished)
        self._keys_reloads = Children(instruments.keys_reloads)
        # Made on first use: a process without readiness (genesis worker) exports no series.
        self._ready = Children(instruments.ready)

    def cache_hit(self, cache: str) -> None:
        self._cache_lookups(cache, "hit", self._track).inc()

    def cache_miss(self, cache: str) -> None:
        self._cache_lookups(cache, "miss", self._track).inc()

    def rate_limited(self, limit: str) -> None:
        """A request was refused by `limit` (for example `rpm` or `tpm`)."""
        self._rate_limit_rejections(limit, self._track).inc()

    def circuit_state(self, circuit: str, state: CircuitState) -> None:
        self._circuit_state(circuit, self._track).set(int(state))

    def upstream_retry(self, provider: str) -> None:
        self._upstream_retries(provider, self._track).inc()

    def job_queue(self, queue: str, *, depth: int, oldest_age_seconds: float) -> None:
        """Report what a look at the queue saw: how many jobs wait and how old the oldest is."""
        if depth < 0 or oldest_age_seconds < 0:
            raise ValueError(
                f"queue depth and age must be >= 0, got {depth} and {oldest_age_seconds}"
            )
        self._job_queue_depth(queue, self._track).set(depth)
        self._job_oldest_age(queue, self._track).set(oldest_age_seconds)

    def job_finished(self, queue: str, outcome: JobOutcome) -> None:
        self._jobs_finished(queue, JobOutcome(outcome).value, self._track).inc()

    def keys_reload(self, result: KeysReload) -> None:
        """The keys file changed, and its new version was applied or refused."""
        self._keys_reloads(KeysReload(result).value, self._track).inc()

    def ready(self, ready: bool) -> None:
        """What readiness said last: ready (1) or not (0: starting, draining, a check down)."""
        self._ready(self._track).set(1 if ready else 0)
