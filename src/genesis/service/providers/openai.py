"""Any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, llama.cpp...) through the official SDK."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import openai

from genesis.service.errors import SERVER_ERROR, APIError
from genesis.service.schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from genesis.service.settings import Settings

# Servers such as vLLM or llama.cpp take any key, but the SDK refuses an empty one.
_NO_KEY = "no-key-configured"


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every secret replaced, for upstream messages that may echo credentials."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def map_upstream_error(error: Exception, secrets: list[str]) -> APIError:
    """The error the client sees for a failed upstream call, in OpenAI's shape."""
    if isinstance(error, openai.APITimeoutError):
        return APIError(
            504,
            "The upstream model provider did not answer in time",
            type=SERVER_ERROR,
            code="upstream_timeout",
        )
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
    return APIError(
        502,
        f"The upstream model provider failed ({type(error).__name__})",
        type=SERVER_ERROR,
        code="upstream_error",
    )


class OpenAIProvider:
    """Forwards completions to an OpenAI-compatible API with `AsyncOpenAI`."""

    name = "openai"

    def __init__(self, settings: Settings) -> None:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        self._secrets = [key]
        self._model = settings.served_model
        self._client = openai.AsyncOpenAI(
            api_key=key or _NO_KEY,
            base_url=settings.openai_base_url,
            timeout=openai.Timeout(
                settings.openai_read_timeout, connect=settings.openai_connect_timeout
            ),
            max_retries=settings.openai_max_retries,
        )

    def models(self) -> list[str]:
        return [self._model]

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        params = request.upstream_params()
        try:
            result = await self._client.chat.completions.create(**params)
        except openai.OpenAIError as error:
            raise map_upstream_error(error, self._secrets) from error
        return ChatCompletion.model_validate(result.model_dump(exclude_unset=True))

    async def stream(
        self, request: ChatCompletionRequest
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        params: dict[str, Any] = request.upstream_params()
        if request.wants_usage_in_stream:
            params["stream_options"] = {"include_usage": True}
        try:
            upstream = await self._client.chat.completions.create(stream=True, **params)
            async with upstream:
                async for chunk in upstream:
                    yield ChatCompletionChunk.model_validate(chunk.model_dump(exclude_unset=True))
        except openai.OpenAIError as error:
            raise map_upstream_error(error, self._secrets) from error
        except ValueError as error:
            # A malformed chunk (invalid JSON or shape) from the upstream.
            raise APIError(
                502,
                "The upstream model provider sent a malformed stream chunk",
                type=SERVER_ERROR,
                code="upstream_error",
            ) from error

    async def check(self) -> None:
        try:
            await self._client.models.list()
        except openai.OpenAIError as error:
            raise map_upstream_error(error, self._secrets) from error

    async def aclose(self) -> None:
        await self._client.close()
