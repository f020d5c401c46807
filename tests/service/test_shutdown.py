"""Graceful shutdown of the real `genesis serve` under a bounded loopback load.

SIGTERM: /readyz fails at once; requests are still served for GENESIS_DRAIN_SECONDS; then the
listener closes; in-flight requests and SSE streams finish within GENESIS_GRACE_SECONDS; the
process exits 0. (test_server.py covers a single in-flight request during the drain.)
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.answers import sse_events
from harness.genesis import GenesisFactory, GenesisServer
from harness.openai_stub import DEFAULT_REPLY, Fault, OpenAIStub, reply_pieces

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"
DRAIN = 1.5
GRACE = 10.0
CHUNK_LATENCY = 0.2
# A stream takes len(pieces) * CHUNK_LATENCY (about 2.4 s): it outlives the drain.
STREAM_SECONDS = len(reply_pieces(DEFAULT_REPLY)) * CHUNK_LATENCY


@dataclass
class Outcome:
    started: float
    stream: bool
    ok: bool
    detail: str


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_service(genesis_server: GenesisFactory, stub: OpenAIStub, **extra: str) -> GenesisServer:
    return genesis_server(
        {
            "GENESIS_PROVIDER": "openai",
            "GENESIS_OPENAI_BASE_URL": stub.base_url,
            "GENESIS_DRAIN_SECONDS": str(DRAIN),
            "GENESIS_GRACE_SECONDS": str(GRACE),
            **extra,
        }
    )


def one_request(client: httpx.Client, stream: bool) -> tuple[bool, str]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    try:
        response = client.post("/v1/chat/completions", json=body)
    except httpx.TransportError as error:
        return False, f"transport: {error!r}"
    if response.status_code != 200:
        return False, f"status {response.status_code}: {response.text[:200]}"
    if not stream:
        content = response.json()["choices"][0]["message"]["content"]
        return content == DEFAULT_REPLY, content
    data = sse_events(response)
    if data[-1:] != ["[DONE]"]:
        return False, f"stream did not end with [DONE]: {data[-2:]}"
    chunks = [json.loads(item) for item in data[:-1]]
    if any("error" in chunk for chunk in chunks):
        return False, f"stream carried an error: {data[-2]}"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    return text == DEFAULT_REPLY, text


def test_sigterm_under_load_loses_no_request_and_completes_streams(
    genesis_server: GenesisFactory, openai_stub: OpenAIStub, tmp_path: Path
) -> None:
    # Slow chunks make every stream span the signal; whole answers take 0.3 s.
    openai_stub.set_default(Fault.ok(latency=0.3, chunk_latency=CHUNK_LATENCY))
    server = start_service(genesis_server, openai_stub)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    stop_load = threading.Event()

    def load(stream: bool) -> None:
        # Keep-alive pools, as real clients have: the hardest case for a drain.
        with httpx.Client(base_url=server.url, timeout=GRACE + 5) as client:
            # Bounded: a few requests per worker, and none once the listener is gone.
            for _ in range(40):
                if stop_load.is_set():
                    return
                started = time.monotonic()
                ok, detail = one_request(client, stream)
                with lock:
                    outcomes.append(Outcome(started, stream, ok, detail))
                if not ok and "transport" in detail:
                    return

    threads = [threading.Thread(target=load, args=(i % 2 == 0,)) for i in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    signalled = time.monotonic()
    server.signal(signal.SIGTERM)

    # Not ready at once, while the old connections and new ones are still served.
    readyz = httpx.get(f"{server.url}/readyz", timeout=2)
    assert readyz.status_code == 503
    assert readyz.json()["state"] == "draining"
    assert time.monotonic() - signalled < 0.5
    assert listening(server.port)

    # After the drain the listener closes, while streams started earlier still flow.
    while listening(server.port) and time.monotonic() - signalled < DRAIN + 2:
        time.sleep(0.05)
    closed_after = time.monotonic() - signalled
    assert DRAIN - 0.2 <= closed_after < DRAIN + 2
    stop_load.set()
    assert server.wait(timeout=GRACE + 10) == 0
    exited_after = time.monotonic() - signalled
    for thread in threads:
        thread.join(timeout=GRACE)

    before = [o for o in outcomes if o.started < signalled]
    assert before, "the load ran before the signal"
    failed = [o for o in before if not o.ok]
    assert failed == [], f"{len(failed)} of {len(before)} requests started before SIGTERM failed"
    in_flight_streams = [o for o in before if o.stream and o.started > signalled - STREAM_SECONDS]
    assert in_flight_streams, "some streams were in flight at the signal"
    # Requests started during the drain were served too (the listener was still open).
    during_drain = [o for o in outcomes if signalled <= o.started < signalled + DRAIN - 0.3]
    assert during_drain
    assert all(o.ok for o in during_drain), [o.detail for o in during_drain if not o.ok]
    # The last streams began just before the listener closed and needed STREAM_SECONDS.
    assert exited_after < DRAIN + STREAM_SECONDS + 3
    log = server.log_path.read_text()
    assert '"event": "draining"' in log
    assert '"event": "listener closing' in log
    assert '"event": "stopped"' in log


def test_a_stream_longer_than_the_grace_is_cut_and_the_process_still_exits_0(
    genesis_server: GenesisFactory, openai_stub: OpenAIStub
) -> None:
    openai_stub.set_default(Fault.ok(chunk_latency=2))
    server = start_service(
        genesis_server, openai_stub, GENESIS_DRAIN_SECONDS="0", GENESIS_GRACE_SECONDS="1"
    )
    result: dict[str, object] = {}

    def stream() -> None:
        result["outcome"] = one_request(httpx.Client(base_url=server.url, timeout=30), True)

    thread = threading.Thread(target=stream)
    thread.start()
    openai_stub.wait_for_requests(1)
    signalled = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=15) == 0
    # Grace (1 s) plus at most the worker's own stop margin.
    assert time.monotonic() - signalled < 1 + 3 + 1
    thread.join(timeout=10)
    ok, _ = result["outcome"]  # type: ignore[misc]
    assert not ok, "the stream could not have finished: it needed ~30 s"


def test_responses_during_the_drain_close_keep_alive_connections(
    genesis_server: GenesisFactory,
) -> None:
    server = genesis_server({"GENESIS_DRAIN_SECONDS": "3"})
    with httpx.Client(base_url=server.url) as client:
        assert "connection" not in client.get("/livez").headers
        server.signal(signal.SIGTERM)
        deadline = time.monotonic() + 2
        while client.get("/readyz").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        answer = client.get("/livez")
        assert answer.status_code == 200
        assert answer.headers["connection"] == "close"
    assert server.wait(timeout=15) == 0
