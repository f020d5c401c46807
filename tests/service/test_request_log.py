"""The request log of the real `genesis serve`: one JSON line per request, request ids in and
out, the key's name but never the key, no prompt or completion unless asked for."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from genesis.service.keys import key_line, new_key
from genesis.service.requestlog import RequestRecord, current_record, note_cache, request_id_from
from genesis.service.settings import Settings
from harness.genesis import GenesisServer, genesis_servers
from harness.openai_stub import DEFAULT_REPLY, Fault, OpenAIStub
from harness.secrets import API_KEY_SHAPE, WATCH, SecretWatch

MODEL = "gpt-4o-mini"
UPSTREAM_KEY = "sk-upstream-requestlog-9876543210"
# A marker that must appear nowhere in the logs unless content logging is on.
PROMPT = "the-secret-plan-of-the-user-4242"


def lines(server: GenesisServer) -> list[dict[str, Any]]:
    """The complete JSON lines of the log so far: the server may be mid-way through the last."""
    text = server.log_path.read_text()
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.startswith("{")]


def request_lines(server: GenesisServer) -> list[dict[str, Any]]:
    return [line for line in lines(server) if line.get("event") == "request"]


def line_for(server: GenesisServer, request_id: str) -> dict[str, Any]:
    # The line is written once the last byte went out, so the client may be a moment ahead.
    deadline = time.monotonic() + 5
    while True:
        matching = [line for line in request_lines(server) if line["request_id"] == request_id]
        if matching or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(matching) == 1, f"one request line per request, got {matching}"
    return matching[0]


@pytest.fixture(scope="module")
def alice() -> str:
    key = new_key()
    WATCH.remember(key, "alice's API key")
    return key


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAIStub]:
    with OpenAIStub(api_key=UPSTREAM_KEY) as stub:
        yield stub


def settings_for(upstream: OpenAIStub, keys: Path, **extra: str) -> dict[str, str]:
    return {
        "GENESIS_PROVIDER": "openai",
        "GENESIS_OPENAI_BASE_URL": upstream.base_url,
        "GENESIS_OPENAI_API_KEY": UPSTREAM_KEY,
        "GENESIS_API_KEYS_FILE": str(keys),
        "GENESIS_OPENAI_RETRY_BASE_SECONDS": "0.01",
        **extra,
    }


@pytest.fixture(scope="module")
def service(
    upstream: OpenAIStub, alice: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GenesisServer]:
    log_dir = tmp_path_factory.mktemp("requestlog")
    keys = log_dir / "keys"
    keys.write_text(key_line("alice", alice) + "\n")
    with genesis_servers(log_dir) as start:
        yield start(settings_for(upstream, keys))


def post(
    server: GenesisServer, key: str | None, request_id: str | None = None, **extra: object
) -> httpx.Response:
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], **extra}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers, timeout=20)


@pytest.mark.integration
def test_one_line_per_request_with_its_facts(
    service: GenesisServer, upstream: OpenAIStub, alice: str
) -> None:
    upstream.reset()
    response = post(service, alice, "trace-abc.123")
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-abc.123"
    usage = response.json()["usage"]
    line = line_for(service, "trace-abc.123")
    assert line["level"] == "info"
    assert line["logger"] == "genesis.request"
    assert line["method"] == "POST"
    assert line["route"] == "/v1/chat/completions"
    assert line["status"] == 200
    assert line["duration_ms"] > 0
    assert line["key"] == "alice"
    assert line["model"] == MODEL
    assert line["prompt_tokens"] == usage["prompt_tokens"]
    assert line["completion_tokens"] == usage["completion_tokens"]
    assert line["cache"] is None
    assert line["upstream_attempts"] == 1
    assert "prompt" not in line
    assert "completion" not in line


@pytest.mark.integration
def test_stream_line_counts_retries_and_tokens(
    service: GenesisServer, upstream: OpenAIStub, alice: str
) -> None:
    upstream.reset()
    upstream.script(Fault.status(503))
    response = post(service, alice, "stream-1", stream=True)
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "stream-1"
    line = line_for(service, "stream-1")
    assert line["upstream_attempts"] == 2
    assert line["completion_tokens"] == len(DEFAULT_REPLY.split())
    # Every line written while serving the request carries its id.
    retry = [entry for entry in lines(service) if entry.get("event") == "retrying upstream call"]
    assert retry
    assert retry[-1]["request_id"] == "stream-1"


@pytest.mark.integration
@pytest.mark.parametrize(
    "incoming",
    [b"", b"has space", b"x" * 129, b'quote"s', b"semi;colon", "\u00fcn\u00efcode".encode()],
    ids=["empty", "space", "too-long", "quote", "semicolon", "non-ascii"],
)
def test_an_unusable_request_id_is_replaced(
    service: GenesisServer, alice: str, incoming: bytes
) -> None:
    response = httpx.get(
        f"{service.url}/v1/models",
        headers={"Authorization": f"Bearer {alice}".encode(), "X-Request-ID": incoming},
    )
    generated = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    line = line_for(service, generated)
    assert line["route"] == "/v1/models"


@pytest.mark.integration
def test_refused_requests_are_logged_without_the_key(service: GenesisServer) -> None:
    unknown = new_key()
    WATCH.remember(unknown, "an unknown API key")
    refused = post(service, unknown, "bad-key")
    assert refused.status_code == 401
    line = line_for(service, "bad-key")
    assert line["status"] == 401
    assert line["key"] is None
    assert line["route"] == "/v1/chat/completions"
    missing = httpx.get(f"{service.url}/v1/nothing-here", headers={"X-Request-ID": "nope"})
    assert missing.status_code in (401, 404)
    assert line_for(service, "nope")["route"] is None
    text = service.log_path.read_text()
    assert unknown not in text
    assert PROMPT not in text
    assert not API_KEY_SHAPE.search(text)


@pytest.mark.integration
def test_probes_are_logged_at_debug_only(service: GenesisServer) -> None:
    assert httpx.get(f"{service.url}/readyz", headers={"X-Request-ID": "probe-1"}).is_success
    assert [line for line in request_lines(service) if line["request_id"] == "probe-1"] == []


@pytest.mark.integration
def test_content_logging_when_enabled(upstream: OpenAIStub, alice: str, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(key_line("alice", alice) + "\n")
    upstream.reset()
    with genesis_servers(tmp_path) as start:
        server = start(settings_for(upstream, keys, GENESIS_LOG_CONTENT="true"))
        post(server, alice, "content-1")
        post(server, alice, "content-2", stream=True)
        whole = line_for(server, "content-1")
        streamed = line_for(server, "content-2")
    assert whole["prompt"] == [{"role": "user", "content": PROMPT}]
    assert whole["completion"] == DEFAULT_REPLY
    assert streamed["completion"] == DEFAULT_REPLY


def test_content_logging_is_refused_in_prod(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(key_line("ops", new_key()) + "\n")
    with pytest.raises(ValidationError, match="GENESIS_LOG_CONTENT=true is refused"):
        Settings(env="prod", log_content=True, api_keys_file=keys)
    assert Settings(env="prod", api_keys_file=keys).log_content is False


@pytest.mark.parametrize(
    ("header", "kept"),
    [("abc-123", True), ("a" * 128, True), ("req_01:x.y", True), (None, False), ("a b", False)],
)
def test_request_id_from(header: str | None, kept: bool) -> None:
    result = request_id_from(header)
    assert (result == header) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", result)


def test_notes_outside_a_request_do_nothing() -> None:
    assert current_record() is None
    note_cache(True)
    record = RequestRecord(request_id="r", method="GET", log_content=True)
    assert record.fields()["completion"] is None


def test_secret_watch_finds_what_it_should(tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    secret_file = tmp_path / "upstream-key"
    secret_file.write_text("sk-from-a-file-123456\n")
    watch = SecretWatch()
    watch.watch(
        log,
        {
            "GENESIS_OPENAI_API_KEY": "sk-in-the-env-123456",
            "GENESIS_REDIS_URL": "redis://:hunter2-password@127.0.0.1:6379/0",
            "GENESIS_OPENAI_API_KEY_FILE": str(secret_file),
            "GENESIS_REDIS_URL_FILE": str(tmp_path / "missing"),
            "GENESIS_MODEL": "gpt-4o-mini-is-no-secret",
        },
    )
    log.write_text(
        "fine\nsk-in-the-env-123456\nhunter2-password\nsk-from-a-file-123456\n"
        f"{new_key()}\ngpt-4o-mini-is-no-secret\n"
    )
    assert [(leak.line, leak.what) for leak in watch.leaks()] == [
        (2, "GENESIS_OPENAI_API_KEY"),
        (3, "the password in GENESIS_REDIS_URL"),
        (4, "the content of GENESIS_OPENAI_API_KEY_FILE"),
        (5, "a genesis API key (gsk_...)"),
    ]
    assert str(log) in str(watch.leaks()[0])
    assert watch.logs == [log]
