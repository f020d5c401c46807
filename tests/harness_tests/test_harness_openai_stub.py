"""The OpenAI stub against the official `openai` SDK: protocol, recording and every fault."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from harness.openai_stub import (
    DEFAULT_MODELS,
    DEFAULT_REPLY,
    Fault,
    FaultKind,
    OpenAIStub,
    reply_pieces,
)
from harness.processes import ManagedProcess, free_port, http_ok

pytestmark = pytest.mark.integration

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello in five words"},
]
PROMPT_WORDS = 3 + 5
REPLY_PIECES = reply_pieces(DEFAULT_REPLY)
TESTS_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def client(openai_stub: OpenAIStub) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=openai_stub.base_url, api_key="sk-test", max_retries=0, timeout=10
    ) as sdk:
        yield sdk


@pytest.fixture
async def aclient(openai_stub: OpenAIStub) -> Any:
    async with openai.AsyncOpenAI(
        base_url=openai_stub.base_url, api_key="sk-test", max_retries=0, timeout=10
    ) as sdk:
        yield sdk


def stream_texts(client: openai.OpenAI, **extra: Any) -> list[str]:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra
    )
    return [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]


def drain(stream: Any, into: list[str | None]) -> None:
    for chunk in stream:
        into.append(chunk.choices[0].delta.content)


async def adrain(stream: Any, into: list[str | None]) -> None:
    async for chunk in stream:
        into.append(chunk.choices[0].delta.content)


# -- the protocol ------------------------------------------------------------------------------


def test_non_streaming_completion_has_reply_and_usage(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == PROMPT_WORDS
    assert completion.usage.completion_tokens == len(REPLY_PIECES)
    assert completion.usage.total_tokens == PROMPT_WORDS + len(REPLY_PIECES)


def test_streaming_sends_chunks_then_a_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    content = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(content) == len(REPLY_PIECES) > 1
    assert "".join(content) == DEFAULT_REPLY
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.prompt_tokens == PROMPT_WORDS
    assert usage_chunk.usage.completion_tokens == len(REPLY_PIECES)


def test_streaming_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    )

    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_sse_wire_format_ends_with_done(openai_stub: OpenAIStub) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{openai_stub.base_url}/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["transfer-encoding"] == "chunked"
        lines = [line for line in response.iter_lines() if line]

    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0].removeprefix("data: "))["object"] == "chat.completion.chunk"


def test_max_tokens_truncates_with_finish_reason_length(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=3
    )

    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "".join(REPLY_PIECES[:3])
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == list(DEFAULT_MODELS)
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


async def test_async_client_streaming_and_not(aclient: openai.AsyncOpenAI) -> None:
    completion = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert completion.choices[0].message.content == DEFAULT_REPLY

    stream = await aclient.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    texts = []
    usage = None
    async for chunk in stream:
        if chunk.choices:
            texts.append(chunk.choices[0].delta.content or "")
        else:
            usage = chunk.usage
    assert "".join(texts) == DEFAULT_REPLY
    assert usage is not None
    assert usage.completion_tokens == len(REPLY_PIECES)


def test_reply_can_be_computed_from_the_request(tmp_path: Path) -> None:
    def echo(body: Any) -> str:
        return f"echo: {body['messages'][-1]['content']}"

    with (
        OpenAIStub(reply=echo) as stub,
        openai.OpenAI(base_url=stub.base_url, api_key="k", max_retries=0) as client,
    ):
        completion = client.chat.completions.create(model="m", messages=MESSAGES)

    assert completion.choices[0].message.content == "echo: Say hello in five words"


# -- recording and validation ------------------------------------------------------------------


def test_records_what_the_client_sent(openai_stub: OpenAIStub, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2)
    client.models.list()

    chat, models = openai_stub.requests
    assert (chat.method, chat.path) == ("POST", "/v1/chat/completions")
    assert chat.authorization == "Bearer sk-test"
    assert chat.headers["content-type"] == "application/json"
    assert chat.json["model"] == "gpt-4o-mini"
    assert chat.json["messages"] == MESSAGES
    assert chat.json["temperature"] == 0.2
    assert (models.method, models.path) == ("GET", "/v1/models")
    assert openai_stub.chat_requests == [chat]


def test_recording_can_be_turned_off_for_benchmarks() -> None:
    with (
        OpenAIStub(record=False) as stub,
        openai.OpenAI(base_url=stub.base_url, api_key="k", max_retries=0) as client,
    ):
        assert client.chat.completions.create(model="m", messages=MESSAGES).choices
        assert stub.requests == []


def test_wait_for_requests_times_out_with_a_count(openai_stub: OpenAIStub) -> None:
    with pytest.raises(TimeoutError, match=r"expected 1 requests within 0\.1s, got 0"):
        openai_stub.wait_for_requests(1, timeout=0.1)


def test_api_key_is_enforced_when_configured() -> None:
    with OpenAIStub(api_key="sk-right") as stub:
        with (
            openai.OpenAI(base_url=stub.base_url, api_key="sk-wrong", max_retries=0) as bad,
            pytest.raises(openai.AuthenticationError) as caught,
        ):
            bad.models.list()
        with openai.OpenAI(base_url=stub.base_url, api_key="sk-right", max_retries=0) as good:
            assert good.models.list().data

    assert caught.value.code == "invalid_api_key"


def test_invalid_requests_get_openai_shaped_400s(
    openai_stub: OpenAIStub, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert caught.value.param == "messages"

    response = httpx.post(
        f"{openai_stub.base_url}/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}

    def chunked_body() -> Iterator[bytes]:
        yield json.dumps({"model": "m", "messages": MESSAGES}).encode()

    chunked = httpx.post(f"{openai_stub.base_url}/chat/completions", content=chunked_body())
    assert chunked.status_code == 200
    assert openai_stub.chat_requests[-1].json["model"] == "m"

    with socket.create_connection(("127.0.0.1", openai_stub.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: s\r\nContent-Length: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 400 ")

    unknown = httpx.get(f"{openai_stub.base_url}/nowhere")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "invalid_request_error"


# -- faults ------------------------------------------------------------------------------------


def test_rate_limit_surfaces_with_retry_after(
    openai_stub: OpenAIStub, client: openai.OpenAI
) -> None:
    openai_stub.script(Fault.status(429, retry_after=2))

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "requests"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (500, openai.InternalServerError),
        (502, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_error_statuses_map_to_sdk_exceptions(
    openai_stub: OpenAIStub, client: openai.OpenAI, status: int, error: type[Exception]
) -> None:
    openai_stub.script(Fault.status(status, message=f"scripted {status}"))

    with pytest.raises(error, match=f"scripted {status}") as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert isinstance(caught.value, openai.APIStatusError)
    assert caught.value.status_code == status


def test_streaming_request_gets_the_error_status_too(
    openai_stub: OpenAIStub, client: openai.OpenAI
) -> None:
    openai_stub.script(Fault.status(503, retry_after=0.5))

    with pytest.raises(openai.InternalServerError) as caught:
        stream_texts(client)

    assert caught.value.response.headers["retry-after"] == "0.5"


def test_hang_surfaces_as_timeout(openai_stub: OpenAIStub, client: openai.OpenAI) -> None:
    openai_stub.script(Fault.hang())

    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )


async def test_hang_surfaces_as_timeout_async(
    openai_stub: OpenAIStub, aclient: openai.AsyncOpenAI
) -> None:
    openai_stub.script(Fault.hang())

    with pytest.raises(openai.APITimeoutError):
        await aclient.with_options(timeout=0.3).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )


def test_late_answer_arrives_after_the_delay(
    openai_stub: OpenAIStub, client: openai.OpenAI
) -> None:
    openai_stub.script(Fault.hang(0.3))

    started = time.monotonic()
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert time.monotonic() - started >= 0.3
    assert completion.choices[0].message.content == DEFAULT_REPLY


def test_chunk_latency_spaces_the_stream(openai_stub: OpenAIStub, client: openai.OpenAI) -> None:
    openai_stub.script(Fault.ok("one two three", chunk_latency=0.1))
    arrivals = []
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())

    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(arrivals) == 3
    assert min(gaps) >= 0.08


def test_reset_before_response_is_a_connection_error(
    openai_stub: OpenAIStub, client: openai.OpenAI
) -> None:
    openai_stub.script(Fault.reset())

    with pytest.raises(openai.APIConnectionError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert not isinstance(caught.value, openai.APITimeoutError)


async def test_reset_before_response_async(
    openai_stub: OpenAIStub, aclient: openai.AsyncOpenAI
) -> None:
    openai_stub.script(Fault.reset())

    with pytest.raises(openai.APIConnectionError):
        await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_reset_is_a_tcp_rst_not_a_fin(openai_stub: OpenAIStub) -> None:
    openai_stub.script(Fault.reset())
    body = json.dumps({"model": "m", "messages": MESSAGES}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: stub\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    with socket.create_connection(("127.0.0.1", openai_stub.port), timeout=5) as sock:
        sock.sendall(request)
        # A FIN would read as b""; only an RST raises ECONNRESET.
        with pytest.raises(ConnectionResetError):
            sock.recv(1024)


def test_reset_mid_stream_raises_in_the_iterator(
    openai_stub: OpenAIStub, client: openai.OpenAI
) -> None:
    openai_stub.script(Fault.reset_mid_stream(after_chunks=3))
    received: list[str | None] = []

    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError):
        drain(stream, received)

    # The role chunk, then two content chunks, then the reset.
    assert received == ["", *REPLY_PIECES[:2]]


async def test_reset_mid_stream_async(openai_stub: OpenAIStub, aclient: openai.AsyncOpenAI) -> None:
    openai_stub.script(Fault.reset_mid_stream(after_chunks=2))
    received: list[str | None] = []

    stream = await aclient.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError):
        await adrain(stream, received)

    assert received == ["", REPLY_PIECES[0]]


def test_reset_mid_body_of_a_non_streaming_answer(
    openai_stub: OpenAIStub, client: openai.OpenAI
) -> None:
    openai_stub.script(Fault.reset_mid_stream())

    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=MESSAGES)


def test_malformed_chunk_breaks_the_iterator(
    openai_stub: OpenAIStub, client: openai.OpenAI
) -> None:
    openai_stub.script(Fault.malformed_chunk(after_chunks=2))
    received: list[str | None] = []

    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    # The SDK lets the JSON decoder's error through unwrapped.
    with pytest.raises(json.JSONDecodeError):
        drain(stream, received)

    assert received == ["", REPLY_PIECES[0]]


def test_stream_without_done_ends_quietly_on_the_wire(openai_stub: OpenAIStub) -> None:
    openai_stub.script(Fault.no_done(after_chunks=2))
    body = {"model": "m", "messages": MESSAGES, "stream": True}

    with httpx.stream("POST", f"{openai_stub.base_url}/chat/completions", json=body) as response:
        lines = [line for line in response.iter_lines() if line]

    assert len(lines) == 2
    assert "data: [DONE]" not in lines


def test_stream_without_done_is_invisible_to_the_sdk(
    openai_stub: OpenAIStub, client: openai.OpenAI
) -> None:
    # Why the fault exists: the SDK ends iteration without complaint, so only the caller's own
    # check (no finish_reason seen) can notice a truncated answer.
    openai_stub.script(Fault.no_done(after_chunks=3))

    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))

    assert len(chunks) == 3
    assert all(c.choices[0].finish_reason is None for c in chunks)


def test_script_is_consumed_in_order_then_the_default(
    openai_stub: OpenAIStub, client: openai.OpenAI
) -> None:
    openai_stub.script(Fault.status(500), Fault.ok("second"))
    assert openai_stub.pending_faults == 2

    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=MESSAGES)
    second = client.chat.completions.create(model="m", messages=MESSAGES)
    third = client.chat.completions.create(model="m", messages=MESSAGES)

    assert second.choices[0].message.content == "second"
    assert third.choices[0].message.content == DEFAULT_REPLY
    assert openai_stub.pending_faults == 0


def test_default_fault_applies_until_reset(openai_stub: OpenAIStub, client: openai.OpenAI) -> None:
    openai_stub.set_default(Fault.status(503))
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=MESSAGES)

    openai_stub.reset()

    assert client.chat.completions.create(model="m", messages=MESSAGES).choices
    assert len(openai_stub.requests) == 1


def test_faults_validate_their_fields() -> None:
    with pytest.raises(ValueError, match="400-599"):
        Fault.status(200)
    with pytest.raises(ValueError, match="latencies must be >= 0"):
        Fault.ok(latency=-1)
    with pytest.raises(ValueError, match="unknown fault fields"):
        Fault.from_json({"kind": "status", "colour": "red"})
    with pytest.raises(ValueError, match="invalid fault"):
        Fault.from_json({"kind": "explode"})
    fault = Fault.status(429, retry_after=1.5)
    assert Fault.from_json(fault.to_json()) == fault
    assert fault.to_json()["kind"] == FaultKind.STATUS.value


# -- lifecycle ---------------------------------------------------------------------------------


def _released(connection: socket.socket) -> bool:
    """The server closed its end: an orderly close (EOF) or, if it had unread data, a reset."""
    try:
        return connection.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_stop_releases_hanging_and_idle_connections(tmp_path: Path) -> None:
    stub = OpenAIStub(log_path=tmp_path / "stub.log").start()
    stub.set_default(Fault.hang())
    body = json.dumps({"model": "m", "messages": MESSAGES}).encode()
    hanging = socket.create_connection(("127.0.0.1", stub.port), timeout=5)
    idle = socket.create_connection(("127.0.0.1", stub.port), timeout=5)
    with hanging, idle:
        hanging.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: s\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        stub.wait_for_requests(1)

        stub.stop()

        assert _released(hanging)
        assert _released(idle)
    assert stub.open_connections == 0
    assert "handler threads still alive" not in (tmp_path / "stub.log").read_text()


def test_runs_as_a_process_scripted_over_http(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stub = ManagedProcess(
        "openai-stub",
        [sys.executable, "-m", "harness.openai_stub", "--port", str(port), "--api-key", "sk-p"],
        log_dir=tmp_path,
        env={"PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])},
    )
    with stub:
        stub.start().wait_ready(lambda: http_ok(f"{base}/_stub/health"), timeout=15)
        script = json.dumps({"faults": [Fault.status(429, retry_after=3).to_json()]}).encode()
        post = urllib.request.Request(f"{base}/_stub/script", data=script, method="POST")
        with urllib.request.urlopen(post, timeout=5) as response:
            assert json.load(response) == {"pending": 1}

        with openai.OpenAI(base_url=f"{base}/v1", api_key="sk-p", max_retries=0) as client:
            with pytest.raises(openai.RateLimitError) as caught:
                client.chat.completions.create(model="m", messages=MESSAGES)
            completion = client.chat.completions.create(model="m", messages=MESSAGES)

        with urllib.request.urlopen(f"{base}/_stub/requests", timeout=5) as response:
            recorded = json.load(response)
        stub.signal(signal.SIGTERM)
        assert stub.wait(timeout=10) == 0

    assert caught.value.response.headers["retry-after"] == "3"
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert [r["headers"]["authorization"] for r in recorded] == ["Bearer sk-p"] * 2
    assert "POST /v1/chat/completions" in stub.log_tail()
