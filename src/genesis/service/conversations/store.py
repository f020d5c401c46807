"""Where conversations live: the store protocol and its in-process implementation.

`MemoryConversations` is the fallback when no `GENESIS_REDIS_URL` is set, and it is right for
one instance only: each process has its own conversations, so a client whose next request
lands on another replica (or another `GENESIS_WORKERS` process) would not find its own.
`RedisConversations` (redis.py) is what replicas share.

A conversation is reached through its owner (the API key's name) and its id together, so
another key's lookup finds nothing, exactly as if the id did not exist.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from genesis.service.conversations.model import (
    EMPTY,
    ConversationCaps,
    ConversationSize,
    StoredConversation,
    cap_refusal,
)

# Expired conversations are dropped on a sweep every this many writes: memory stays bounded
# by what was written within the TTL, without a background task.
_SWEEP_EVERY = 256


class ConversationStore(Protocol):
    """Every method raises `StoreUnavailableError` when the store cannot be reached, and the
    writes raise the `APIError` of `cap_refusal` when the caps refuse them."""

    async def create(
        self,
        owner: str,
        conversation_id: str,
        messages: list[dict[str, Any]],
        size: ConversationSize,
    ) -> StoredConversation: ...

    async def get(self, owner: str, conversation_id: str) -> StoredConversation | None: ...

    async def append(
        self,
        owner: str,
        conversation_id: str,
        messages: list[dict[str, Any]],
        size: ConversationSize,
    ) -> StoredConversation | None:
        """Add at the end, atomically with the cap check; None when there is no such one."""

    async def delete(self, owner: str, conversation_id: str) -> bool: ...

    async def aclose(self) -> None: ...


@dataclass
class _Entry:
    created_at: int
    updated_at: int
    expires_at: float
    size: ConversationSize
    messages: list[dict[str, Any]] = field(default_factory=list)

    def stored(self, conversation_id: str) -> StoredConversation:
        return StoredConversation(
            id=conversation_id,
            created_at=self.created_at,
            updated_at=self.updated_at,
            size=self.size,
            messages=list(self.messages),
        )


class MemoryConversations:
    """In-process conversations: one instance only (see the module docstring)."""

    def __init__(
        self,
        ttl_seconds: int,
        caps: ConversationCaps,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ttl = ttl_seconds
        self._caps = caps
        self._clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._writes = 0

    def _live(self, owner: str, conversation_id: str, now: float) -> _Entry | None:
        entry = self._entries.get((owner, conversation_id))
        return entry if entry is not None and entry.expires_at > now else None

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._entries = {k: e for k, e in self._entries.items() if e.expires_at > now}

    # No await in any method: on one event loop each is atomic, as a Redis transaction is.
    async def create(
        self,
        owner: str,
        conversation_id: str,
        messages: list[dict[str, Any]],
        size: ConversationSize,
    ) -> StoredConversation:
        refusal = cap_refusal(EMPTY, size, self._caps)
        if refusal is not None:
            raise refusal
        now = self._clock()
        entry = _Entry(int(now), int(now), now + self._ttl, size, list(messages))
        self._entries[(owner, conversation_id)] = entry
        self._wrote(now)
        return entry.stored(conversation_id)

    async def get(self, owner: str, conversation_id: str) -> StoredConversation | None:
        entry = self._live(owner, conversation_id, self._clock())
        return entry.stored(conversation_id) if entry is not None else None

    async def append(
        self,
        owner: str,
        conversation_id: str,
        messages: list[dict[str, Any]],
        size: ConversationSize,
    ) -> StoredConversation | None:
        now = self._clock()
        entry = self._live(owner, conversation_id, now)
        if entry is None:
            return None
        refusal = cap_refusal(entry.size, size, self._caps)
        if refusal is not None:
            raise refusal
        entry.messages.extend(messages)
        entry.size += size
        entry.updated_at = int(now)
        entry.expires_at = now + self._ttl
        self._wrote(now)
        return entry.stored(conversation_id)

    async def delete(self, owner: str, conversation_id: str) -> bool:
        entry = self._live(owner, conversation_id, self._clock())
        self._entries.pop((owner, conversation_id), None)
        return entry is not None

    async def aclose(self) -> None:
        return None
