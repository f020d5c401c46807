"""A fast upstream for the benchmark: the harness stub's answers, served by one asyncio loop.

The test harness' stub (`tests/harness/openai_stub.py`) is a threaded `http.server`: correct
and scriptable, but about 600 requests/s as a process here, less than the proxies it would sit
behind. Measured through it, every target would top out at the stub's ceiling and the
comparison would say nothing. This stub answers with the same bytes the harness renders (its
`Completion` builds them: the same JSON object, the same chunk events in the same order, usage
chunk, `[DONE]`), but from an `asyncio.Protocol` with each answer rendered once and cached, so
an answer costs a few tens of microseconds of CPU instead of a thread switch and a
`BaseHTTPRequestHandler` parse.

It knows only what the benchmark sends: `POST /v1/chat/completions` (JSON or SSE, honouring
`stream_options.include_usage` and the harness' `--chunk-latency` pause before every event
after the first), `GET /v1/models`, and `GET /_stub/health`. No faults, no recording.

`python -m benchmarks.service.stub --port N [--chunk-latency SECONDS]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections import deque
from pathlib import Path
from typing import Any

_TESTS = Path(__file__).resolve().parents[2] / "tests"
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from harness.openai_stub import (  # noqa: E402 - the harness lives under tests/
    DEFAULT_MODELS,
    DEFAULT_REPLY,
    Completion,
    count_prompt_tokens,
    reply_pieces,
)

CREATED = 1_700_000_000


def _response(status: str, content_type: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nx-request-id: req-bench\r\n\r\n"
    ).encode() + body


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Answers:
    """Rendered answers, one per (model, stream, include_usage, prompt tokens)."""

    def __init__(self, reply: str = DEFAULT_REPLY) -> None:
        self._pieces = reply_pieces(reply)
        self._whole: dict[tuple[str, int], bytes] = {}
        self._streams: dict[tuple[str, bool, int], list[bytes]] = {}

    def _completion(self, model: str, prompt_tokens: int) -> Completion:
        return Completion(
            id="chatcmpl-stub-bench",
            created=CREATED,
            model=model,
            pieces=self._pieces,
            finish_reason="stop",
            prompt_tokens=prompt_tokens,
        )

    def whole(self, model: str, prompt_tokens: int) -> bytes:
        key = (model, prompt_tokens)
        if key not in self._whole:
            body = json.dumps(self._completion(model, prompt_tokens).as_object()).encode()
            self._whole[key] = _response("200 OK", "application/json", body)
        return self._whole[key]

    def stream(self, model: str, include_usage: bool, prompt_tokens: int) -> list[bytes]:
        """The response head with the first event, then one chunk per later event, then the end."""
        key = (model, include_usage, prompt_tokens)
        if key not in self._streams:
            events = self._completion(model, prompt_tokens).chunks(include_usage)
            frames = [_chunk(b"data: " + json.dumps(event).encode() + b"\n\n") for event in events]
            head = (
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n"
                b"x-request-id: req-bench\r\n\r\n"
            )
            frames[0] = head + frames[0]
            frames[-1] += _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
            self._streams[key] = frames
        return self._streams[key]


MODELS_BODY = json.dumps(
    {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": CREATED, "owned_by": "openai-stub"}
            for m in DEFAULT_MODELS
        ],
    }
).encode()


class _Connection(asyncio.Protocol):
    def __init__(self, answers: Answers, chunk_latency: float) -> None:
        self._answers = answers
        self._chunk_latency = chunk_latency
        self._buffer = bytearray()
        self._pending: deque[tuple[str, str, dict[str, str], bytes]] = deque()
        self._streaming = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport  # asyncio sets TCP_NODELAY on TCP transports itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self._buffer) < end + 4 + length:
                return
            body = bytes(self._buffer[end + 4 : end + 4 + length])
            del self._buffer[: end + 4 + length]
            self._pending.append((method, target.split("?", 1)[0], headers, body))
            self._drain()

    def _drain(self) -> None:
        while self._pending and not self._streaming and self._transport is not None:
            self._answer(*self._pending.popleft())

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        transport = self._transport
        assert transport is not None
        close = headers.get("connection", "").lower() == "close"
        if method == "POST" and path == "/v1/chat/completions":
            request: dict[str, Any] = json.loads(body)
            model = str(request.get("model", "gpt-4o-mini"))
            tokens = count_prompt_tokens(request.get("messages") or [])
            if request.get("stream") is True:
                options = request.get("stream_options") or {}
                frames = self._answers.stream(model, options.get("include_usage") is True, tokens)
                if self._chunk_latency > 0:
                    self._streaming = True
                    asyncio.get_running_loop().create_task(self._paced(frames, close))
                    return
                transport.write(b"".join(frames))
            else:
                transport.write(self._answers.whole(model, tokens))
        elif method == "GET" and path == "/v1/models":
            transport.write(_response("200 OK", "application/json", MODELS_BODY))
        elif method == "GET" and path == "/_stub/health":
            transport.write(_response("200 OK", "application/json", b'{"status": "ok"}'))
        else:
            error = {"error": {"message": "not here", "type": "invalid_request_error"}}
            body = json.dumps(error).encode()
            transport.write(_response("404 Not Found", "application/json", body))
        if close:
            transport.close()

    async def _paced(self, frames: list[bytes], close: bool) -> None:
        try:
            for index, frame in enumerate(frames):
                if index > 0:
                    await asyncio.sleep(self._chunk_latency)
                if self._transport is None:
                    return
                self._transport.write(frame)
            if close and self._transport is not None:
                self._transport.close()
        finally:
            self._streaming = False
        self._drain()


async def serve(host: str, port: int, chunk_latency: float, ready: asyncio.Event | None) -> None:
    loop = asyncio.get_running_loop()
    answers = Answers()
    server = await loop.create_server(
        lambda: _Connection(answers, chunk_latency), host, port, backlog=1024, reuse_address=True
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"fast openai stub listening on http://{host}:{bound}/v1", flush=True)
    if ready is not None:
        ready.set()
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service.stub")
    parser.add_argument("--host", default="127.0.0.1", help="keep it on loopback")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--chunk-latency", type=float, default=0.0, help="seconds before each event after the first"
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.chunk_latency, None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
