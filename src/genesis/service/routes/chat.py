"""The OpenAI-compatible API: `POST /v1/chat/completions` (JSON or SSE) and `GET /v1/models`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from quart import Blueprint, Response, request
from quart_schema import document_request, document_response

from genesis.observability import GenAIOperation
from genesis.service.auth import authorize_model, current_key
from genesis.service.cache import HEADER as CACHE_HEADER
from genesis.service.cache import cache_directives, cache_key
from genesis.service.errors import SERVER_ERROR, APIError
from genesis.service.limits import enforce_request_limits
from genesis.service.providers import Provider
from genesis.service.ratelimit import token_reservation
from genesis.service.ratelimiter import Admission
from genesis.service.requestlog import note_cache, note_chunk, note_completion, note_request
from genesis.service.routes.body import parse_body
from genesis.service.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ErrorResponse,
    ModelCard,
    ModelList,
    StreamOptions,
)
from genesis.service.state import ServiceState, service_state

log = structlog.get_logger("genesis.service")

api = Blueprint("api", __name__, url_prefix="/v1")

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # nginx buffers proxied responses unless told not to; a chat stream must flow.
    "X-Accel-Buffering": "no",
}


@api.before_request
async def _inject_faults() -> None:
    faults = service_state().faults
    if faults is not None:
        await faults.apply()


def _check_model(provider: Provider, model: str) -> None:
    if model not in provider.models():
        raise APIError(
            404,
            f"The model '{model}' does not exist or you do not have access to it; "
            f"available: {', '.join(provider.models())}",
            param="model",
            code="model_not_found",
        )


def _sse(payload: str) -> bytes:
    return f"data: {payload}\n\n".encode()


def _error_type(error: BaseException) -> str:
    if isinstance(error, APIError):
        return error.code or "api_error"
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return "client_disconnected"
    return "internal_error"


def _operation(state: ServiceState, body: ChatCompletionRequest) -> GenAIOperation:
    # body.model was checked against the served models, so it cannot mint new series.
    return state.metrics.genai.operation(
        operation="chat", provider=state.provider.name, model=body.model
    )


def _settle(state: ServiceState, admission: Admission | None, used_tokens: int) -> None:
    if admission is not None and state.limiter is not None:
        state.limiter.settle(admission, used_tokens)


def _json_response(body: bytes, headers: dict[str, str]) -> Response:
    return Response(body, 200, {**headers, "Content-Type": "application/json"})


async def _complete(
    state: ServiceState, body: ChatCompletionRequest, admission: Admission | None
) -> tuple[bytes, dict[str, str]]:
    """The completion's JSON body (serialized once, straight from the model) and headers."""
    async with _operation(state, body) as operation:
        try:
            completion = await state.provider.complete(body)
        except APIError as error:
            operation.fail(_error_type(error))
            # A refused or failed upstream call produced no tokens to charge.
            _settle(state, admission, 0)
            raise
        except asyncio.CancelledError as error:
            # The client left: say so, as a stream does, rather than "CancelledError". The
            # upstream may have spent tokens already, so the reservation stands.
            operation.fail(_error_type(error))
            raise
        note_completion(completion)
        if completion.usage is not None:
            operation.usage(
                input_tokens=completion.usage.prompt_tokens,
                output_tokens=completion.usage.completion_tokens,
            )
            _settle(state, admission, completion.usage.total_tokens)
    return completion.model_dump_json(exclude_none=True).encode(), (
        admission.headers if admission else {}
    )


def _for_client(
    chunk: ChatCompletionChunk,
    operation: GenAIOperation,
    client_wants_usage: bool,
    used_tokens: list[int],
) -> ChatCompletionChunk | None:
    """Record what the chunk says; return what the client asked to see of it."""
    operation.first_chunk()
    note_chunk(chunk)
    if chunk.usage is None:
        return chunk
    operation.usage(
        input_tokens=chunk.usage.prompt_tokens, output_tokens=chunk.usage.completion_tokens
    )
    used_tokens.append(chunk.usage.total_tokens)
    if client_wants_usage:
        return chunk
    return chunk.model_copy(update={"usage": None}) if chunk.choices else None


async def _stream_response(
    state: ServiceState, body: ChatCompletionRequest, admission: Admission | None
) -> Response:
    # Usage is always requested upstream, for the token metrics; the client sees it only
    # when it asked (stream_options.include_usage), as with OpenAI.
    upstream_body = body.model_copy(update={"stream_options": StreamOptions(include_usage=True)})
    client_wants_usage = body.wants_usage_in_stream
    used_tokens: list[int] = []
    operation = await _operation(state, body).__aenter__()
    chunks = state.provider.stream(upstream_body)
    # Wait for the first chunk before answering, so a failure before any output is a
    # plain HTTP error with a status code rather than a 200 stream with an error in it.
    try:
        first: ChatCompletionChunk | None = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except BaseException as error:
        operation.fail(_error_type(error))
        await chunks.aclose()
        await operation.__aexit__(None, None, None)
        _settle(state, admission, 0)
        raise

    async def events() -> AsyncIterator[bytes]:
        try:
            if first is not None and (
                chunk := _for_client(first, operation, client_wants_usage, used_tokens)
            ):
                yield _sse(chunk.model_dump_json(exclude_none=True))
            async for upstream_chunk in chunks:
                if chunk := _for_client(upstream_chunk, operation, client_wants_usage, used_tokens):
                    yield _sse(chunk.model_dump_json(exclude_none=True))
        except APIError as error:
            operation.fail(_error_type(error))
            log.warning("stream failed", code=error.code, status=error.status)
            yield _sse(error.body().model_dump_json())
        except Exception as error:
            operation.fail(_error_type(error))
            log.exception("stream failed unexpectedly")
            failure = APIError(
                500, "Internal server error", type=SERVER_ERROR, code="internal_error"
            )
            yield _sse(failure.body().model_dump_json())
        except BaseException as error:
            operation.fail(_error_type(error))
            raise
        finally:
            await chunks.aclose()
            await operation.__aexit__(None, None, None)
            # Without a usage report (a broken stream), the reservation stands.
            if used_tokens:
                _settle(state, admission, used_tokens[-1])
        # Clients stop reading at [DONE]; it ends every stream, broken or not.
        yield _sse("[DONE]")

    response = Response(events(), 200, {**SSE_HEADERS, **(admission.headers if admission else {})})
    # A long generation must not be cut by Quart's default response timeout.
    response.timeout = None
    return response


@api.post("/chat/completions")
@document_request(ChatCompletionRequest)
@document_response(ChatCompletion, 200)
@document_response(ErrorResponse, 400)
@document_response(ErrorResponse, 401)
@document_response(ErrorResponse, 403)
@document_response(ErrorResponse, 404)
@document_response(ErrorResponse, 413)
@document_response(ErrorResponse, 429)
@document_response(ErrorResponse, 500)
@document_response(ErrorResponse, 502)
@document_response(ErrorResponse, 503)
@document_response(ErrorResponse, 504)
async def chat_completions() -> Response:
    """Create a chat completion.

    OpenAI-compatible: set `stream: true` for Server-Sent Events ending with `data: [DONE]`,
    and `stream_options.include_usage` for a final usage chunk.
    """
    body = await parse_body(ChatCompletionRequest)
    note_request(body)
    state = service_state()
    # Cheapest refusals first: nothing is charged to a request that cannot be served.
    enforce_request_limits(body, state.request_limits)
    _check_model(state.provider, body.model)
    key = current_key()
    authorize_model(key, body.model)
    admission = await state.limiter.admit(key, token_reservation(body)) if state.limiter else None
    if body.stream:
        return await _stream_response(state, body, admission)
    if state.cache is not None:
        return await _complete_cached(state, body, admission)
    return _json_response(*await _complete(state, body, admission))


async def _complete_cached(
    state: ServiceState, body: ChatCompletionRequest, admission: Admission | None
) -> Response:
    assert state.cache is not None
    directives = cache_directives(request.headers.get("Cache-Control"))
    key = cache_key(current_key().name, body)
    if "no-cache" not in directives:
        cached = await state.cache.lookup(key)
        note_cache(hit=cached is not None)
        if cached is not None:
            # Answered without the upstream: the request counts, its tokens do not.
            _settle(state, admission, 0)
            headers = admission.headers if admission else {}
            return _json_response(cached, {**headers, CACHE_HEADER: "hit"})
    result, headers = await _complete(state, body, admission)
    if "no-store" not in directives:
        await state.cache.store(key, result)
    label = "bypass" if "no-cache" in directives else "miss"
    return _json_response(result, {**headers, CACHE_HEADER: label})


def _card(model: str) -> ModelCard:
    state = service_state()
    return ModelCard(id=model, created=state.started_at, owned_by=f"genesis-{state.provider.name}")


@api.get("/models")
@document_response(ModelList, 200)
async def list_models() -> dict[str, object]:
    """List the models this service answers to."""
    provider = service_state().provider
    key = current_key()
    models = [model for model in provider.models() if key.allows(model)]
    return ModelList(data=[_card(model) for model in models]).model_dump()


@api.get("/models/<string:model>")
@document_response(ModelCard, 200)
@document_response(ErrorResponse, 403)
@document_response(ErrorResponse, 404)
async def retrieve_model(model: str) -> dict[str, object]:
    """Describe one model."""
    _check_model(service_state().provider, model)
    authorize_model(current_key(), model)
    return _card(model).model_dump()
