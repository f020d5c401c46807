"""What a server-side conversation is, as clients see it, and the pure decisions about it.

No I/O here: the stores (`store.py` in the process, `redis.py` on Redis) keep conversations
and ask `cap_refusal` whether an append fits, so both enforce the same caps with the same
messages; the routes (`routes.py`) speak HTTP.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genesis.service.errors import APIError
from genesis.service.schemas import Role, TextPart

ID_PREFIX = "conv_"
ID_PATTERN = r"^conv_[0-9a-f]{32}$"
_ID = re.compile(ID_PATTERN)


def new_conversation_id() -> str:
    return f"{ID_PREFIX}{uuid.uuid4().hex}"


def is_conversation_id(value: str) -> bool:
    """Ids are ours (`conv_` and 32 hex digits): anything else never reaches a store key."""
    return _ID.fullmatch(value) is not None


class ConversationMessage(BaseModel):
    """One stored message: a role and its content, as in a chat completion request."""

    # Unlike a chat completion (OpenAI clients send fields genesis ignores), this is our
    # own API: an unknown field is a mistake the client should hear about, not data to lose.
    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str | list[TextPart] = Field(
        description='The text, or text parts (`[{"type": "text", "text": "..."}]`).'
    )
    name: str | None = Field(None, min_length=1, max_length=256)

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class CreateConversationRequest(BaseModel):
    """Body of `POST /v1/conversations`; it may be empty."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ConversationMessage] = Field(
        default_factory=list, description="Initial messages, in order."
    )


class AppendMessagesRequest(BaseModel):
    """Body of `POST /v1/conversations/{id}/messages`."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ConversationMessage] = Field(
        min_length=1, description="Messages to add at the end, in order."
    )


class ConversationObject(BaseModel):
    """A conversation kept by the service for the API key that created it."""

    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int = Field(description="Unix seconds.")
    updated_at: int = Field(description="Unix seconds of the last write.")
    expires_at: int = Field(
        description="Unix seconds after which it is forgotten, unless written to before."
    )
    message_count: int = Field(ge=0)
    total_chars: int = Field(ge=0, description="Characters of message content, all messages.")
    messages: list[ConversationMessage]


class ConversationDeleted(BaseModel):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: Literal[True] = True


@dataclass(frozen=True)
class ConversationCaps:
    max_messages: int
    max_chars: int


@dataclass(frozen=True)
class ConversationSize:
    messages: int
    chars: int

    def __add__(self, other: ConversationSize) -> ConversationSize:
        return ConversationSize(self.messages + other.messages, self.chars + other.chars)


EMPTY = ConversationSize(0, 0)


def size_of(messages: list[ConversationMessage]) -> ConversationSize:
    return ConversationSize(len(messages), sum(len(message.text()) for message in messages))


def cap_refusal(
    current: ConversationSize, added: ConversationSize, caps: ConversationCaps
) -> APIError | None:
    """Why adding `added` to a conversation of `current` size is refused; None when it fits.

    Both stores call this on the size they read inside their atomic step, so of concurrent
    appends exactly those that fit are kept.
    """
    after = current + added
    if after.messages > caps.max_messages:
        return APIError(
            400,
            f"The conversation would hold {after.messages} messages ({current.messages} stored, "
            f"{added.messages} added), more than the limit of {caps.max_messages} "
            "(GENESIS_CONVERSATION_MAX_MESSAGES)",
            param="messages",
            code="conversation_too_many_messages",
        )
    if after.chars > caps.max_chars:
        return APIError(
            413,
            f"The conversation would hold {after.chars} characters ({current.chars} stored, "
            f"{added.chars} added), more than the limit of {caps.max_chars} "
            "(GENESIS_CONVERSATION_MAX_CHARS)",
            param="messages",
            code="conversation_too_large",
        )
    return None


@dataclass(frozen=True)
class StoredConversation:
    """What a store holds: the messages as JSON-ready dicts, validated before they got in."""

    id: str
    created_at: int
    updated_at: int
    size: ConversationSize
    messages: list[dict[str, Any]]

    def public(self, ttl_seconds: int) -> ConversationObject:
        return ConversationObject(
            id=self.id,
            created_at=self.created_at,
            updated_at=self.updated_at,
            expires_at=self.updated_at + ttl_seconds,
            message_count=self.size.messages,
            total_chars=self.size.chars,
            messages=[ConversationMessage.model_validate(message) for message in self.messages],
        )
