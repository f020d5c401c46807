"""The HTTP API in-process: OpenAI shapes, every error status, readiness states, faults."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from genesis.service import Settings, create_app
from genesis.service.faults import FaultInjector
from genesis.service.settings import OFFLINE_MODEL
from genesis.service.state import service_state

CHAT = "/v1/chat/completions"


def body(**extra: object) -> dict[str, object]:
    return {"model": OFFLINE_MODEL, "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.fixture
async def app() -> AsyncIterator[Quart]:
    application = create_app(Settings(max_body_bytes=2048))
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


def assert_openai_error(payload: object, code: str | None = None) -> dict[str, object]:
    assert isinstance(payload, dict)
    assert set(payload) == {"error"}
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


async def test_completion(client: Client) -> None:
    response = await client.post(CHAT, json=body())
    assert response.status_code == 200
    payload = await response.get_json()
    assert payload["object"] == "chat.completion"
    assert payload["choices"][0]["message"]["role"] == "assistant"
    assert payload["usage"]["total_tokens"] > 0


async def test_stream_is_server_sent_events(client: Client) -> None:
    response = await client.post(
        CHAT, json=body(stream=True, stream_options={"include_usage": True})
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    text = (await response.get_data()).decode()
    events = [line.removeprefix("data: ") for line in text.split("\n\n") if line]
    assert all(line.startswith("data: ") for line in text.split("\n\n") if line)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] > 0


async def test_body_without_content_type_is_accepted(client: Client) -> None:
    response = await client.post(CHAT, data=json.dumps(body()))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("raw", "status", "code", "param"),
    [
        ("{not json", 400, "invalid_json", None),
        ("[]", 400, "invalid_value", None),
        (
            json.dumps({"messages": [{"role": "user", "content": "x"}]}),
            400,
            "invalid_value",
            "model",
        ),
        (json.dumps(body(messages=[])), 400, "invalid_value", "messages"),
        (
            json.dumps(body(messages=[{"role": "robot", "content": "x"}])),
            400,
            "invalid_value",
            "messages.0.role",
        ),
        (json.dumps(body(temperature=3)), 400, "invalid_value", "temperature"),
        (json.dumps(body(n=2)), 400, "invalid_value", "n"),
        (json.dumps(body(max_tokens=0)), 400, "invalid_value", "max_tokens"),
        (json.dumps(body(model="gpt-9")), 404, "model_not_found", "model"),
        ("\xff\xfe", 400, "invalid_json", None),
    ],
)
async def test_bad_requests_get_openai_errors(
    client: Client, raw: str, status: int, code: str, param: str | None
) -> None:
    response = await client.post(
        CHAT, data=raw.encode("latin-1"), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    error = assert_openai_error(await response.get_json(), code)
    assert error["param"] == param
    if param:
        assert param in str(error["message"])


async def test_body_over_limit_is_413(client: Client) -> None:
    response = await client.post(
        CHAT, json=body(messages=[{"role": "user", "content": "x" * 4096}])
    )
    assert response.status_code == 413
    error = assert_openai_error(await response.get_json(), "request_too_large")
    assert "2048 bytes" in str(error["message"])


async def test_wrong_method_is_405_with_allow(client: Client) -> None:
    response = await client.get(CHAT)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert_openai_error(await response.get_json(), "method_not_allowed")


async def test_unknown_route_is_404(client: Client) -> None:
    response = await client.get("/v2/nothing")
    assert response.status_code == 404
    assert_openai_error(await response.get_json(), "not_found")


async def test_models(client: Client) -> None:
    listing = await (await client.get("/v1/models")).get_json()
    assert [model["id"] for model in listing["data"]] == [OFFLINE_MODEL]
    one = await client.get(f"/v1/models/{OFFLINE_MODEL}")
    assert (await one.get_json())["owned_by"] == "genesis-offline"
    missing = await client.get("/v1/models/nope")
    assert missing.status_code == 404
    assert_openai_error(await missing.get_json(), "model_not_found")


async def test_unexpected_errors_are_500_without_internals(app: Quart) -> None:
    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("secret internal detail")

    response = await app.test_client().get("/boom")
    assert response.status_code == 500
    error = assert_openai_error(await response.get_json(), "internal_error")
    assert "secret internal detail" not in str(error)


async def test_openapi_documents_both_media_types(client: Client) -> None:
    document = await (await client.get("/openapi.json")).get_json()
    ok = document["paths"][CHAT]["post"]["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/event-stream"}
    assert (await client.get("/docs")).status_code == 200


async def test_readiness_follows_the_lifecycle() -> None:
    application = create_app(Settings())
    client = application.test_client()
    starting = await client.get("/readyz")
    assert starting.status_code == 503
    assert (await starting.get_json())["state"] == "starting"
    async with application.test_app():
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        service_state(application).readiness.begin_drain()
        draining = await client.get("/readyz")
        assert draining.status_code == 503
        assert (await draining.get_json())["state"] == "draining"
        assert (await client.get("/livez")).status_code == 200, "liveness ignores readiness"


async def test_readiness_reports_a_down_upstream() -> None:
    # A real connection attempt to a port nothing listens on.
    from harness.processes import free_port

    settings = Settings(
        provider="openai",
        openai_base_url=f"http://127.0.0.1:{free_port()}/v1",
        openai_max_retries=0,
        readiness_checks_upstream=True,
    )
    application = create_app(settings)
    async with application.test_app():
        response = await application.test_client().get("/readyz")
        assert response.status_code == 503
        payload = await response.get_json()
        assert payload["state"] == "ready"
        assert payload["checks"]["upstream"].startswith("failed")


async def test_fault_injection_fails_the_configured_share() -> None:
    injector = FaultInjector(0.3, 0, rng=random.Random(7))
    failures = sum(injector.should_fail() for _ in range(2000))
    assert 500 < failures < 700
    assert not any(FaultInjector(0.0, 0).should_fail() for _ in range(100))


async def test_fault_injection_on_the_api_only() -> None:
    application = create_app(Settings(fault_error_rate=1.0, fault_latency_ms=5))
    async with application.test_app():
        client = application.test_client()
        failed = await client.post(CHAT, json=body())
        assert failed.status_code == 500
        assert_openai_error(await failed.get_json(), "fault_injected")
        assert (await client.get("/readyz")).status_code == 200
