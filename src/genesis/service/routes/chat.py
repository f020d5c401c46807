"""The OpenAI-compatible API: `POST /v1/chat/completions` (JSON or SSE) and `GET /v1/models`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import structlog
from quart import Blueprint, Response
from quart_schema import document_request, document_response

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
)
from genesis.service.state import service_state

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


async def _stream_response(provider: Provider, body: ChatCompletionRequest) -> Response:
    chunks = provider.stream(body)
    # Wait for the first chunk before answering, so a failure before any output is a
    # plain HTTP error with a status code rather than a 200 stream with an error in it.
    try:
        first: ChatCompletionChunk | None = await anext(chunks)
    except StopAsyncIteration:
        first = None

    async def events() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield _sse(first.model_dump_json(exclude_none=True))
            async for chunk in chunks:
                yield _sse(chunk.model_dump_json(exclude_none=True))
        except APIError as error:
            log.warning("stream failed", code=error.code, status=error.status)
            yield _sse(error.body().model_dump_json())
        except Exception:
            log.exception("stream failed unexpectedly")
            failure = APIError(
                500, "Internal server error", type=SERVER_ERROR, code="internal_error"
            )
            yield _sse(failure.body().model_dump_json())
        finally:
            await chunks.aclose()
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
    provider = service_state().provider
    _check_model(provider, body.model)
    if body.stream:
        return await _stream_response(provider, body)
    completion = await provider.complete(body)
    result: dict[str, object] = json.loads(completion.model_dump_json(exclude_none=True))
    return result


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
