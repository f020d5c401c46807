"""Token budgets against a real upstream (the OpenAI stub): failures give the tokens back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from quart import Quart

from genesis.service import Settings, create_app
from harness.openai_stub import Fault, OpenAIStub

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
TPM = 10_000


def body(**extra: object) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}], **extra}


@pytest.fixture
async def app(openai_stub: OpenAIStub) -> AsyncIterator[Quart]:
    application = create_app(
        Settings(
            provider="openai",
            openai_base_url=openai_stub.base_url,
            openai_max_retries=0,
            rate_limit_tpm=TPM,
        )
    )
    async with application.test_app():
        yield application


async def remaining_after(app: Quart, **extra: object) -> int:
    response = await app.test_client().post(CHAT, json=body(**extra))
    await response.get_data()
    return int(response.headers["x-ratelimit-remaining-tokens"])


async def test_failed_upstream_calls_are_settled_to_zero(
    app: Quart, openai_stub: OpenAIStub
) -> None:
    client = app.test_client()
    first = await client.post(CHAT, json=body(max_tokens=1000))
    reserved_then = int(first.headers["x-ratelimit-remaining-tokens"])
    used = (await first.get_json())["usage"]["total_tokens"]
    for stream in (False, True):
        openai_stub.script(Fault.status(500))
        failed = await client.post(CHAT, json=body(max_tokens=3000, stream=stream))
        assert failed.status_code == 502
    # The same request again sees only the first one's actual usage: neither failure kept
    # its 3000-token reservation, and the first one's reservation became its usage.
    assert await remaining_after(app, max_tokens=1000) == reserved_then - used


async def test_a_stream_is_settled_to_the_usage_the_upstream_reported(app: Quart) -> None:
    first = await remaining_after(app, stream=True, max_tokens=2000)
    second = await remaining_after(app, stream=True, max_tokens=2000)
    # The first stream's 2000-token reservation became its (much smaller) reported usage.
    assert first - second < 2000
