"""Conversations on Redis, shared by every replica.

Each conversation is two keys with the owner (the API key's name) in a `{hash tag}`, so both
sit in one Redis Cluster slot, as a transaction needs: a hash
`genesis:conv:{OWNER}:ID` (created_at, updated_at, messages, chars) and a list
`genesis:conv:{OWNER}:ID:messages` of the messages as JSON. Both get the TTL again on every
write.

An append is optimistic: WATCH the hash, read its size, let `cap_refusal` (pure, the same
decision the in-process store makes) judge, then MULTI/EXEC the push and the new size. Every
write changes the hash, so a concurrent write or delete in between makes the EXEC fail and
the append starts over on what is there now: of concurrent appends on any replicas, exactly
those that fit are kept, and none is half-applied. One that keeps losing the race
`MAX_ROUNDS` times is answered 409 `conversation_busy` with `Retry-After`.
"""

from __future__ import annotations

import enum
import json
import time
from typing import Any

from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, WatchError

from genesis.service.conversations.model import (
    EMPTY,
    ConversationCaps,
    ConversationSize,
    StoredConversation,
    cap_refusal,
)
from genesis.service.errors import APIError
from genesis.service.stores import StoreUnavailableError
from genesis.service.stores.redis import redis_client

KEY_PREFIX = "genesis:conv"
# Every round of contention lets one writer through, so this bounds how many writers may
# race on one conversation at once before one is told to retry (409).
MAX_ROUNDS = 64


class _Conflict(enum.Enum):
    LOST = "another write came first"


_TIMEOUT_SECONDS = 0.5


def conversation_keys(owner: str, conversation_id: str) -> tuple[str, str]:
    meta = f"{KEY_PREFIX}:{{{owner}}}:{conversation_id}"
    return meta, f"{meta}:messages"


def _unavailable(error: Exception) -> StoreUnavailableError:
    return StoreUnavailableError(f"Redis: {type(error).__name__}")


def _stored(
    conversation_id: str, meta: dict[bytes, bytes], messages: list[bytes]
) -> StoredConversation:
    return StoredConversation(
        id=conversation_id,
        created_at=int(meta[b"created_at"]),
        updated_at=int(meta[b"updated_at"]),
        size=ConversationSize(int(meta[b"messages"]), int(meta[b"chars"])),
        messages=[json.loads(message) for message in messages],
    )


class RedisConversations:
    def __init__(
        self,
        url: str,
        ttl_seconds: int,
        caps: ConversationCaps,
        *,
        timeout: float = _TIMEOUT_SECONDS,
        max_rounds: int = MAX_ROUNDS,
    ) -> None:
        self._client = redis_client(url, timeout=timeout)
        self._max_rounds = max_rounds
        self._ttl = ttl_seconds
        self._caps = caps

    def _write(
        self,
        pipe: Pipeline,
        keys: tuple[str, str],
        messages: list[dict[str, Any]],
        size: ConversationSize,
        *,
        now: int,
        created_at: int | None = None,
    ) -> None:
        meta, listed = keys
        fields: dict[str, int] = {"updated_at": now, "messages": size.messages, "chars": size.chars}
        if created_at is not None:
            fields["created_at"] = created_at
        pipe.hset(meta, mapping=fields)  # type: ignore[arg-type]
        if messages:
            pipe.rpush(listed, *(json.dumps(m, separators=(",", ":")) for m in messages))
        pipe.expire(meta, self._ttl)
        pipe.expire(listed, self._ttl)
        pipe.hgetall(meta)
        pipe.lrange(listed, 0, -1)

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
        now = int(time.time())
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                keys = conversation_keys(owner, conversation_id)
                self._write(pipe, keys, messages, size, now=now, created_at=now)
                results = await pipe.execute()
        except (RedisError, OSError) as error:
            raise _unavailable(error) from None
        return _stored(conversation_id, results[-2], results[-1])

    async def get(self, owner: str, conversation_id: str) -> StoredConversation | None:
        meta, listed = conversation_keys(owner, conversation_id)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hgetall(meta)
                pipe.lrange(listed, 0, -1)
                found, messages = await pipe.execute()
        except (RedisError, OSError) as error:
            raise _unavailable(error) from None
        return _stored(conversation_id, found, messages) if found else None

    async def append(
        self,
        owner: str,
        conversation_id: str,
        messages: list[dict[str, Any]],
        size: ConversationSize,
    ) -> StoredConversation | None:
        keys = conversation_keys(owner, conversation_id)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                for _ in range(self._max_rounds):
                    outcome = await self._try_append(pipe, conversation_id, keys, messages, size)
                    if outcome is not _Conflict.LOST:
                        return outcome
        except (RedisError, OSError) as error:
            raise _unavailable(error) from None
        raise APIError(
            409,
            f"The conversation '{conversation_id}' is being written by too many requests at "
            "once; retry shortly",
            param="conversation_id",
            code="conversation_busy",
            headers={"Retry-After": "1"},
        )

    async def _try_append(
        self,
        pipe: Pipeline,
        conversation_id: str,
        keys: tuple[str, str],
        messages: list[dict[str, Any]],
        size: ConversationSize,
    ) -> StoredConversation | _Conflict | None:
        meta = keys[0]
        await pipe.watch(meta)
        stored, chars = await pipe.hmget(meta, ["messages", "chars"])
        # Leaving early needs no UNWATCH: the pipeline's reset on exit sends it.
        if stored is None or chars is None:
            return None
        current = ConversationSize(int(stored), int(chars))
        refusal = cap_refusal(current, size, self._caps)
        if refusal is not None:
            raise refusal
        pipe.multi()  # type: ignore[no-untyped-call]
        self._write(pipe, keys, messages, current + size, now=int(time.time()))
        try:
            results = await pipe.execute()
        except WatchError:
            # Another write got in between: the caller starts over on what is there now.
            return _Conflict.LOST
        return _stored(conversation_id, results[-2], results[-1])

    async def delete(self, owner: str, conversation_id: str) -> bool:
        try:
            deleted = await self._client.delete(*conversation_keys(owner, conversation_id))
        except (RedisError, OSError) as error:
            raise _unavailable(error) from None
        return bool(deleted)

    async def aclose(self) -> None:
        await self._client.aclose()
