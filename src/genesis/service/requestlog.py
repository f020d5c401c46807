"""One structured log line per HTTP request, and the request id that ties lines together.

An ASGI middleware (outermost, so its duration covers a streamed body to its last byte)
gives every request an id — the client's `X-Request-ID` when it is sane, else a fresh one —
echoes it in the response, binds it to every log line written while the request runs, and
writes the `request` line at the end. Code along the way adds what it knows (route, key
name, model, token counts, cache result, upstream attempts) to the request's
`RequestRecord` through the `note_*` functions, which do nothing outside a request.

Prompts and completions are never in that line unless `GENESIS_LOG_CONTENT=true`
(refused in prod). API keys never are: only the name of the key's entry is logged.
"""

from __future__ import annotations

import contextvars
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from quart import Quart, request

from genesis.service.auth import ANONYMOUS, current_key
from genesis.service.schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest

log = structlog.get_logger("genesis.request")

REQUEST_ID_HEADER = "x-request-id"
# Bounded and plain, so a client cannot forge log structure or flood a field.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Probes arrive every few seconds from every load balancer: at info they would drown the rest.
QUIET_PATHS = frozenset({"/livez", "/readyz"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]


@dataclass
class RequestRecord:
    """What the request line will say; filled in while the request is served."""

    request_id: str
    method: str
    log_content: bool = False
    route: str | None = None
    key: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cache: str | None = None
    upstream_attempts: int = 0
    prompt: list[dict[str, Any]] | None = None
    completion: list[str] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "method": self.method,
            "route": self.route,
            "key": self.key,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cache": self.cache,
            "upstream_attempts": self.upstream_attempts,
        }
        if self.log_content:
            line["prompt"] = self.prompt
            line["completion"] = "".join(self.completion) if self.completion else None
        return line


_record: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar(
    "genesis_request_record", default=None
)


def current_record() -> RequestRecord | None:
    return _record.get()


def request_id_from(header: str | None) -> str:
    """The client's request id when it is sane, else a fresh one."""
    if header and _SANE_REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


def note_upstream_attempt() -> None:
    record = _record.get()
    if record is not None:
        record.upstream_attempts += 1


def note_request(body: ChatCompletionRequest) -> None:
    record = _record.get()
    if record is None:
        return
    record.model = body.model
    if record.log_content:
        record.prompt = [
            {"role": message.role, "content": message.text()} for message in body.messages
        ]


def note_cache(hit: bool) -> None:
    """For the response cache: whether this request was answered from it."""
    record = _record.get()
    if record is not None:
        record.cache = "hit" if hit else "miss"


def note_usage(prompt_tokens: int, completion_tokens: int) -> None:
    record = _record.get()
    if record is not None:
        record.prompt_tokens = prompt_tokens
        record.completion_tokens = completion_tokens


def note_completion(completion: ChatCompletion) -> None:
    record = _record.get()
    if record is None:
        return
    if completion.usage is not None:
        note_usage(completion.usage.prompt_tokens, completion.usage.completion_tokens)
    if record.log_content:
        record.completion = [choice.message.content or "" for choice in completion.choices[:1]]


def note_chunk(chunk: ChatCompletionChunk) -> None:
    record = _record.get()
    if record is None:
        return
    if chunk.usage is not None:
        note_usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
    if record.log_content and chunk.choices and chunk.choices[0].delta.content:
        record.completion.append(chunk.choices[0].delta.content)


class RequestLogMiddleware:
    """ASGI middleware: request id in, request id out, one `request` line per request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        log_content: bool = False,
        connection_close: Callable[[], bool] = lambda: False,
    ) -> None:
        self._app = app
        self._log_content = log_content
        # While draining, answers tell HTTP/1.1 clients to drop the connection, so their
        # pools reconnect (to another instance) before the listener closes under them.
        self._connection_close = connection_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == REQUEST_ID_HEADER.encode():
                incoming = value.decode("latin-1")
                break
        record = RequestRecord(
            request_id=request_id_from(incoming),
            method=scope["method"],
            log_content=self._log_content,
        )
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if name.lower() != REQUEST_ID_HEADER.encode()
                ]
                headers.append((REQUEST_ID_HEADER.encode(), record.request_id.encode()))
                if scope.get("http_version", "1.1").startswith("1") and self._connection_close():
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        record_token = _record.set(record)
        bound = structlog.contextvars.bind_contextvars(request_id=record.request_id)
        started = time.perf_counter()
        outcome = "answered"
        try:
            await self._app(scope, receive, send_with_id)
        except BaseException:
            outcome = "failed" if status is None else "cut"
            raise
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 3)
            level = "debug" if scope.get("path") in QUIET_PATHS else "info"
            if status is None or status >= 500 or outcome != "answered":
                level = "warning"
            log.log(
                _LEVELS[level],
                "request",
                status=status,
                duration_ms=duration_ms,
                outcome=outcome,
                **record.fields(),
            )
            structlog.contextvars.reset_contextvars(**bound)
            _record.reset(record_token)


_LEVELS = {"debug": 10, "info": 20, "warning": 30}


def install_request_log(
    app: Quart, *, log_content: bool, connection_close: Callable[[], bool]
) -> None:
    """Wrap `app` (call it last, after every other middleware) and fill in route and key."""

    @app.before_request
    async def _note_route() -> None:
        record = _record.get()
        if record is not None and request.url_rule is not None:
            record.route = request.url_rule.rule

    @app.after_request
    async def _note_key(response: Any) -> Any:
        record = _record.get()
        if record is not None:
            key = current_key()
            record.key = None if key is ANONYMOUS else key.name
        return response

    # The route is wanted even when an earlier hook (authentication) refuses the request.
    funcs = app.before_request_funcs.setdefault(None, [])
    funcs.insert(0, funcs.pop())
    app.asgi_app = RequestLogMiddleware(  # type: ignore[method-assign, assignment]
        app.asgi_app, log_content=log_content, connection_close=connection_close
    )
