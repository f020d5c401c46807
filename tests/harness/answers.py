"""Reading genesis' OpenAI-shaped answers in tests: the events of a stream, an error body."""

from __future__ import annotations

import httpx


def sse_events(response: httpx.Response) -> list[str]:
    """The data of every event of an SSE answer, in order (`[DONE]` included)."""
    return [block.removeprefix("data: ") for block in response.text.split("\n\n") if block.strip()]


def openai_error(response: httpx.Response, *, secret: str) -> dict[str, object]:
    """The `error` object of an answer, checked for OpenAI's four fields and for `secret`."""
    payload = response.json()
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    assert secret not in response.text
    error: dict[str, object] = payload["error"]
    return error
