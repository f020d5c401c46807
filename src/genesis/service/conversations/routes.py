"""`/v1/conversations`: conversations kept by the service, owned by the API key that made them.

Off by default (`GENESIS_CONVERSATION_TTL_SECONDS=0`): every route then answers 404
`conversations_disabled`, saying how to turn them on. On, a conversation lives in Redis when
`GENESIS_REDIS_URL` is set (shared by the replicas) and in the process otherwise (one
instance only). To any key but its owner's a conversation does not exist (404).
"""

from __future__ import annotations

from quart import Blueprint, Quart, Response, current_app, request
from quart_schema import document_request, document_response

from genesis.service.auth import current_key
from genesis.service.conversations.model import (
    AppendMessagesRequest,
    ConversationCaps,
    ConversationDeleted,
    ConversationObject,
    CreateConversationRequest,
    StoredConversation,
    is_conversation_id,
    new_conversation_id,
    size_of,
)
from genesis.service.conversations.store import ConversationStore, MemoryConversations
from genesis.service.errors import SERVER_ERROR, APIError, error_response
from genesis.service.routes.body import parse_body
from genesis.service.schemas import ErrorResponse
from genesis.service.settings import Settings
from genesis.service.stores import StoreUnavailableError

_KEY = "genesis.conversations"

conversations_api = Blueprint("conversations", __name__, url_prefix="/v1")


def _store() -> tuple[ConversationStore, int]:
    found: tuple[ConversationStore, int] | None = current_app.extensions.get(_KEY)
    if found is None:
        raise APIError(
            404,
            "Server-side conversations are off on this instance: set "
            "GENESIS_CONVERSATION_TTL_SECONDS to the seconds a conversation should live "
            "(docs/operations.md, Conversations)",
            code="conversations_disabled",
        )
    return found


def _checked_id(conversation_id: str) -> str:
    if not is_conversation_id(conversation_id):
        raise APIError(
            400,
            f"Invalid conversation id '{conversation_id[:80]}': expected 'conv_' and 32 "
            "lower-case hex digits, as POST /v1/conversations returns",
            param="conversation_id",
            code="invalid_value",
        )
    return conversation_id


def _not_found(conversation_id: str) -> APIError:
    return APIError(
        404,
        f"No conversation found with id '{conversation_id}'",
        param="conversation_id",
        code="conversation_not_found",
    )


async def _create_body() -> CreateConversationRequest:
    # A create needs no body at all: `curl -X POST .../v1/conversations` is a fair request.
    if not (await request.get_data(cache=True)).strip():
        return CreateConversationRequest()
    return await parse_body(CreateConversationRequest)


def _dump(conversation: StoredConversation, ttl_seconds: int) -> dict[str, object]:
    return conversation.public(ttl_seconds).model_dump(mode="json", exclude_none=True)


@conversations_api.post("/conversations")
@document_request(CreateConversationRequest)
@document_response(ConversationObject, 201)
@document_response(ErrorResponse, 400)
@document_response(ErrorResponse, 401)
@document_response(ErrorResponse, 404)
@document_response(ErrorResponse, 413)
@document_response(ErrorResponse, 503)
async def create_conversation() -> tuple[dict[str, object], int, dict[str, str]]:
    """Create a conversation, optionally with its first messages.

    The body may be empty. Answers 201 with the conversation and its `Location`.
    """
    store, ttl = _store()
    body = await _create_body()
    messages = [message.model_dump(mode="json", exclude_none=True) for message in body.messages]
    conversation_id = new_conversation_id()
    created = await store.create(
        current_key().name, conversation_id, messages, size_of(body.messages)
    )
    return _dump(created, ttl), 201, {"Location": f"/v1/conversations/{conversation_id}"}


@conversations_api.get("/conversations/<string:conversation_id>")
@document_response(ConversationObject, 200)
@document_response(ErrorResponse, 400)
@document_response(ErrorResponse, 401)
@document_response(ErrorResponse, 404)
@document_response(ErrorResponse, 503)
async def retrieve_conversation(conversation_id: str) -> dict[str, object]:
    """Show a conversation with all its messages, oldest first."""
    store, ttl = _store()
    found = await store.get(current_key().name, _checked_id(conversation_id))
    if found is None:
        raise _not_found(conversation_id)
    return _dump(found, ttl)


@conversations_api.post("/conversations/<string:conversation_id>/messages")
@document_request(AppendMessagesRequest)
@document_response(ConversationObject, 200)
@document_response(ErrorResponse, 400)
@document_response(ErrorResponse, 401)
@document_response(ErrorResponse, 404)
@document_response(ErrorResponse, 409)
@document_response(ErrorResponse, 413)
@document_response(ErrorResponse, 503)
async def append_messages(conversation_id: str) -> dict[str, object]:
    """Add messages at the end of a conversation, and renew its time to live.

    Atomic: all the messages are added, or (over a cap) none.
    """
    store, ttl = _store()
    _checked_id(conversation_id)
    body = await parse_body(AppendMessagesRequest)
    messages = [message.model_dump(mode="json", exclude_none=True) for message in body.messages]
    updated = await store.append(
        current_key().name, conversation_id, messages, size_of(body.messages)
    )
    if updated is None:
        raise _not_found(conversation_id)
    return _dump(updated, ttl)


@conversations_api.delete("/conversations/<string:conversation_id>")
@document_response(ConversationDeleted, 200)
@document_response(ErrorResponse, 400)
@document_response(ErrorResponse, 401)
@document_response(ErrorResponse, 404)
@document_response(ErrorResponse, 503)
async def delete_conversation(conversation_id: str) -> dict[str, object]:
    """Delete a conversation and its messages."""
    store, _ = _store()
    if not await store.delete(current_key().name, _checked_id(conversation_id)):
        raise _not_found(conversation_id)
    return ConversationDeleted(id=conversation_id).model_dump()


@conversations_api.errorhandler(StoreUnavailableError)
async def _store_down(error: StoreUnavailableError) -> Response:
    return error_response(
        APIError(
            503,
            "The conversation store (Redis) is unreachable right now; retry shortly",
            type=SERVER_ERROR,
            code="conversations_unavailable",
            headers={"Retry-After": "1"},
        )
    )


def open_conversations(settings: Settings) -> ConversationStore | None:
    """The store GENESIS_CONVERSATION_* asks for; None when conversations are off."""
    if not settings.conversation_ttl_seconds:
        return None
    caps = ConversationCaps(
        max_messages=settings.conversation_max_messages,
        max_chars=settings.conversation_max_chars,
    )
    if settings.redis_url is None:
        return MemoryConversations(settings.conversation_ttl_seconds, caps)
    from genesis.service.conversations.redis import RedisConversations

    return RedisConversations(
        settings.redis_url.get_secret_value(), settings.conversation_ttl_seconds, caps
    )


def install_conversations(app: Quart, settings: Settings) -> None:
    """Add `/v1/conversations`; its store (if on) opens with the app and closes with it."""
    app.register_blueprint(conversations_api)
    store = open_conversations(settings)
    app.extensions[_KEY] = (store, settings.conversation_ttl_seconds) if store else None
    if store is None:
        return

    @app.after_serving
    async def _close_conversations() -> None:
        await store.aclose()
