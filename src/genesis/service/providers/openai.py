"""Any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, llama.cpp...) through the official SDK.

The SDK is only the transport: its own retries are off (`max_retries=0`) so that genesis'
are the only ones, and every attempt goes through the same gate — the circuit breaker, the
request's deadline, and the retry policy of `genesis.service.resilience`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import openai
import structlog

from genesis.observability import CircuitState, ServiceMetrics
from genesis.service.errors import SERVER_ERROR, APIError
from genesis.service.requestlog import note_upstream_attempt
from genesis.service.resilience import (
    UNHEALTHY,
    UNPERMITTED,
    CircuitBreaker,
    Failure,
    Permit,
    RetryPolicy,
    parse_retry_after,
    retry_after_header,
    retry_delay,
)
from genesis.service.schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from genesis.service.settings import Settings

log = structlog.get_logger("genesis.upstream")

# Servers such as vLLM or llama.cpp take any key, but the SDK refuses an empty one.
_NO_KEY = "no-key-configured"
CIRCUIT = "upstream"
# Bodies go as `content`, as given, under the SDK's default `Content-Type: application/json`.
_COMPLETIONS = "/chat/completions"

T = TypeVar("T")


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every secret replaced, for upstream messages that may echo credentials."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def upstream_timeout(reason: str = "did not answer in time") -> APIError:
    return APIError(
        504,
        f"The upstream model provider {reason}",
        type=SERVER_ERROR,
        code="upstream_timeout",
    )


def malformed_answer() -> APIError:
    return APIError(
        502,
        "The upstream model provider sent a malformed answer",
        type=SERVER_ERROR,
        code="upstream_error",
    )


def circuit_open(retry_after: float) -> APIError:
    return APIError(
        503,
        "The upstream model provider is failing; genesis stopped calling it for a while "
        "(circuit breaker open). Retry later",
        type=SERVER_ERROR,
        code="upstream_unavailable",
        headers={"Retry-After": retry_after_header(retry_after)},
    )


def is_timeout(error: BaseException) -> bool:
    """Whether a failed call ran out of time (rather than losing its connection)."""
    if isinstance(error, TimeoutError):
        return True
    if not isinstance(error, openai.APITimeoutError):
        return False
    # The SDK's aiohttp transport (httpx-aiohttp) reports every aiohttp connection error as
    # a connect timeout, a server that hung up included: look at what really happened.
    cause = error.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, TimeoutError):
            return False
        cause = cause.__cause__
    return True


def classify(error: Exception) -> Failure:
    """The kind of failure an SDK error (or a malformed answer) is."""
    if is_timeout(error):
        return Failure.TIMEOUT
    if isinstance(error, openai.APIConnectionError):
        return Failure.CONNECT
    if isinstance(error, openai.RateLimitError):
        return Failure.RATE_LIMITED
    if isinstance(error, openai.APIStatusError) and 400 <= error.status_code < 500:
        return Failure.REJECTED
    # 5xx, an error event inside a stream, invalid JSON.
    return Failure.SERVER


def upstream_retry_after(error: Exception) -> float | None:
    if not isinstance(error, openai.APIStatusError):
        return None
    headers = error.response.headers
    return parse_retry_after(headers.get("retry-after"), headers.get("retry-after-ms"))


def map_upstream_error(error: Exception, secrets: list[str]) -> APIError:
    """The error the client sees for a failed upstream call, in OpenAI's shape."""
    if is_timeout(error):
        return upstream_timeout()
    if isinstance(error, openai.APIConnectionError):
        return APIError(
            502,
            "Could not reach the upstream model provider",
            type=SERVER_ERROR,
            code="upstream_error",
        )
    if isinstance(error, openai.RateLimitError):
        headers = {}
        retry_after = error.response.headers.get("retry-after")
        if retry_after:
            headers["Retry-After"] = retry_after
        return APIError(
            429,
            "The upstream model provider is rate limiting requests; retry later",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers=headers,
        )
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        # Our credentials, not the client's: the client cannot fix it, so it is a 502.
        return APIError(
            502,
            "The upstream model provider rejected genesis' credentials",
            type=SERVER_ERROR,
            code="upstream_error",
        )
    if isinstance(error, openai.APIStatusError) and 400 <= error.status_code < 500:
        # The upstream judged the client's request: pass its reason on, scrubbed.
        body = error.body if isinstance(error.body, dict) else {}
        message = str(body.get("message") or error.message)
        param = body.get("param")
        return APIError(
            400,
            "The upstream model provider rejected the request: " + redact(message, secrets),
            param=param if isinstance(param, str) else None,
            code="upstream_rejected",
        )
    if isinstance(error, ValueError):
        return malformed_answer()
    return APIError(
        502,
        f"The upstream model provider failed ({type(error).__name__})",
        type=SERVER_ERROR,
        code="upstream_error",
    )


@dataclass(frozen=True)
class Deadline:
    """The moment a request's upstream work must be over, on the provider's clock."""

    at: float
    clock: Callable[[], float]

    def remaining(self) -> float:
        return self.at - self.clock()


@dataclass
class _OpenStream:
    upstream: openai.AsyncStream[object]
    chunks: AsyncIterator[object]
    first: ChatCompletionChunk | None


def _chunk(data: object) -> ChatCompletionChunk:
    """One decoded stream event as genesis' chunk; ValueError when it is not one."""
    return ChatCompletionChunk.model_validate(data)


class OpenAIProvider:
    """Forwards completions to an OpenAI-compatible API with `AsyncOpenAI`, with retries,
    a circuit breaker and a per-request deadline."""

    name = "openai"

    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        self._secrets = [key]
        self._model = settings.served_model
        self._metrics = metrics
        self._clock = clock
        # Jitter, not security.
        self._rng = rng or random.Random()  # noqa: S311
        self._attempt_timeout = settings.openai_total_timeout
        self._deadline_seconds = settings.request_deadline_seconds
        self._policy = RetryPolicy(
            max_retries=settings.openai_max_retries,
            base_delay=settings.openai_retry_base_seconds,
            max_delay=settings.openai_retry_max_seconds,
            max_retry_after=settings.openai_retry_after_max_seconds,
        )
        self.breaker = CircuitBreaker(
            settings.circuit_failure_threshold,
            settings.circuit_cooldown_seconds,
            clock,
            on_change=self._circuit_changed,
        )
        if metrics is not None:
            metrics.circuit_state(CIRCUIT, CircuitState.CLOSED)
        self._client = openai.AsyncOpenAI(
            api_key=key or _NO_KEY,
            base_url=settings.openai_base_url,
            # Read applies to every read, so a stream that stalls between chunks ends too.
            timeout=openai.Timeout(
                settings.openai_read_timeout, connect=settings.openai_connect_timeout
            ),
            max_retries=0,
            # The SDK's documented aiohttp transport: the same client interface and errors,
            # a third less CPU per call than its default httpx2 pool (docs/benchmarks.md).
            http_client=openai.DefaultAioHttpClient()
            if settings.openai_http_client == "aiohttp"
            else None,
        )

    def _circuit_changed(self, state: CircuitState) -> None:
        log.warning("upstream circuit breaker changed", circuit=CIRCUIT, state=state.name.lower())
        if self._metrics is not None:
            self._metrics.circuit_state(CIRCUIT, state)

    def models(self) -> list[str]:
        return [self._model]

    def _deadline(self) -> Deadline:
        return Deadline(self._clock() + self._deadline_seconds, self._clock)

    async def _attempts(
        self, call: Callable[[], Awaitable[T]], deadline: Deadline
    ) -> tuple[T, Permit]:
        """`call` until it succeeds, the retry policy gives up, the deadline passes or the
        circuit is open; raises the `APIError` the client should see. The caller settles the
        successful attempt's permit (a stream only knows at its end)."""
        retries = 0
        while True:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise upstream_timeout("did not answer within the request deadline")
            permit = self.breaker.acquire()
            if permit is None:
                raise circuit_open(self.breaker.retry_after())
            note_upstream_attempt()
            try:
                async with asyncio.timeout(min(self._attempt_timeout, remaining)):
                    result = await call()
            except (openai.OpenAIError, ValueError, TimeoutError) as error:
                failure = classify(error)
                self._settle(permit, failure)
                delay = retry_delay(
                    self._policy,
                    retries_done=retries,
                    failure=failure,
                    retry_after=upstream_retry_after(error),
                    remaining=deadline.remaining(),
                    rng=self._rng,
                )
                if delay is None:
                    raise map_upstream_error(error, self._secrets) from error
                log.info(
                    "retrying upstream call",
                    failure=str(failure),
                    retry=retries + 1,
                    delay_seconds=round(delay, 3),
                )
                if self._metrics is not None:
                    self._metrics.upstream_retry(self.name)
                await asyncio.sleep(delay)
                retries += 1
            except BaseException:
                # Cancelled (the client left, or shutdown): no verdict on the upstream.
                self.breaker.abandon(permit)
                raise
            else:
                return result, permit

    def _settle(self, permit: Permit, failure: Failure) -> None:
        if failure in UNHEALTHY:
            self.breaker.failure(permit)
        else:
            # A 4xx or 429 is an answer: the upstream works.
            self.breaker.success(permit)

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        body = request.upstream_body()

        async def call() -> ChatCompletion:
            # The SDK's generic `post` (its documented way to call any endpoint) keeps its
            # transport, credentials, timeouts and error types, without the typed method's
            # per-call work: transforming the parameters through its TypedDicts and building
            # its own model of the answer, which genesis would dump and validate again
            # (docs/benchmarks.md). `cast_to=object`: the decoded JSON, validated once here,
            # inside the attempt: an answer that is not a chat completion (invalid JSON
            # included) is a server failure, a ValueError, and retried.
            answer = await self._client.post(_COMPLETIONS, cast_to=object, content=body)
            return ChatCompletion.model_validate(answer)

        completion, permit = await self._attempts(call, self._deadline())
        self.breaker.success(permit)
        return completion

    async def _open_stream(self, body: bytes) -> _OpenStream:
        # The first chunk is part of the attempt: until the client has seen a byte, a failure
        # can still be retried. `cast_to=object`: the SDK decodes the events and turns error
        # events and broken reads into its errors, but builds no model of each chunk.
        upstream = await self._client.post(
            _COMPLETIONS,
            cast_to=object,
            content=body,
            stream=True,
            stream_cls=openai.AsyncStream[object],
        )
        chunks = aiter(upstream)
        try:
            first = _chunk(await anext(chunks))
        except StopAsyncIteration:
            first = None
        except BaseException:
            await upstream.close()
            raise
        return _OpenStream(upstream, chunks, first)

    async def stream(
        self, request: ChatCompletionRequest
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        body = request.upstream_body(stream=True)
        deadline = self._deadline()
        opened, permit = await self._attempts(lambda: self._open_stream(body), deadline)
        if permit.probe:
            # A probe that streams is proof enough; holding the half-open slot for a whole
            # generation would keep every other request refused meanwhile.
            self.breaker.success(permit)
            permit = UNPERMITTED
        verdict = self.breaker.abandon
        try:
            if opened.first is None:
                verdict = self.breaker.success
                return
            yield opened.first
            while True:
                remaining = deadline.remaining()
                if remaining <= 0:
                    raise upstream_timeout("did not finish within the request deadline")
                try:
                    async with asyncio.timeout(remaining):
                        chunk = await anext(opened.chunks)
                except StopAsyncIteration:
                    verdict = self.breaker.success
                    return
                except TimeoutError as error:
                    raise upstream_timeout("did not finish within the request deadline") from error
                yield _chunk(chunk)
        except (openai.OpenAIError, ValueError) as error:
            # Broken after the first chunk: too late to retry, but it counts against the
            # upstream's health (a stream's verdict is known only at its end).
            if classify(error) in UNHEALTHY:
                verdict = self.breaker.failure
            raise map_upstream_error(error, self._secrets) from error
        finally:
            verdict(permit)
            await opened.upstream.close()

    async def check(self) -> None:
        try:
            await self._client.models.list()
        except openai.OpenAIError as error:
            raise map_upstream_error(error, self._secrets) from error

    async def aclose(self) -> None:
        await self._client.close()
