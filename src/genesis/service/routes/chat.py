"""The OpenAI-compatible API: `POST /v1/chat/completions` (JSON or SSE) and `GET /v1/models`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import structlog
from quart import Blueprint, Response
from quart_schema import document_request, document_response

from genesis.observability import GenAIOperation
from genesis.service.errors import SERVER_ERROR, APIError
from genesis.service.providers import Provider
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


async def _complete(state: ServiceState, body: ChatCompletionRequest) -> dict[str, object]:
    async with _operation(state, body) as operation:
        try:
            completion = await state.provider.complete(body)
        except APIError as error:
            operation.fail(_error_type(error))
            raise
        if completion.usage is not None:
            operation.usage(
                input_tokens=completion.usage.prompt_tokens,
                output_tokens=completion.usage.completion_tokens,
            )
    result: dict[str, object] = json.loads(completion.model_dump_json(exclude_none=True))
    return result


def _for_client(
    chunk: ChatCompletionChunk, operation: GenAIOperation, client_wants_usage: bool
) -> ChatCompletionChunk | None:
    """Record what the chunk says; return what the client asked to see of it."""
    operation.first_chunk()
    if chunk.usage is None:
        return chunk
    operation.usage(
        input_tokens=chunk.usage.prompt_tokens, output_tokens=chunk.usage.completion_tokens
    )
    if client_wants_usage:
        return chunk
    return chunk.model_copy(update={"usage": None}) if chunk.choices else None


async def _stream_response(state: ServiceState, body: ChatCompletionRequest) -> Response:
    # Usage is always requested upstream, for the token metrics; the client sees it only
    # when it asked (stream_options.include_usage), as with OpenAI.
    upstream_body = body.model_copy(update={"stream_options": StreamOptions(include_usage=True)})
    client_wants_usage = body.wants_usage_in_stream
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
        raise

    async def events() -> AsyncIterator[bytes]:
        try:
            if first is not None and (chunk := _for_client(first, operation, client_wants_usage)):
                yield _sse(chunk.model_dump_json(exclude_none=True))
            async for upstream_chunk in chunks:
                if chunk := _for_client(upstream_chunk, operation, client_wants_usage):
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
        # Clients stop reading at [DONE]; it ends every stream, broken or not.
        yield _sse("[DONE]")

    response = Response(events(), 200, SSE_HEADERS)
    # A long generation must not be cut by Quart's default response timeout.
    response.timeout = None
    return response


@api.post("/chat/completions")
@document_request(ChatCompletionRequest)
@document_response(ChatCompletion, 200)
@document_response(ErrorResponse, 400)
@document_response(ErrorResponse, 404)
@document_response(ErrorResponse, 413)
@document_response(ErrorResponse, 429)
@document_response(ErrorResponse, 500)
@document_response(ErrorResponse, 502)
@document_response(ErrorResponse, 504)
async def chat_completions() -> Response | dict[str, object]:
    """Create a chat completion.

    OpenAI-compatible: set `stream: true` for Server-Sent Events ending with `data: [DONE]`,
    and `stream_options.include_usage` for a final usage chunk.
    """
    body = await parse_body(ChatCompletionRequest)
    state = service_state()
    _check_model(state.provider, body.model)
    if body.stream:
        return await _stream_response(state, body)
    return await _complete(state, body)


def _card(model: str) -> ModelCard:
    state = service_state()
    return ModelCard(id=model, created=state.started_at, owned_by=f"genesis-{state.provider.name}")


@api.get("/models")
@document_response(ModelList, 200)
async def list_models() -> dict[str, object]:
    """List the models this service answers to."""
    provider = service_state().provider
    return ModelList(data=[_card(model) for model in provider.models()]).model_dump()


@api.get("/models/<string:model>")
@document_response(ModelCard, 200)
@document_response(ErrorResponse, 404)
async def retrieve_model(model: str) -> dict[str, object]:
    """Describe one model."""
    _check_model(service_state().provider, model)
    return _card(model).model_dump()
