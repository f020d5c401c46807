"""Server-side conversations: `/v1/conversations` (off unless GENESIS_CONVERSATION_TTL_SECONDS).

`model` holds what a conversation is and the pure cap decision, `store` the protocol and the
in-process store, `redis` the store replicas share, `routes` the HTTP API.
"""

from genesis.service.conversations.model import ConversationObject
from genesis.service.conversations.routes import install_conversations

__all__ = ["ConversationObject", "install_conversations"]
