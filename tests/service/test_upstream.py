"""The openai provider against a real OpenAI-compatible upstream (the stub), through the
real `genesis serve` process: pass-through, every upstream fault, and no leaked key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.answers import openai_error, sse_events
from harness.genesis import GenesisServer, genesis_servers
from harness.openai_stub import DEFAULT_REPLY, Fault, OpenAIStub

pytestmark = pytest.mark.integration

UPSTREAM_KEY = "sk-upstream-secret-0123456789abcdef"
MODEL = "gpt-4o-mini"
READ_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAIStub]:
    log_dir = tmp_path_factory.mktemp("upstream")
    with OpenAIStub(api_key=UPSTREAM_KEY, log_path=log_dir / "stub.log") as stub:
        yield stub


# Every fault through both of the SDK's transports: they raise the same errors differently.
@pytest.fixture(scope="module", params=["aiohttp", "httpx"])
def service(
    upstream: OpenAIStub, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[GenesisServer]:
    log_dir: Path = tmp_path_factory.mktemp("service")
    with genesis_servers(log_dir) as start:
        server = start(
            {
                "GENESIS_PROVIDER": "openai",
                "GENESIS_OPENAI_BASE_URL": upstream.base_url,
                "GENESIS_OPENAI_API_KEY": UPSTREAM_KEY,
                "GENESIS_OPENAI_READ_TIMEOUT": str(READ_TIMEOUT),
                "GENESIS_OPENAI_MAX_RETRIES": "0",
                # One fault per test, in a row: the breaker (test_upstream_resilience.py)
                # would open half-way through the module.
                "GENESIS_CIRCUIT_FAILURE_THRESHOLD": "0",
                "GENESIS_LOG_LEVEL": "debug",
                "GENESIS_OPENAI_HTTP_CLIENT": request.param,
            }
        )
        yield server
    # Every test of the module ran against this server: none may have logged the key.
    assert UPSTREAM_KEY not in server.log_path.read_text()


@pytest.fixture
def client(service: GenesisServer, upstream: OpenAIStub) -> Iterator[httpx.Client]:
    upstream.reset()
    # Well above the upstream read timeout: a call that hangs fails here instead.
    with httpx.Client(base_url=service.url, timeout=READ_TIMEOUT + 8) as http:
        yield http


def chat(client: httpx.Client, **extra: object) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello upstream"}], **extra}
    return client.post("/v1/chat/completions", json=body)


def error_of(response: httpx.Response) -> dict[str, object]:
    return openai_error(response, secret=UPSTREAM_KEY)


def test_completion_passes_through(client: httpx.Client, upstream: OpenAIStub) -> None:
    response = chat(client, temperature=0.2, max_tokens=50)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == DEFAULT_REPLY
    sent = upstream.chat_requests[-1]
    assert sent.authorization == f"Bearer {UPSTREAM_KEY}"
    assert sent.json["model"] == MODEL
    assert sent.json["temperature"] == 0.2
    assert "stream" not in sent.json


def test_stream_passes_through(client: httpx.Client, upstream: OpenAIStub) -> None:
    response = chat(client, stream=True, stream_options={"include_usage": True})
    assert response.status_code == 200
    data = sse_events(response)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == DEFAULT_REPLY
    assert chunks[-1]["usage"]["total_tokens"] > 0
    assert upstream.chat_requests[-1].json["stream_options"] == {"include_usage": True}


def test_unknown_model_never_reaches_upstream(client: httpx.Client, upstream: OpenAIStub) -> None:
    response = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-x", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 404
    assert upstream.chat_requests == []


def test_upstream_429_passes_through_with_retry_after(
    client: httpx.Client, upstream: OpenAIStub
) -> None:
    upstream.script(Fault.status(429, retry_after=7))
    response = chat(client)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert error_of(response)["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_upstream_5xx_is_502(client: httpx.Client, upstream: OpenAIStub, status: int) -> None:
    upstream.script(Fault.status(status))
    response = chat(client)
    assert response.status_code == 502
    assert error_of(response)["code"] == "upstream_error"


def test_upstream_rejecting_our_key_is_502(client: httpx.Client, upstream: OpenAIStub) -> None:
    upstream.script(Fault.status(401, message=f"Incorrect API key provided: {UPSTREAM_KEY}"))
    response = chat(client)
    assert response.status_code == 502
    assert "credentials" in str(error_of(response)["message"])


def test_upstream_400_reason_is_passed_on_scrubbed(
    client: httpx.Client, upstream: OpenAIStub
) -> None:
    upstream.script(Fault.status(400, message=f"context too long for key {UPSTREAM_KEY}"))
    response = chat(client)
    assert response.status_code == 400
    message = str(error_of(response)["message"])
    assert "context too long" in message
    assert "[redacted]" in message


def test_upstream_hang_is_504(client: httpx.Client, upstream: OpenAIStub) -> None:
    upstream.script(Fault.hang())
    response = chat(client)
    assert response.status_code == 504
    assert error_of(response)["code"] == "upstream_timeout"


def test_upstream_reset_is_502(client: httpx.Client, upstream: OpenAIStub) -> None:
    upstream.script(Fault.reset())
    response = chat(client)
    assert response.status_code == 502
    assert error_of(response)["code"] == "upstream_error"


def test_failure_before_the_first_chunk_is_a_plain_error(
    client: httpx.Client, upstream: OpenAIStub
) -> None:
    upstream.script(Fault.status(503))
    response = chat(client, stream=True)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "fault",
    [Fault.reset_mid_stream(after_chunks=3), Fault.malformed_chunk(after_chunks=2)],
    ids=["reset", "malformed"],
)
def test_broken_stream_ends_with_error_event_and_done(
    client: httpx.Client, upstream: OpenAIStub, fault: Fault
) -> None:
    upstream.script(fault)
    response = chat(client, stream=True)
    assert response.status_code == 200
    data = sse_events(response)
    assert data[-1] == "[DONE]"
    error = json.loads(data[-2])["error"]
    assert error["code"] == "upstream_error"
    assert len(data) >= 3, "the chunks before the break were delivered"


def test_error_event_mid_stream_ends_with_error_event_and_done(
    client: httpx.Client, upstream: OpenAIStub
) -> None:
    upstream.script(Fault.error_event(after_chunks=2))
    response = chat(client, stream=True)
    assert response.status_code == 200
    data = sse_events(response)
    assert data[-1] == "[DONE]"
    assert data.count("[DONE]") == 1
    error = json.loads(data[-2])["error"]
    assert error["code"] == "upstream_error"
    assert error["type"] == "server_error"
    # The chunks before the error reached the client; the upstream's error is not a chunk.
    assert all("choices" in json.loads(event) for event in data[:-2])
    assert len(data) >= 4


def test_stream_without_done_still_ends_with_done(
    client: httpx.Client, upstream: OpenAIStub
) -> None:
    upstream.script(Fault.no_done())
    data = sse_events(chat(client, stream=True))
    assert data[-1] == "[DONE]"
    assert data.count("[DONE]") == 1


def test_readiness_can_require_the_upstream(tmp_path: Path) -> None:
    with OpenAIStub() as stub, genesis_servers(tmp_path) as start:
        server = start(
            {
                "GENESIS_PROVIDER": "openai",
                "GENESIS_OPENAI_BASE_URL": stub.base_url,
                "GENESIS_OPENAI_MAX_RETRIES": "0",
                "GENESIS_READINESS_CHECKS_UPSTREAM": "true",
            }
        )
        assert httpx.get(f"{server.url}/readyz").json()["checks"] == {"upstream": "ok"}
        stub.stop()
        down = httpx.get(f"{server.url}/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["upstream"].startswith("failed")


def test_a_client_that_leaves_a_completion_is_client_disconnected(
    service: GenesisServer, upstream: OpenAIStub
) -> None:
    # Not "CancelledError", and not an upstream failure: the gate's LLM error rate leaves it out.
    upstream.reset()
    upstream.script(Fault.ok(latency=0.8))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "too slow for me"}]}

    def disconnects() -> list[str]:
        text = httpx.get(service.metrics_url, timeout=5).text
        return [
            line
            for line in text.splitlines()
            if line.startswith("gen_ai_client_operation_duration_seconds_count{")
            and ('error_type="client_disconnected"' in line or "CancelledError" in line)
        ]

    before = disconnects()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{service.url}/v1/chat/completions", json=body, timeout=0.2)
    deadline = time.monotonic() + 10
    while (seen := disconnects()) == before:
        assert time.monotonic() < deadline, "the disconnect was never counted"
        time.sleep(0.1)
    assert all("CancelledError" not in line for line in seen), seen
    [line] = [line for line in seen if line not in before]
    assert 'error_type="client_disconnected"' in line
