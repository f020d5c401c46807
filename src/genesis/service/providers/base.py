"""The one interface every model provider implements."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from genesis.service.schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest


class Provider(Protocol):
    """A source of chat completions: the offline demo, or an OpenAI-compatible upstream."""

    #: `gen_ai.provider.name` in metrics and logs.
    name: str

    def models(self) -> list[str]:
        """Model names this provider answers to."""
        ...

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        """One whole completion; raises `APIError` for failures the client should see."""
        ...

    def stream(self, request: ChatCompletionRequest) -> AsyncGenerator[ChatCompletionChunk, None]:
        """Completion chunks as they come; the usage chunk last when the request asks for it."""
        ...

    async def check(self) -> None:
        """Raise when the provider cannot serve (used by readiness when configured)."""
        ...

    async def aclose(self) -> None:
        """Release connections at shutdown."""
        ...
