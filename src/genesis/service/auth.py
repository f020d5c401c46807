"""API key authentication of `/v1/*`: `Authorization: Bearer KEY`, as OpenAI clients send it.

Everything under `/v1/` needs a key — routes added later included — and nothing else does:
`/livez`, `/readyz`, `/openapi.json`, `/docs` and the chat page stay public. The key is
hashed and looked up here and never leaves this module: the rest of the request sees the
key's entry (`current_key()`), whose name is what rate limits and logs use.
"""

from __future__ import annotations

from quart import Quart, g, request

from genesis.service.errors import APIError
from genesis.service.keys import APIKey, KeyRing
from genesis.service.keys_reload import LiveKeyRing

API_PREFIX = "/v1/"
# Who the request is when authentication is off: every caller shares its limits.
ANONYMOUS = APIKey(name="anonymous", digest=b"")
_BEARER = "bearer"
_G_KEY = "genesis_api_key"

MISSING_KEY = (
    "You didn't provide an API key. Send it in the Authorization header as "
    "'Authorization: Bearer YOUR_KEY'."
)
UNKNOWN_KEY = "Incorrect API key provided."


def _unauthorized(message: str, code: str) -> APIError:
    return APIError(
        401,
        message,
        code=code,
        # RFC 6750: a 401 names the scheme it expects.
        headers={"WWW-Authenticate": 'Bearer realm="genesis"'},
    )


def presented_key(authorization: str | None) -> str | None:
    """The key in an `Authorization: Bearer KEY` header; None when there is none."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() != _BEARER or not key.strip():
        return None
    return key.strip()


def authenticate(ring: KeyRing, authorization: str | None) -> APIKey:
    key = presented_key(authorization)
    if key is None:
        raise _unauthorized(MISSING_KEY, "missing_api_key")
    found = ring.identify(key)
    if found is None:
        raise _unauthorized(UNKNOWN_KEY, "invalid_api_key")
    return found


def authorize_model(key: APIKey, model: str) -> None:
    """403 when the key's line restricts it to other models."""
    if not key.allows(model):
        raise APIError(
            403,
            f"The API key '{key.name}' does not have access to the model '{model}'",
            param="model",
            code="model_not_allowed",
        )


def current_key() -> APIKey:
    """The key entry of the request being served (ANONYMOUS when authentication is off)."""
    key = g.get(_G_KEY, ANONYMOUS)
    assert isinstance(key, APIKey)
    return key


def _is_api_request() -> bool:
    # The matched rule as well as the path: whatever spelling of a path reached an API
    # route, that route is protected.
    rule = request.url_rule
    return request.path.startswith(API_PREFIX) or (
        rule is not None and rule.rule.startswith(API_PREFIX)
    )


def install_auth(app: Quart, keys: LiveKeyRing | None) -> None:
    """Check the key of every `/v1/*` request; with `keys` None, authentication is off."""

    @app.before_request
    async def _authenticate() -> None:
        # CORS preflights never carry credentials, and an automatic OPTIONS answer says
        # nothing but the allowed methods.
        if keys is None or request.method == "OPTIONS" or not _is_api_request():
            return
        setattr(g, _G_KEY, authenticate(keys.ring, request.headers.get("Authorization")))
