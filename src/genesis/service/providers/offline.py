"""The offline demo provider: deterministic text derived from the prompt, no network.

It exists so `genesis serve` works anywhere with nothing installed or configured, and so
tests and demos are reproducible. It is not a language model and says so in every reply.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import AsyncGenerator

from genesis.service.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    FinishReason,
    Usage,
)
from genesis.service.settings import OFFLINE_MODEL

# Words, numbers and single punctuation marks: a rough, deterministic stand-in for tokens.
_TOKEN = re.compile(r"\w+|[^\w\s]")
# A token together with the whitespace before it, so pieces join back into the text.
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])")
_ECHO_LIMIT = 200


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def _prompt_text(request: ChatCompletionRequest) -> str:
    return "\n".join(f"{message.role}: {message.text()}" for message in request.messages)


def compose_reply(request: ChatCompletionRequest) -> tuple[str, FinishReason]:
    """The reply text and why it ended, from the prompt alone (same prompt, same reply)."""
    prompt = _prompt_text(request)
    last_user = next(
        (message.text() for message in reversed(request.messages) if message.role == "user"), ""
    )
    echo = " ".join(last_user.split())
    if len(echo) > _ECHO_LIMIT:
        echo = echo[:_ECHO_LIMIT] + "..."
    fingerprint = hashlib.sha256(prompt.encode()).hexdigest()[:12]
    text = (
        "This is the genesis offline demo provider, not a language model. "
        f"Your conversation has {len(request.messages)} messages and "
        f"{count_tokens(prompt)} tokens; its fingerprint is {fingerprint}. "
        f'You said: "{echo}"'
    )
    finish: FinishReason = "stop"
    for stop in request.stop_sequences:
        if stop and stop in text:
            text = text[: text.index(stop)]
    limit = request.token_limit
    if limit is not None:
        pieces = _PIECE.findall(text)
        if len(pieces) > limit:
            text = "".join(pieces[:limit])
            finish = "length"
    return text, finish


class OfflineProvider:
    """Deterministic demo replies; labeled as such in the `model` field."""

    name = "offline"

    def __init__(self, model: str = OFFLINE_MODEL) -> None:
        self._model = model

    def models(self) -> list[str]:
        return [self._model]

    @staticmethod
    def _completion_id(request: ChatCompletionRequest) -> str:
        digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:24]
        return f"chatcmpl-offline-{digest}"

    @staticmethod
    def _usage(request: ChatCompletionRequest, text: str) -> Usage:
        prompt_tokens = count_tokens(_prompt_text(request))
        completion_tokens = count_tokens(text)
        return Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        text, finish = compose_reply(request)
        return ChatCompletion(
            id=self._completion_id(request),
            created=int(time.time()),
            model=OFFLINE_MODEL,
            choices=[Choice(message=AssistantMessage(content=text), finish_reason=finish)],
            usage=self._usage(request, text),
            system_fingerprint="genesis-offline",
        )

    async def stream(
        self, request: ChatCompletionRequest
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        text, finish = compose_reply(request)
        completion_id = self._completion_id(request)
        created = int(time.time())

        def chunk(delta: Delta, finish_reason: FinishReason | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(
                id=completion_id,
                created=created,
                model=OFFLINE_MODEL,
                choices=[ChunkChoice(delta=delta, finish_reason=finish_reason)],
                system_fingerprint="genesis-offline",
            )

        yield chunk(Delta(role="assistant", content=""))
        for piece in _PIECE.findall(text):
            yield chunk(Delta(content=piece))
        yield chunk(Delta(), finish)
        if request.wants_usage_in_stream:
            yield ChatCompletionChunk(
                id=completion_id,
                created=created,
                model=OFFLINE_MODEL,
                choices=[],
                usage=self._usage(request, text),
                system_fingerprint="genesis-offline",
            )

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
