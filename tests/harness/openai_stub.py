"""An OpenAI-compatible upstream stub: a real HTTP server on 127.0.0.1 with scriptable faults.

It stands in for the OpenAI API, which cannot be reached from the build machines. It speaks the
chat completions protocol over real sockets (JSON and SSE streaming, OpenAI-shaped errors),
so the official `openai` SDK and the genesis service talk to it unchanged. Faults that only a
network peer can produce (latency, error statuses, hangs, TCP resets, broken streams) are
scripted per request, and every request is recorded so tests can assert what was sent.

It deliberately imports nothing from genesis: it plays the upstream, not the service.

In-process: `with OpenAIStub() as stub: OpenAI(base_url=stub.base_url, ...)`.
As a process (benchmarks, a service under test in another process):
`python -m harness.openai_stub --port N` (with `tests/` on `PYTHONPATH`); the control
endpoints under `/_stub/` script faults and read the recorded requests over HTTP.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlsplit

DEFAULT_REPLY = "Hello from the OpenAI stub. This reply is scripted and deterministic."
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o")
CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"

Reply = str | Callable[[Mapping[str, Any]], str]


class FaultKind(StrEnum):
    OK = "ok"
    STATUS = "status"
    HANG = "hang"
    RESET = "reset"
    RESET_MID_STREAM = "reset_mid_stream"
    MALFORMED_CHUNK = "malformed_chunk"
    NO_DONE = "no_done"
    ERROR_EVENT = "error_event"


# What OpenAI itself puts in `error.type` / `error.code` for these statuses.
_ERROR_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to sample from this model."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


@dataclass(frozen=True)
class Fault:
    """How the stub answers one chat completion request.

    Build them with the class methods; `kind` says what happens, the other fields tune it.
    `after_chunks` counts `data:` events already sent (the first one carries only the role).
    """

    kind: FaultKind = FaultKind.OK
    latency: float = 0.0
    chunk_latency: float = 0.0
    status_code: int = 200
    retry_after: float | None = None
    message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    after_chunks: int | None = None
    reply: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if self.latency < 0 or self.chunk_latency < 0:
            raise ValueError(f"latencies must be >= 0, got {self.latency}, {self.chunk_latency}")
        if self.kind is FaultKind.STATUS and not 400 <= self.status_code <= 599:
            raise ValueError(f"an error status must be 400-599, got {self.status_code}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError(f"retry_after must be >= 0, got {self.retry_after}")
        if self.after_chunks is not None and self.after_chunks < 0:
            raise ValueError(f"after_chunks must be >= 0, got {self.after_chunks}")

    @classmethod
    def ok(
        cls, reply: str | None = None, *, latency: float = 0.0, chunk_latency: float = 0.0
    ) -> Fault:
        """A normal answer, optionally slow to start (`latency`) or slow between chunks."""
        return cls(FaultKind.OK, latency=latency, chunk_latency=chunk_latency, reply=reply)

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
        latency: float = 0.0,
    ) -> Fault:
        """An HTTP error with OpenAI's error body, and `Retry-After` when given."""
        return cls(
            FaultKind.STATUS,
            status_code=code,
            retry_after=retry_after,
            message=message,
            error_type=error_type,
            error_code=error_code,
            latency=latency,
        )

    @classmethod
    def hang(cls, seconds: float | None = None) -> Fault:
        """Accept and never answer (until the client leaves or the stub stops), or answer late."""
        if seconds is not None:
            return cls.ok(latency=seconds)
        return cls(FaultKind.HANG)

    @classmethod
    def reset(cls) -> Fault:
        """Reset the connection (TCP RST) before sending any response byte."""
        return cls(FaultKind.RESET)

    @classmethod
    def reset_mid_stream(cls, after_chunks: int = 2) -> Fault:
        """Stream `after_chunks` events, then reset the connection."""
        return cls(FaultKind.RESET_MID_STREAM, after_chunks=after_chunks)

    @classmethod
    def malformed_chunk(cls, after_chunks: int = 1) -> Fault:
        """After `after_chunks` events, one `data:` line that is not JSON; then carry on."""
        return cls(FaultKind.MALFORMED_CHUNK, after_chunks=after_chunks)

    @classmethod
    def error_event(cls, after_chunks: int = 2, message: str = "The server is overloaded") -> Fault:
        """After `after_chunks` events, an error event as OpenAI sends one mid-stream
        (`data: {"error": {...}}`), then `[DONE]`."""
        return cls(FaultKind.ERROR_EVENT, after_chunks=after_chunks, message=message)

    @classmethod
    def no_done(cls, after_chunks: int | None = None) -> Fault:
        """End the HTTP body cleanly without `data: [DONE]`, after all events or `after_chunks`."""
        return cls(FaultKind.NO_DONE, after_chunks=after_chunks)

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, FaultKind) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: object) -> Fault:
        if not isinstance(data, Mapping):
            raise ValueError(f"a fault must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}; known: {sorted(known)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid fault {dict(data)}: {exc}") from exc


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stub received it (control endpoints are not recorded)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    received_at: float = field(default_factory=time.time)

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body.decode("utf-8", errors="replace"),
            "json": self.json,
            "received_at": self.received_at,
        }


def error_body(
    status: int, message: str | None = None, error_type: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error envelope, with OpenAI's usual type/code for the status unless given."""
    default_type, default_code, default_message = _ERROR_DEFAULTS.get(
        status,
        (
            "server_error" if status >= 500 else "invalid_request_error",
            None,
            HTTPStatus(status).phrase,
        ),
    )
    return {
        "error": {
            "message": message or default_message,
            "type": error_type or default_type,
            "param": None,
            "code": code if code is not None else default_code,
        }
    }


def reply_pieces(text: str) -> list[str]:
    """The reply split the way it is streamed: one word (with its trailing space) per chunk."""
    return re.findall(r"\s*\S+\s*", text) if text.strip() else []


def count_prompt_tokens(messages: Sequence[Any]) -> int:
    """Deterministic stand-in for a tokenizer: whitespace-separated words in every message."""
    words = 0
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    words += len(part["text"].split())
    return words


def validate_chat_request(body: object) -> tuple[str, str | None] | None:
    """None when `body` is a usable chat request, else (message, param) for a 400."""
    if not isinstance(body, Mapping):
        return "The request body must be a JSON object.", None
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter", "model"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array.", "messages"
    if not all(isinstance(m, Mapping) and isinstance(m.get("role"), str) for m in messages):
        return "Every message must be an object with a 'role'.", "messages"
    return None


@dataclass(frozen=True)
class Completion:
    """The scripted answer to one request, before it is rendered as JSON or SSE."""

    id: str
    created: int
    model: str
    pieces: list[str]
    finish_reason: str
    prompt_tokens: int

    @property
    def usage(self) -> dict[str, int]:
        completion = len(self.pieces)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }

    def as_object(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_openai_stub",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(self.pieces),
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage,
        }

    def chunks(self, include_usage: bool) -> list[dict[str, Any]]:
        """The `chat.completion.chunk` events in OpenAI's order: role, content..., finish, usage."""

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            event: dict[str, Any] = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "fp_openai_stub",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                event["usage"] = None
            return event

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": piece}) for piece in self.pieces]
        events.append(chunk({}, self.finish_reason))
        if include_usage:
            events.append({**chunk({}), "choices": [], "usage": self.usage})
        return events


class _ClientGone(Exception):
    """The stub is stopping or the client hung up: abandon this response quietly."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Handler threads are joined by OpenAIStub.stop() with a deadline instead.
    block_on_close = False
    stub: OpenAIStub

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.stub._log(f"error handling {client_address}:\n{traceback.format_exc()}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # -- plumbing -------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # Headers, body and SSE events go out as separate writes; without this, Nagle's
        # algorithm meets the client's delayed ACK and every response stalls ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stub = self.server.stub
        self.stub._track(self.connection, threading.current_thread())

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.stub._untrack(self.connection, threading.current_thread())

    def log_message(self, format: str, *args: Any) -> None:
        self.stub._log(f"{self.address_string()} {format % args}")

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            self._route()
        except _ClientGone:
            self.close_connection = True
        except (ConnectionError, TimeoutError, OSError) as exc:
            # The client went away mid-response (often on purpose, e.g. a client timeout).
            self.stub._log(f"connection dropped while answering {self.path}: {exc!r}")
            self.close_connection = True

    def _read_body(self) -> bytes:
        """The request body, by Content-Length or chunked; ValueError when framed wrongly."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError(f"negative Content-Length {length}")
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(
        self, status: int, payload: object, extra_headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", self.stub._next_id("req"))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str, param: str | None = None) -> None:
        body = error_body(status, message)
        body["error"]["param"] = param
        self._send_json(status, body)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _reset(self) -> None:
        """Close with an RST instead of a FIN, like a crashed or overloaded upstream."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.stub._untrack(self.connection, None)
        # socket.close() waits for rfile/wfile to be closed too; closing the raw fd now makes
        # the RST go out immediately while the handler's file objects see a dead socket.
        os.close(self.connection.detach())
        self.close_connection = True

    def _pause(self, seconds: float) -> None:
        if seconds > 0 and not self.stub._wait(self.connection, seconds):
            raise _ClientGone

    # -- routes ---------------------------------------------------------------------------------

    def _route(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        try:
            body = self._read_body()
        except ValueError as exc:
            # The rest of the stream cannot be trusted once framing is wrong.
            self.close_connection = True
            self._send_error(400, f"Could not read the request body: {exc}")
            return
        if path.startswith("/_stub/"):
            self._control(path, body)
            return
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
            body_is_json = False
        else:
            body_is_json = True
        self.stub._record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                json=parsed,
            )
        )
        if not self.stub._authorized(self.headers.get("Authorization")):
            self._send_json(401, error_body(401))
            return
        if path == CHAT_PATH and self.command == "POST":
            if not body_is_json:
                self._send_error(400, "We could not parse the JSON body of your request.")
                return
            self._chat(parsed)
        elif path == MODELS_PATH and self.command == "GET":
            self._send_json(200, {"object": "list", "data": self.stub._model_objects()})
        elif path.startswith(MODELS_PATH + "/") and self.command == "GET":
            model_id = path.removeprefix(MODELS_PATH + "/")
            match = [m for m in self.stub._model_objects() if m["id"] == model_id]
            if match:
                self._send_json(200, match[0])
            else:
                self._send_json(404, error_body(404, f"The model '{model_id}' does not exist"))
        else:
            self._send_error(404, f"Unknown request URL: {self.command} {path}.")

    def _chat(self, body: Any) -> None:
        problem = validate_chat_request(body)
        if problem is not None:
            self._send_error(400, *problem)
            return
        fault = self.stub._next_fault()
        self._pause(fault.latency)
        if fault.kind is FaultKind.RESET:
            self._reset()
            return
        if fault.kind is FaultKind.HANG:
            self._pause(float("inf"))
        if fault.kind is FaultKind.STATUS:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            payload = error_body(
                fault.status_code, fault.message, fault.error_type, fault.error_code
            )
            self._send_json(fault.status_code, payload, headers)
            return
        completion = self.stub._complete(body, fault)
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
            self._stream(completion, fault, include_usage)
        else:
            self._whole(completion, fault)

    def _whole(self, completion: Completion, fault: Fault) -> None:
        data = json.dumps(completion.as_object()).encode()
        if fault.kind is FaultKind.MALFORMED_CHUNK:
            data = data[: len(data) // 2]
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
        if fault.kind is FaultKind.RESET_MID_STREAM:
            # Promise the whole body, deliver half, then reset.
            self._start(200, headers)
            self.wfile.write(data[: len(data) // 2])
            self._reset()
            return
        self._start(200, headers)
        self.wfile.write(data)

    def _start(self, status: int, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("x-request-id", self.stub._next_id("req"))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _stream(self, completion: Completion, fault: Fault, include_usage: bool) -> None:
        self._start(
            200,
            {
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "Transfer-Encoding": "chunked",
            },
        )
        events = completion.chunks(include_usage)
        cut = fault.after_chunks if fault.after_chunks is not None else len(events)
        for index, event in enumerate(events):
            if index == cut:
                if fault.kind is FaultKind.RESET_MID_STREAM:
                    self._reset()
                    return
                if fault.kind is FaultKind.NO_DONE:
                    self._end_chunks()
                    return
                if fault.kind is FaultKind.ERROR_EVENT:
                    error = {"message": fault.message, "type": "server_error", "code": None}
                    self._write_chunk(b"data: " + json.dumps({"error": error}).encode() + b"\n\n")
                    self._write_chunk(b"data: [DONE]\n\n")
                    self._end_chunks()
                    return
                if fault.kind is FaultKind.MALFORMED_CHUNK:
                    self._write_chunk(b'data: {"id": "' + completion.id.encode() + b'", "choi\n\n')
            if index > 0:
                self._pause(fault.chunk_latency)
            self._write_chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        if fault.kind is FaultKind.RESET_MID_STREAM:
            self._reset()
            return
        if fault.kind is FaultKind.MALFORMED_CHUNK and cut >= len(events):
            self._write_chunk(b"data: {not json\n\n")
        if fault.kind is not FaultKind.NO_DONE:
            self._write_chunk(b"data: [DONE]\n\n")
        self._end_chunks()

    # -- control API (process mode) -------------------------------------------------------------

    def _control(self, path: str, body: bytes) -> None:
        try:
            payload: Any = json.loads(body) if body else {}
        except ValueError:
            self._send_error(400, "control requests take a JSON body")
            return
        action = (self.command, path)
        try:
            if action == ("GET", "/_stub/health"):
                self._send_json(200, {"status": "ok"})
            elif action == ("GET", "/_stub/requests"):
                self._send_json(200, [r.to_json() for r in self.stub.requests])
            elif action == ("DELETE", "/_stub/requests"):
                self.stub.clear_requests()
                self._send_json(200, {"cleared": True})
            elif action == ("POST", "/_stub/script"):
                faults = payload.get("faults") if isinstance(payload, Mapping) else None
                if not isinstance(faults, list):
                    raise ValueError('expected {"faults": [...]}')
                self.stub.script(*(Fault.from_json(f) for f in faults))
                self._send_json(200, {"pending": self.stub.pending_faults})
            elif action == ("PUT", "/_stub/default"):
                self.stub.set_default(Fault.from_json(payload))
                self._send_json(200, self.stub.default_fault.to_json())
            elif action == ("POST", "/_stub/reset"):
                self.stub.reset()
                self._send_json(200, {"reset": True})
            else:
                self._send_error(404, f"unknown control endpoint {self.command} {path}")
        except ValueError as exc:
            self._send_error(400, str(exc))


class OpenAIStub:
    """A real OpenAI-compatible HTTP server on 127.0.0.1, served from a background thread.

    Each chat completion takes the next scripted `Fault` (see `script`), or the default
    (`set_default`, a normal answer unless changed). Token usage is deterministic: prompt
    tokens are the words in the messages, completion tokens the streamed pieces of the reply.
    """

    def __init__(
        self,
        *,
        reply: Reply = DEFAULT_REPLY,
        models: Sequence[str] = DEFAULT_MODELS,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: Path | None = None,
        log_stream: TextIO | None = None,
        record: bool = True,
    ) -> None:
        self.name = "openai-stub"
        # Benchmarks turn recording off so a long run does not hold every request in memory.
        self.record = record
        self.reply = reply
        self.models = tuple(models)
        self.api_key = api_key
        self.log_path = log_path
        self._host = host
        self._port = port
        self._log_stream = log_stream
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._queue: deque[Fault] = deque()
        self._default = Fault.ok()
        self._requests: list[RecordedRequest] = []
        self._ids = 0
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._log_file: TextIO | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> OpenAIStub:
        if self._server is not None:
            raise RuntimeError("the stub is already running")
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.log_path.open("a", encoding="utf-8")
        self._stopping.clear()
        server = _Server((self._host, self._port), _Handler)
        server.stub = self
        self._server = server
        self._serve_thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-stub"
        )
        self._serve_thread.start()
        self._log(f"listening on {self.url}")
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Stop serving and release every connection, including ones parked by `hang`."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        deadline = time.monotonic() + grace
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=grace)
        stuck = [t.name for t in threads if t.is_alive()]
        self._log(f"stopped{'; handler threads still alive: ' + str(stuck) if stuck else ''}")
        self._server = None
        with self._lock:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stub is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as `base_url`."""
        return f"{self.url}/v1"

    @property
    def open_connections(self) -> int:
        """Client connections the stub still holds (0 after `stop()`)."""
        with self._lock:
            return len(self._connections)

    # -- scripting ------------------------------------------------------------------------------

    def script(self, *faults: Fault) -> None:
        """Queue faults: the next chat completions take them in order, then the default."""
        with self._lock:
            self._queue.extend(faults)

    def set_default(self, fault: Fault) -> None:
        """The answer once the queue is empty."""
        with self._lock:
            self._default = fault

    @property
    def default_fault(self) -> Fault:
        with self._lock:
            return self._default

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forget scripted faults, the default and recorded requests."""
        with self._lock:
            self._queue.clear()
            self._default = Fault.ok()
            self._requests.clear()

    # -- recording ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if urlsplit(r.path).path == path]

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return self.requests_to(CHAT_PATH)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; the service may call us asynchronously."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._requests) >= count, timeout=timeout):
                raise TimeoutError(
                    f"expected {count} requests within {timeout}s, got {len(self._requests)}"
                )
            return list(self._requests)

    def log_tails(self, lines: int = 40) -> list[tuple[str, str]]:
        if self.log_path is None:
            return []
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [(self.name, "\n".join(text.splitlines()[-lines:]))]

    # -- used by the handler --------------------------------------------------------------------

    def _log(self, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self._lock:
            for stream in (self._log_file, self._log_stream):
                if stream is not None and not stream.closed:
                    stream.write(f"{stamp} {line}\n")
                    stream.flush()

    def _track(self, conn: socket.socket, thread: threading.Thread) -> None:
        with self._lock:
            self._connections.add(conn)
            self._threads.add(thread)

    def _untrack(self, conn: socket.socket, thread: threading.Thread | None) -> None:
        """Forget a connection, and its handler thread once that thread is finishing."""
        with self._lock:
            self._connections.discard(conn)
            if thread is not None:
                self._threads.discard(thread)

    def _wait(self, conn: socket.socket, seconds: float) -> bool:
        """Sleep up to `seconds`; False as soon as the stub stops or the client hangs up."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if self._stopping.wait(min(remaining, 0.05)):
                return False
            if _peer_closed(conn):
                return False

    def _record(self, request: RecordedRequest) -> None:
        if not self.record:
            return
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()

    def _authorized(self, header: str | None) -> bool:
        return self.api_key is None or header == f"Bearer {self.api_key}"

    def _next_fault(self) -> Fault:
        with self._lock:
            return self._queue.popleft() if self._queue else self._default

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}-stub-{self._ids}"

    def _model_objects(self) -> list[dict[str, Any]]:
        return [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "openai-stub"}
            for m in self.models
        ]

    def _complete(self, body: Mapping[str, Any], fault: Fault) -> Completion:
        if fault.reply is not None:
            text = fault.reply
        elif callable(self.reply):
            text = self.reply(body)
        else:
            text = self.reply
        pieces = reply_pieces(text)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "stop"
        if isinstance(limit, int) and 0 < limit < len(pieces):
            pieces, finish = pieces[:limit], "length"
        return Completion(
            id=self._next_id("chatcmpl"),
            created=int(time.time()),
            model=str(body["model"]),
            pieces=pieces,
            finish_reason=finish,
            prompt_tokens=count_prompt_tokens(body["messages"]),
        )


def _peer_closed(conn: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        if not readable:
            return False
        return conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.openai_stub",
        description="OpenAI-compatible upstream stub (script faults via /_stub/ endpoints).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="keep it on loopback")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="the scripted assistant reply")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--chunk-latency", type=float, default=0.0, help="seconds between streamed chunks"
    )
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    parser.add_argument("--log-file", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true", help="no access log on stderr")
    parser.add_argument(
        "--no-record", action="store_true", help="keep no requests (long benchmark runs)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    stub = OpenAIStub(
        reply=args.reply,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        log_path=args.log_file,
        log_stream=None if args.quiet else sys.stderr,
        record=not args.no_record,
    )
    stub.set_default(Fault.ok(latency=args.latency, chunk_latency=args.chunk_latency))
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stub.start()
    print(f"openai-stub listening on {stub.base_url}", flush=True)
    while not done.wait(0.5):
        pass
    stub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "CHAT_PATH",
    "DEFAULT_MODELS",
    "DEFAULT_REPLY",
    "MODELS_PATH",
    "Completion",
    "Fault",
    "FaultKind",
    "OpenAIStub",
    "RecordedRequest",
    "error_body",
    "reply_pieces",
]
