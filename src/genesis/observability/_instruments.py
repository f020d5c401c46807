"""Every metric family genesis.observability emits, defined in this one place.

Names follow Prometheus conventions (base units, `_total` for counters); the GenAI families
are the OpenTelemetry GenAI semantic conventions translated to Prometheus form (dots become
underscores, the unit becomes a suffix) with the conventions' advised bucket boundaries.
Every family carries a `track` label so any series can be split by deployment track.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

# OpenTelemetry's advised boundaries for `http.server.request.duration`, extended to a
# minute because streamed LLM answers are measured until their last byte.
HTTP_DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip
# Advised by the GenAI conventions for gen_ai.client.operation.duration and
# gen_ai.client.operation.time_to_first_chunk.
GENAI_DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
# Advised by the GenAI conventions for gen_ai.client.token.usage.
GENAI_TOKEN_BUCKETS: tuple[float, ...] = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip

Family = TypeVar("Family", Counter, Gauge, Histogram)


class Children(Generic[Family]):
    """The labelled children of one family, kept once made: `children(value, ...)`.

    `.labels()` validates its arguments and takes a lock on every call, which is most of what
    instrumenting a request costs. Children are never removed, and callers pass only bounded
    label values (route templates, known methods, resolved models), so the dict stays small.
    Values are positional, in the family's label order.
    """

    def __init__(self, family: Family) -> None:
        self._family: Family = family
        self._made: dict[tuple[str, ...], Family] = {}

    def __call__(self, *values: str) -> Family:
        child = self._made.get(values)
        if child is None:
            child = self._family.labels(*values)
            self._made[values] = child
        return child


GENAI_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "track")


@dataclass(frozen=True)
class Instruments:
    """The metric families of one registry."""

    http_requests: Counter
    http_duration: Histogram
    http_in_flight: Gauge
    build_info: Gauge
    genai_duration: Histogram
    genai_tokens: Histogram
    genai_first_chunk: Histogram
    cache_lookups: Counter
    rate_limit_rejections: Counter
    circuit_state: Gauge
    upstream_retries: Counter
    job_queue_depth: Gauge
    job_oldest_age: Gauge
    jobs_finished: Counter
    keys_reloads: Counter
    ready: Gauge


def _create(registry: CollectorRegistry) -> Instruments:
    return Instruments(
        http_requests=Counter(
            "http_requests_total",
            "HTTP requests answered, by method, route template, status code and track.",
            ("method", "route", "status", "track"),
            registry=registry,
        ),
        http_duration=Histogram(
            "http_request_duration_seconds",
            "Time from the request's arrival until the last byte of its response body was sent.",
            ("method", "route", "track"),
            buckets=HTTP_DURATION_BUCKETS,
            registry=registry,
        ),
        # livesum: a dead worker's requests are no longer in flight.
        http_in_flight=Gauge(
            "http_requests_in_flight",
            "HTTP requests being served right now.",
            ("track",),
            multiprocess_mode="livesum",
            registry=registry,
        ),
        build_info=Gauge(
            "genesis_build_info",
            "Always 1; the labels tell the version, revision and deployment track.",
            ("version", "revision", "track"),
            multiprocess_mode="max",
            registry=registry,
        ),
        genai_duration=Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Duration of a GenAI client operation (gen_ai.client.operation.duration).",
            (*GENAI_LABELS, "error_type"),
            buckets=GENAI_DURATION_BUCKETS,
            registry=registry,
        ),
        genai_tokens=Histogram(
            "gen_ai_client_token_usage",
            "Input and output tokens per GenAI operation (gen_ai.client.token.usage).",
            (*GENAI_LABELS, "gen_ai_token_type"),
            buckets=GENAI_TOKEN_BUCKETS,
            registry=registry,
        ),
        genai_first_chunk=Histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time from issuing a streaming GenAI request until its first chunk arrived"
            " (gen_ai.client.operation.time_to_first_chunk).",
            GENAI_LABELS,
            buckets=GENAI_DURATION_BUCKETS,
            registry=registry,
        ),
        cache_lookups=Counter(
            "genesis_cache_lookups_total",
            "Cache lookups by cache name and result (hit or miss).",
            ("cache", "result", "track"),
            registry=registry,
        ),
        rate_limit_rejections=Counter(
            "genesis_rate_limit_rejections_total",
            "Requests refused by a rate limit, by the limit that refused them.",
            ("limit", "track"),
            registry=registry,
        ),
        # livemax: the worst state any live worker sees is the state worth alerting on.
        circuit_state=Gauge(
            "genesis_circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            ("circuit", "track"),
            multiprocess_mode="livemax",
            registry=registry,
        ),
        upstream_retries=Counter(
            "genesis_upstream_retries_total",
            "Retries of calls to an upstream provider.",
            ("provider", "track"),
            registry=registry,
        ),
        # Every worker observes the same shared queue, so the largest live reading is the truth.
        job_queue_depth=Gauge(
            "genesis_job_queue_depth",
            "Jobs waiting in the queue.",
            ("queue", "track"),
            multiprocess_mode="livemax",
            registry=registry,
        ),
        job_oldest_age=Gauge(
            "genesis_job_oldest_age_seconds",
            "Age of the oldest job still waiting in the queue.",
            ("queue", "track"),
            multiprocess_mode="livemax",
            registry=registry,
        ),
        jobs_finished=Counter(
            "genesis_jobs_finished_total",
            "Jobs that reached a final state, by outcome.",
            ("queue", "outcome", "track"),
            registry=registry,
        ),
        keys_reloads=Counter(
            "genesis_api_keys_reloads_total",
            "Changes of the API keys file seen, by result (applied, or refused as invalid).",
            ("result", "track"),
            registry=registry,
        ),
        # livemin: an instance is ready only if every live worker process says so.
        ready=Gauge(
            "genesis_ready",
            "1 if the instance was ready at its last readiness evaluation (/readyz), else 0.",
            ("track",),
            multiprocess_mode="livemin",
            registry=registry,
        ),
    )


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, Instruments] = (
    weakref.WeakKeyDictionary()
)


def instruments_for(registry: CollectorRegistry | None = None) -> Instruments:
    """The instruments of `registry` (default: the process-wide one), created on first use.

    Several apps in one process (tests, or two Quart apps behind one server) share the families
    instead of failing on duplicate registration.
    """
    target = REGISTRY if registry is None else registry
    found = _BY_REGISTRY.get(target)
    if found is None:
        found = _create(target)
        _BY_REGISTRY[target] = found
    return found
