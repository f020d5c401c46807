"""Size limits of a chat completion request, each answered with a message naming its setting.

The body size (`GENESIS_MAX_BODY_BYTES`) is enforced while the body is read (errors.py); these
run on the parsed body, before any model, rate-limit budget or upstream is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from genesis.service.errors import APIError
from genesis.service.schemas import ChatCompletionRequest


@dataclass(frozen=True)
class RequestLimits:
    max_messages: int
    max_total_chars: int
    max_tokens: int


def enforce_request_limits(body: ChatCompletionRequest, limits: RequestLimits) -> None:
    count = len(body.messages)
    if count > limits.max_messages:
        raise APIError(
            400,
            f"The request has {count} messages, more than the limit of {limits.max_messages} "
            "(GENESIS_MAX_MESSAGES)",
            param="messages",
            code="too_many_messages",
        )
    chars = sum(len(message.text()) for message in body.messages)
    if chars > limits.max_total_chars:
        raise APIError(
            413,
            f"The messages hold {chars} characters, more than the limit of "
            f"{limits.max_total_chars} (GENESIS_MAX_TOTAL_CHARS)",
            param="messages",
            code="request_too_large",
        )
    for param, value in (
        ("max_tokens", body.max_tokens),
        ("max_completion_tokens", body.max_completion_tokens),
    ):
        if value is not None and value > limits.max_tokens:
            raise APIError(
                400,
                f"'{param}' is {value}, more than the limit of {limits.max_tokens} "
                "(GENESIS_MAX_TOKENS)",
                param=param,
                code="max_tokens_too_large",
            )
