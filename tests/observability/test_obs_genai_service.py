"""GenAI and service instruments: what the chat service records around provider calls."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from genesis.observability import CircuitState, JobOutcome, Metrics
from observability.obs_fixture_app import create_app

REGISTRIES: dict[int, CollectorRegistry] = {}


@pytest.fixture
def metrics() -> Metrics:
    registry = CollectorRegistry()
    created = Metrics(track="canary", registry=registry)
    REGISTRIES[id(created)] = registry
    return created


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = REGISTRIES[id(metrics)].get_sample_value(name, labels)
    return 0.0 if found is None else found


LABELS = {
    "gen_ai_operation_name": "chat",
    "gen_ai_provider_name": "openai",
    "gen_ai_request_model": "gpt-4o-mini",
    "track": "canary",
}


async def test_a_streamed_operation_records_duration_first_chunk_and_tokens(
    metrics: Metrics,
) -> None:
    async with metrics.genai.operation(
        operation="chat", provider="openai", model="gpt-4o-mini"
    ) as op:
        await asyncio.sleep(0.05)
        for _ in range(3):
            op.first_chunk()
            await asyncio.sleep(0.02)
        op.usage(input_tokens=20, output_tokens=300)

    assert (
        value(metrics, "gen_ai_client_operation_duration_seconds_count", **LABELS, error_type="")
        == 1
    )
    assert (
        value(metrics, "gen_ai_client_operation_duration_seconds_sum", **LABELS, error_type="")
        >= 0.11
    )
    # One observation despite three chunks, taken after the 50 ms wait, before the whole call.
    assert (
        value(metrics, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **LABELS) == 1
    )
    first = value(metrics, "gen_ai_client_operation_time_to_first_chunk_seconds_sum", **LABELS)
    assert 0.05 <= first < 0.11
    assert (
        value(metrics, "gen_ai_client_token_usage_sum", **LABELS, gen_ai_token_type="input") == 20
    )
    assert (
        value(metrics, "gen_ai_client_token_usage_sum", **LABELS, gen_ai_token_type="output") == 300
    )
    # Advised boundaries: 300 output tokens land above 256 and within 1024.
    assert (
        value(
            metrics,
            "gen_ai_client_token_usage_bucket",
            **LABELS,
            gen_ai_token_type="output",
            le="256.0",
        )
        == 0
    )
    assert (
        value(
            metrics,
            "gen_ai_client_token_usage_bucket",
            **LABELS,
            gen_ai_token_type="output",
            le="1024.0",
        )
        == 1
    )


async def test_a_failing_operation_records_its_error_type_and_reraises(metrics: Metrics) -> None:
    class APITimeoutError(Exception):
        pass

    with pytest.raises(APITimeoutError):
        async with metrics.genai.operation(
            operation="chat", provider="openai", model="gpt-4o-mini"
        ):
            raise APITimeoutError
    async with metrics.genai.operation(
        operation="chat", provider="openai", model="gpt-4o-mini"
    ) as op:
        op.fail("content_filter")
        op.usage(input_tokens=5)

    duration = "gen_ai_client_operation_duration_seconds_count"
    error_type = (
        "test_a_failing_operation_records_its_error_type_and_reraises.<locals>.APITimeoutError"
    )
    assert value(metrics, duration, **LABELS, error_type=error_type) == 1
    assert value(metrics, duration, **LABELS, error_type="content_filter") == 1
    assert value(metrics, duration, **LABELS, error_type="") == 0
    # Not streamed: no time to first chunk; unknown output tokens: not recorded.
    assert (
        value(metrics, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **LABELS) == 0
    )
    assert (
        value(metrics, "gen_ai_client_token_usage_count", **LABELS, gen_ai_token_type="output") == 0
    )


def test_genai_bad_input_is_refused(metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="GenAI model must be a non-empty string"):
        metrics.genai.operation(operation="chat", provider="openai", model="")
    op = metrics.genai.operation(operation="chat", provider="openai", model="m")
    with pytest.raises(ValueError, match="output token count must be >= 0, got -1"):
        op.usage(output_tokens=-1)
    with pytest.raises(ValueError, match="error_type must be a non-empty string"):
        op.fail("")


def test_service_metrics(metrics: Metrics) -> None:
    service = metrics.service
    service.cache_hit("completions")
    service.cache_hit("completions")
    service.cache_miss("completions")
    service.rate_limited("tpm")
    service.circuit_state("openai", CircuitState.OPEN)
    service.upstream_retry("openai")
    service.job_queue("batch", depth=7, oldest_age_seconds=42.5)
    service.job_finished("batch", JobOutcome.SUCCEEDED)
    service.job_finished("batch", JobOutcome("failed"))

    track = {"track": "canary"}
    assert (
        value(metrics, "genesis_cache_lookups_total", cache="completions", result="hit", **track)
        == 2
    )
    assert (
        value(metrics, "genesis_cache_lookups_total", cache="completions", result="miss", **track)
        == 1
    )
    assert value(metrics, "genesis_rate_limit_rejections_total", limit="tpm", **track) == 1
    assert value(metrics, "genesis_circuit_breaker_state", circuit="openai", **track) == 2
    assert value(metrics, "genesis_upstream_retries_total", provider="openai", **track) == 1
    assert value(metrics, "genesis_job_queue_depth", queue="batch", **track) == 7
    assert value(metrics, "genesis_job_oldest_age_seconds", queue="batch", **track) == 42.5
    assert (
        value(metrics, "genesis_jobs_finished_total", queue="batch", outcome="succeeded", **track)
        == 1
    )
    assert (
        value(metrics, "genesis_jobs_finished_total", queue="batch", outcome="failed", **track) == 1
    )
    with pytest.raises(ValueError, match="queue depth and age must be >= 0"):
        service.job_queue("batch", depth=-1, oldest_age_seconds=0)
    with pytest.raises(ValueError, match="'lost' is not a valid JobOutcome"):
        service.job_finished("batch", "lost")  # type: ignore[arg-type]


async def test_the_fixture_app_records_genai_through_the_extension() -> None:
    registry = CollectorRegistry()
    response = await create_app(registry=registry).test_client().get("/chat")
    assert response.status_code == 200
    labels = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "fixture",
        "gen_ai_request_model": "tiny-1",
        "track": "stable",
    }
    assert (
        registry.get_sample_value(
            "gen_ai_client_token_usage_count", {**labels, "gen_ai_token_type": "input"}
        )
        == 1
    )
