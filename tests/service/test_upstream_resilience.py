"""Retries, deadlines and the circuit breaker of the openai provider, through the real
`genesis serve` process against the OpenAI stub: every fault the stub can play, with the
status, the body, what the upstream received, and that the call ended within its deadline."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.answers import openai_error, sse_events
from harness.genesis import GenesisFactory, GenesisServer, genesis_servers
from harness.openai_stub import DEFAULT_REPLY, Fault, OpenAIStub

pytestmark = pytest.mark.integration

UPSTREAM_KEY = "sk-upstream-resilience-0123456789"
MODEL = "gpt-4o-mini"
# Slack for process scheduling on a busy 2-core machine, on top of a configured bound.
SLACK = 1.5


def base_settings(upstream: OpenAIStub, **extra: str) -> dict[str, str]:
    return {
        "GENESIS_PROVIDER": "openai",
        "GENESIS_OPENAI_BASE_URL": upstream.base_url,
        "GENESIS_OPENAI_API_KEY": UPSTREAM_KEY,
        "GENESIS_LOG_LEVEL": "debug",
        **extra,
    }


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAIStub]:
    with OpenAIStub(
        api_key=UPSTREAM_KEY, log_path=tmp_path_factory.mktemp("upstream") / "stub.log"
    ) as stub:
        yield stub


class Servers:
    """One `genesis serve` per configuration, started on first use, shared by the module."""

    def __init__(self, start: GenesisFactory, upstream: OpenAIStub) -> None:
        self._start = start
        self._upstream = upstream
        self.started: dict[str, GenesisServer] = {}

    def get(self, name: str, **settings: str) -> GenesisServer:
        if name not in self.started:
            self.started[name] = self._start(base_settings(self._upstream, **settings))
        self._upstream.reset()
        return self.started[name]


@pytest.fixture(scope="module")
def servers(upstream: OpenAIStub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    log_dir: Path = tmp_path_factory.mktemp("service")
    with genesis_servers(log_dir) as start:
        pool = Servers(start, upstream)
        yield pool
    for server in pool.started.values():
        assert UPSTREAM_KEY not in server.log_path.read_text()


# Retries on, quick backoff, breaker off: how each fault is retried.
RETRYING = {
    "GENESIS_OPENAI_MAX_RETRIES": "2",
    "GENESIS_OPENAI_RETRY_BASE_SECONDS": "0.05",
    "GENESIS_OPENAI_RETRY_MAX_SECONDS": "0.2",
    "GENESIS_OPENAI_RETRY_AFTER_MAX_SECONDS": "1",
    "GENESIS_OPENAI_READ_TIMEOUT": "1",
    "GENESIS_OPENAI_TOTAL_TIMEOUT": "1.5",
    "GENESIS_REQUEST_DEADLINE_SECONDS": "6",
    "GENESIS_CIRCUIT_FAILURE_THRESHOLD": "0",
}


@pytest.fixture
def retrying(servers: Servers) -> GenesisServer:
    return servers.get("retrying", **RETRYING)


def chat(
    server: GenesisServer, timeout: float = 20, **extra: object
) -> tuple[httpx.Response, float]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello upstream"}], **extra}
    started = time.monotonic()
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=timeout)
    return response, time.monotonic() - started


def streamed_text(data: list[str]) -> str:
    chunks = [json.loads(item) for item in data if item != "[DONE]" and '"error"' not in item]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def error_of(response: httpx.Response) -> dict[str, object]:
    return openai_error(response, secret=UPSTREAM_KEY)


def metric(server: GenesisServer, name: str, **labels: str) -> float:
    text = httpx.get(server.metrics_url, timeout=5).text
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def retries(server: GenesisServer) -> float:
    return metric(server, "genesis_upstream_retries_total", provider="openai")


# -- retried faults -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Fault.status(500), Fault.status(502), Fault.status(503), Fault.reset(), Fault.hang()],
    ids=["500", "502", "503", "reset", "hang"],
)
def test_transient_failures_are_retried_until_success(
    retrying: GenesisServer, upstream: OpenAIStub, fault: Fault
) -> None:
    before = retries(retrying)
    upstream.script(fault, fault)
    response, elapsed = chat(retrying)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == DEFAULT_REPLY
    assert len(upstream.chat_requests) == 3
    assert retries(retrying) == before + 2
    assert elapsed < 6 + SLACK


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault.status(503), 502, "upstream_error"),
        (Fault.reset(), 502, "upstream_error"),
        (Fault.hang(), 504, "upstream_timeout"),
    ],
    ids=["503", "reset", "hang"],
)
def test_retries_are_bounded(
    retrying: GenesisServer, upstream: OpenAIStub, fault: Fault, status: int, code: str
) -> None:
    upstream.set_default(fault)
    response, elapsed = chat(retrying)
    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert len(upstream.chat_requests) == 3, "one attempt and GENESIS_OPENAI_MAX_RETRIES=2"
    # Three hung attempts of 1.5 s each (the attempt timeout), well inside the deadline.
    assert elapsed < 3 * 1.5 + 0.5 + SLACK


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_4xx_is_never_retried(retrying: GenesisServer, upstream: OpenAIStub, status: int) -> None:
    before = retries(retrying)
    upstream.script(Fault.status(status))
    response, _ = chat(retrying)
    assert response.status_code in (400, 502)
    assert len(upstream.chat_requests) == 1
    assert retries(retrying) == before


def test_429_waits_out_a_short_retry_after(retrying: GenesisServer, upstream: OpenAIStub) -> None:
    upstream.script(Fault.status(429, retry_after=0.6))
    response, elapsed = chat(retrying)
    assert response.status_code == 200
    first, second = upstream.chat_requests
    assert second.received_at - first.received_at >= 0.55, "Retry-After was honoured"
    assert elapsed < 0.6 + SLACK


def test_429_with_a_long_retry_after_passes_through_at_once(
    retrying: GenesisServer, upstream: OpenAIStub
) -> None:
    upstream.script(Fault.status(429, retry_after=30))
    response, elapsed = chat(retrying)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"
    assert error_of(response)["code"] == "rate_limit_exceeded"
    assert len(upstream.chat_requests) == 1
    assert elapsed < SLACK


def test_429_after_the_last_retry_passes_through(
    retrying: GenesisServer, upstream: OpenAIStub
) -> None:
    upstream.set_default(Fault.status(429, retry_after=0.1))
    response, _ = chat(retrying)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "0.1"
    assert len(upstream.chat_requests) == 3


def test_sdk_retries_are_off(retrying: GenesisServer, upstream: OpenAIStub) -> None:
    """Only genesis retries: 3 attempts in all, not 3 x (1 + the SDK's 2)."""
    upstream.set_default(Fault.status(500))
    chat(retrying)
    assert len(upstream.chat_requests) == 3


# -- streams ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Fault.reset(), Fault.status(503), Fault.reset_mid_stream(after_chunks=0)],
    ids=["reset", "503", "reset-before-first-chunk"],
)
def test_stream_failing_before_its_first_chunk_is_retried(
    retrying: GenesisServer, upstream: OpenAIStub, fault: Fault
) -> None:
    upstream.script(fault)
    response, _ = chat(retrying, stream=True)
    assert response.status_code == 200
    data = sse_events(response)
    assert data[-1] == "[DONE]"
    assert streamed_text(data) == DEFAULT_REPLY
    assert len(upstream.chat_requests) == 2


def test_malformed_first_chunk_is_retried(retrying: GenesisServer, upstream: OpenAIStub) -> None:
    upstream.script(Fault.malformed_chunk(after_chunks=0))
    response, _ = chat(retrying, stream=True)
    data = sse_events(response)
    assert streamed_text(data) == DEFAULT_REPLY
    assert len(upstream.chat_requests) == 2


def test_stream_that_stalls_mid_way_ends_with_timeout_event_and_done(
    retrying: GenesisServer, upstream: OpenAIStub
) -> None:
    upstream.script(Fault.ok(chunk_latency=5))
    response, elapsed = chat(retrying, stream=True)
    assert response.status_code == 200
    data = sse_events(response)
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["code"] == "upstream_timeout"
    assert len(upstream.chat_requests) == 1, "output already reached the client: no retry"
    # The read timeout (1 s) ended it, long before the upstream's 5 s pause.
    assert elapsed < 1 + SLACK


@pytest.mark.parametrize(
    "fault",
    [Fault.reset_mid_stream(after_chunks=3), Fault.malformed_chunk(after_chunks=2)],
    ids=["reset", "malformed"],
)
def test_stream_broken_mid_way_is_not_retried(
    retrying: GenesisServer, upstream: OpenAIStub, fault: Fault
) -> None:
    upstream.script(fault)
    response, _ = chat(retrying, stream=True)
    data = sse_events(response)
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["code"] == "upstream_error"
    assert len(upstream.chat_requests) == 1


def test_non_streaming_broken_body_is_retried(
    retrying: GenesisServer, upstream: OpenAIStub
) -> None:
    upstream.script(Fault.reset_mid_stream(), Fault.malformed_chunk())
    response, _ = chat(retrying)
    assert response.status_code == 200
    assert len(upstream.chat_requests) == 3


# -- the deadline -------------------------------------------------------------------------------

DEADLINE = 2.0


@pytest.fixture
def deadlined(servers: Servers) -> GenesisServer:
    return servers.get(
        "deadline",
        GENESIS_OPENAI_MAX_RETRIES="5",
        GENESIS_OPENAI_RETRY_BASE_SECONDS="0.05",
        GENESIS_OPENAI_RETRY_AFTER_MAX_SECONDS="5",
        GENESIS_OPENAI_READ_TIMEOUT="30",
        GENESIS_OPENAI_TOTAL_TIMEOUT="30",
        GENESIS_REQUEST_DEADLINE_SECONDS=str(DEADLINE),
        GENESIS_CIRCUIT_FAILURE_THRESHOLD="0",
    )


def test_deadline_bounds_a_hung_upstream(deadlined: GenesisServer, upstream: OpenAIStub) -> None:
    upstream.script(Fault.hang())
    response, elapsed = chat(deadlined)
    assert response.status_code == 504
    assert error_of(response)["code"] == "upstream_timeout"
    assert DEADLINE - 0.1 <= elapsed < DEADLINE + SLACK


def test_deadline_bounds_all_attempts(deadlined: GenesisServer, upstream: OpenAIStub) -> None:
    # Each attempt is slow and fails; retries alone (5) would take far longer than the deadline.
    upstream.set_default(Fault.status(503, retry_after=0.7, latency=0.2))
    response, elapsed = chat(deadlined)
    assert response.status_code in (502, 504)
    assert elapsed < DEADLINE + SLACK
    assert 2 <= len(upstream.chat_requests) <= 3


def test_deadline_bounds_a_slow_stream(deadlined: GenesisServer, upstream: OpenAIStub) -> None:
    # Every chunk arrives within the read timeout, but the whole stream would take ~5 s.
    upstream.script(Fault.ok(chunk_latency=0.4))
    response, elapsed = chat(deadlined, stream=True)
    data = sse_events(response)
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["code"] == "upstream_timeout"
    assert "deadline" in json.loads(data[-2])["error"]["message"]
    assert elapsed < DEADLINE + SLACK


def test_stream_hanging_before_its_first_chunk_gets_504(
    deadlined: GenesisServer, upstream: OpenAIStub
) -> None:
    upstream.script(Fault.hang())
    response, elapsed = chat(deadlined, stream=True)
    assert response.status_code == 504
    assert error_of(response)["code"] == "upstream_timeout"
    assert elapsed < DEADLINE + SLACK


# -- the circuit breaker ------------------------------------------------------------------------

COOLDOWN = 1.5


@pytest.fixture
def breaking(servers: Servers) -> GenesisServer:
    return servers.get(
        "breaker",
        GENESIS_OPENAI_MAX_RETRIES="0",
        GENESIS_CIRCUIT_FAILURE_THRESHOLD="3",
        GENESIS_CIRCUIT_COOLDOWN_SECONDS=str(COOLDOWN),
    )


def circuit(server: GenesisServer) -> float:
    return metric(server, "genesis_circuit_breaker_state", circuit="upstream")


def test_circuit_opens_answers_503_then_probes_and_closes(
    breaking: GenesisServer, upstream: OpenAIStub
) -> None:
    assert circuit(breaking) == 0
    # 4xx and 429 are answers, not outages: they never count.
    upstream.script(Fault.status(500), Fault.status(400), Fault.status(500), Fault.status(429))
    for _ in range(4):
        chat(breaking)
    assert circuit(breaking) == 0
    upstream.set_default(Fault.status(503))
    for _ in range(3):
        assert chat(breaking)[0].status_code == 502
    assert circuit(breaking) == 2
    upstream.clear_requests()

    response, elapsed = chat(breaking)
    assert response.status_code == 503
    assert error_of(response)["code"] == "upstream_unavailable"
    assert 1 <= int(response.headers["Retry-After"]) <= 2
    assert elapsed < SLACK
    assert upstream.chat_requests == [], "an open circuit does not call the upstream"
    streamed, _ = chat(breaking, stream=True)
    assert streamed.status_code == 503

    # After the cooldown one probe goes through; it fails, so the circuit opens again.
    time.sleep(COOLDOWN + 0.1)
    assert chat(breaking)[0].status_code == 502
    assert len(upstream.chat_requests) == 1
    assert chat(breaking)[0].status_code == 503
    assert circuit(breaking) == 2

    # The next probe succeeds and closes it.
    upstream.set_default(Fault.ok())
    time.sleep(COOLDOWN + 0.1)
    assert chat(breaking)[0].status_code == 200
    assert circuit(breaking) == 0
    assert chat(breaking, stream=True)[0].status_code == 200
    log = breaking.log_path.read_text()
    assert '"state": "open"' in log
    assert '"state": "half_open"' in log
    assert '"state": "closed"' in log


def test_broken_streams_count_against_the_upstream(
    breaking: GenesisServer, upstream: OpenAIStub
) -> None:
    time.sleep(COOLDOWN + 0.1)  # whatever an earlier test left open is probe-able again
    chat(breaking)
    assert circuit(breaking) == 0
    upstream.set_default(Fault.reset_mid_stream(after_chunks=2))
    for _ in range(3):
        data = sse_events(chat(breaking, stream=True)[0])
        assert data[-1] == "[DONE]"
    assert circuit(breaking) == 2
    upstream.set_default(Fault.ok())
    time.sleep(COOLDOWN + 0.1)
    assert chat(breaking)[0].status_code == 200


def test_empty_stream_ends_with_done(retrying: GenesisServer, upstream: OpenAIStub) -> None:
    upstream.script(Fault.no_done(after_chunks=0))
    response, _ = chat(retrying, stream=True)
    assert response.status_code == 200
    assert sse_events(response) == ["[DONE]"]


def open_the_circuit(server: GenesisServer, upstream: OpenAIStub) -> None:
    time.sleep(COOLDOWN + 0.1)
    upstream.set_default(Fault.status(503))
    while circuit(server) != 2:
        chat(server)
    upstream.set_default(Fault.ok())
    upstream.clear_requests()


def test_a_stream_can_be_the_probe(breaking: GenesisServer, upstream: OpenAIStub) -> None:
    open_the_circuit(breaking, upstream)
    time.sleep(COOLDOWN + 0.1)
    # A slow stream: the circuit closes at its first chunk, not after the whole generation.
    upstream.script(Fault.ok(chunk_latency=0.1))
    with httpx.stream(
        "POST",
        f"{breaking.url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True},
        timeout=10,
    ) as probe:
        assert probe.status_code == 200
        assert circuit(breaking) == 0
        assert chat(breaking)[0].status_code == 200, "others pass while the probe streams"
        probe.read()


def test_a_probe_whose_client_left_frees_the_slot(
    breaking: GenesisServer, upstream: OpenAIStub
) -> None:
    open_the_circuit(breaking, upstream)
    time.sleep(COOLDOWN + 0.1)
    upstream.script(Fault.hang())
    with pytest.raises(httpx.ReadTimeout):
        chat(breaking, timeout=0.5)
    upstream.wait_for_requests(1)
    time.sleep(0.3)  # the service notices the disconnect and cancels the attempt
    assert circuit(breaking) == 1, "still half-open: a departed client is no verdict"
    # The slot is free again: the next request probes (and, the upstream fine, closes).
    assert chat(breaking)[0].status_code == 200
    assert circuit(breaking) == 0
