"""The offline demo provider: deterministic, honest about what it is, faithful to limits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.service.providers.offline import OfflineProvider, compose_reply, count_tokens
from genesis.service.schemas import ChatCompletionRequest
from genesis.service.settings import OFFLINE_MODEL


def request(text: str, **extra: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": OFFLINE_MODEL, "messages": [{"role": "user", "content": text}], **extra}
    )


async def test_reply_is_deterministic_and_labelled() -> None:
    provider = OfflineProvider()
    first = await provider.complete(request("Tell me about canaries"))
    second = await provider.complete(request("Tell me about canaries"))
    other = await provider.complete(request("Tell me about blue/green"))
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content
    assert first.model == OFFLINE_MODEL
    assert "not a language model" in (first.choices[0].message.content or "")
    assert "Tell me about canaries" in (first.choices[0].message.content or "")


async def test_usage_counts_prompt_and_completion() -> None:
    completion = await OfflineProvider().complete(request("one two three"))
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == count_tokens("user: one two three")
    assert usage.completion_tokens == count_tokens(completion.choices[0].message.content or "")
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_max_tokens_truncates_with_length_finish() -> None:
    completion = await OfflineProvider().complete(request("hello", max_tokens=4))
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 4


def test_stop_sequence_cuts_the_reply() -> None:
    text, finish = compose_reply(request("hello", stop=["offline"]))
    assert text == "This is the genesis "
    assert finish == "stop"


def test_long_prompts_are_echoed_shortened() -> None:
    text, _ = compose_reply(request("word " * 500))
    assert text.endswith('..."')
    assert len(text) < 600


async def test_multipart_content_is_read() -> None:
    parts = [{"type": "text", "text": "part one"}, {"type": "text", "text": " part two"}]
    completion = await OfflineProvider().complete(request(parts))  # type: ignore[arg-type]
    assert "part one part two" in (completion.choices[0].message.content or "")


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(max_size=300),
    max_tokens=st.none() | st.integers(min_value=1, max_value=80),
    include_usage=st.booleans(),
)
async def test_stream_reassembles_to_the_whole_reply(
    text: str, max_tokens: int | None, include_usage: bool
) -> None:
    provider = OfflineProvider()
    body = request(
        text, max_tokens=max_tokens, stream=True, stream_options={"include_usage": include_usage}
    )
    whole = await provider.complete(body)
    chunks = [chunk async for chunk in provider.stream(body)]
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == whole.choices[0].message.content
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == [whole.choices[0].finish_reason]
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage:
        assert len(usage_chunks) == 1
        assert usage_chunks[0] is chunks[-1]
        assert usage_chunks[0].choices == []
        assert usage_chunks[0].usage == whole.usage
    else:
        assert usage_chunks == []
