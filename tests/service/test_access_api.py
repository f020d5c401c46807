"""Auth, request limits and rate limits of the HTTP API in-process (the in-memory store)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from quart import Quart
from quart.typing import TestClientProtocol as Client

from genesis.service import Settings, create_app
from genesis.service.keys import key_line, new_key
from genesis.service.settings import OFFLINE_MODEL
from genesis.service.state import service_state
from genesis.service.stores.memory import MemoryStore

CHAT = "/v1/chat/completions"
ALICE = new_key()
BATCH = new_key()
OTHER_MODEL = "another-model"


def body(**extra: object) -> dict[str, object]:
    return {"model": OFFLINE_MODEL, "messages": [{"role": "user", "content": "hi"}], **extra}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "api-keys"
    path.write_text(
        "# who may call\n"
        f"{key_line('alice', ALICE)}\n"
        "\n"
        f"{key_line('batch', BATCH)} models={OTHER_MODEL} rpm=1\n"
    )
    return path


@pytest.fixture
async def make_client(keys_file: Path) -> AsyncIterator[Callable[..., Client]]:
    apps: list[Quart] = []

    def make(**settings: object) -> Client:
        settings.setdefault("api_keys_file", keys_file)
        app = create_app(Settings(**settings))  # type: ignore[arg-type]
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        store = service_state(app).store
        if store is not None:
            await store.aclose()


def assert_error(payload: object, status_code: str) -> dict[str, object]:
    assert isinstance(payload, dict)
    assert set(payload) == {"error"}
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == status_code
    return error


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": ""}, "missing_api_key"),
        ({"Authorization": f"Basic {ALICE}"}, "missing_api_key"),
        ({"Authorization": "Bearer "}, "missing_api_key"),
        ({"Authorization": "Bearer gsk_not-a-key-we-issued"}, "invalid_api_key"),
        ({"Authorization": f"Bearer {ALICE}x"}, "invalid_api_key"),
    ],
)
async def test_missing_or_unknown_key_is_401(
    make_client: Callable[..., Client], headers: dict[str, str], code: str
) -> None:
    client = make_client()
    for method, path in (("POST", CHAT), ("GET", "/v1/models"), ("GET", "/v1/no-such-route")):
        response = await client.open(path, method=method, json=body(), headers=headers)
        assert response.status_code == 401, path
        error = assert_error(await response.get_json(), code)
        assert error["type"] == "invalid_request_error"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert ALICE not in json.dumps(error)


async def test_valid_key_is_served_and_scheme_is_case_insensitive(
    make_client: Callable[..., Client],
) -> None:
    client = make_client()
    response = await client.post(CHAT, json=body(), headers={"Authorization": f"bearer  {ALICE}"})
    assert response.status_code == 200
    models = await client.get("/v1/models", headers=bearer(ALICE))
    assert [card["id"] for card in (await models.get_json())["data"]] == [OFFLINE_MODEL]


async def test_public_endpoints_need_no_key(make_client: Callable[..., Client]) -> None:
    client = make_client()
    for path in ("/livez", "/readyz", "/openapi.json", "/docs"):
        response = await client.get(path)
        assert response.status_code in (200, 503), path
    # The chat page is public too: served, or a 404 telling how to build it.
    assert (await client.get("/")).status_code in (200, 404)
    assert (await client.options(CHAT)).status_code == 200


async def test_key_restricted_to_other_models_gets_403(make_client: Callable[..., Client]) -> None:
    client = make_client()
    response = await client.post(CHAT, json=body(), headers=bearer(BATCH))
    assert response.status_code == 403
    error = assert_error(await response.get_json(), "model_not_allowed")
    assert error["param"] == "model"
    assert "'batch'" in str(error["message"])
    card = await client.get(f"/v1/models/{OFFLINE_MODEL}", headers=bearer(BATCH))
    assert card.status_code == 403
    listed = await client.get("/v1/models", headers=bearer(BATCH))
    assert (await listed.get_json())["data"] == []
    # An unknown model stays a 404, whoever asks.
    missing = await client.post(CHAT, json=body(model="nope"), headers=bearer(BATCH))
    assert missing.status_code == 404


async def test_auth_off_on_the_embedded_default(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.key_ring is None
    app = create_app(settings)
    response = await app.test_client().post(CHAT, json=body())
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"env": "prod"}, "GENESIS_ENV=prod needs GENESIS_API_KEYS_FILE"),
        ({"env": "staging"}, "GENESIS_ENV=staging needs GENESIS_API_KEYS_FILE"),
        ({"host": "0.0.0.0"}, "other than loopback needs GENESIS_API_KEYS_FILE"),
        ({"host": "genesis.internal"}, "other than loopback needs GENESIS_API_KEYS_FILE"),
        ({"auth": "on"}, "GENESIS_AUTH=on needs GENESIS_API_KEYS_FILE"),
        ({"auth": "off", "env": "prod"}, "GENESIS_AUTH=off is refused when GENESIS_ENV=prod"),
    ],
)
def test_auth_is_off_only_when_explicit(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**settings)  # type: ignore[arg-type]


def test_explicit_auth_off_and_loopback_hosts(keys_file: Path) -> None:
    assert Settings(auth="off", host="0.0.0.0", env="staging").key_ring is None
    for host in ("localhost", "::1", "[::1]", "127.0.0.2"):
        assert Settings(host=host).key_ring is None
    with pytest.raises(ValidationError, match="not both"):
        Settings(auth="off", api_keys_file=keys_file)
    ring = Settings(auth="on", env="prod", host="0.0.0.0", api_keys_file=keys_file).key_ring
    assert ring is not None
    assert [key.name for key in ring.keys] == ["alice", "batch"]


def test_keys_file_problems_are_start_up_errors(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# ok\n{key_line('alice', ALICE)}\n{ALICE}\n")
    with pytest.raises(ValidationError, match=r"GENESIS_API_KEYS_FILE: .*keys line 3:") as raised:
        Settings(api_keys_file=path)
    assert ALICE not in str(raised.value)
    path.write_text("# nobody yet\n")
    with pytest.raises(ValidationError, match="holds no keys"):
        Settings(api_keys_file=path)
    with pytest.raises(ValidationError, match="cannot read"):
        Settings(api_keys_file=tmp_path / "absent")


def test_redis_url_is_a_secret_with_a_checked_scheme(tmp_path: Path) -> None:
    password_url = "redis://:hunter2-secret@127.0.0.1:1/0"
    settings = Settings(redis_url=password_url)
    assert "hunter2" not in repr(settings)
    with pytest.raises(ValidationError, match="must start with redis://") as raised:
        Settings(redis_url="http://:hunter2-secret@host")
    assert "hunter2" not in str(raised.value.errors(include_input=False))
    url_file = tmp_path / "redis-url"
    url_file.write_text(password_url + "\n")
    from_file = Settings(redis_url_file=url_file).redis_url
    assert from_file is not None
    assert from_file.get_secret_value() == password_url


# --- request limits -------------------------------------------------------------------------


async def test_request_limits_name_their_setting(make_client: Callable[..., Client]) -> None:
    client = make_client(max_messages=2, max_total_chars=20, max_tokens=50)
    many = body(messages=[{"role": "user", "content": "a"}] * 3)
    cases = [
        (many, 400, "too_many_messages", "messages", "GENESIS_MAX_MESSAGES"),
        (
            body(messages=[{"role": "user", "content": "x" * 21}]),
            413,
            "request_too_large",
            "messages",
            "GENESIS_MAX_TOTAL_CHARS",
        ),
        (body(max_tokens=51), 400, "max_tokens_too_large", "max_tokens", "GENESIS_MAX_TOKENS"),
        (
            body(max_completion_tokens=51),
            400,
            "max_tokens_too_large",
            "max_completion_tokens",
            "GENESIS_MAX_TOKENS",
        ),
    ]
    for payload, status, code, param, setting in cases:
        response = await client.post(CHAT, json=payload, headers=bearer(ALICE))
        assert response.status_code == status, code
        error = assert_error(await response.get_json(), code)
        assert error["param"] == param
        assert setting in str(error["message"])
    text_parts = body(messages=[{"role": "user", "content": [{"type": "text", "text": "y" * 20}]}])
    at_limit = await client.post(CHAT, json=text_parts | {"max_tokens": 50}, headers=bearer(ALICE))
    assert at_limit.status_code == 200


async def test_body_size_limit_names_its_setting(make_client: Callable[..., Client]) -> None:
    client = make_client(max_body_bytes=2048)
    response = await client.post(
        CHAT, json=body(messages=[{"role": "user", "content": "z" * 4096}]), headers=bearer(ALICE)
    )
    assert response.status_code == 413
    error = assert_error(await response.get_json(), "request_too_large")
    assert "GENESIS_MAX_BODY_BYTES" in str(error["message"])


# --- rate limits (in-process store) ---------------------------------------------------------


async def test_no_limits_no_store_no_headers(
    make_client: Callable[..., Client], tmp_path: Path
) -> None:
    plain = tmp_path / "plain-keys"
    plain.write_text(key_line("alice", ALICE) + "\n")
    client = make_client(api_keys_file=plain)
    assert service_state(client.app).limiter is None  # type: ignore[attr-defined]
    assert service_state(client.app).store is None  # type: ignore[attr-defined]
    response = await client.post(CHAT, json=body(), headers=bearer(ALICE))
    names = {name.lower() for name, _ in response.headers.items()}
    assert not {name for name in names if name.startswith("x-ratelimit")}


async def test_requests_per_minute(make_client: Callable[..., Client]) -> None:
    client = make_client(rate_limit_rpm=2)
    assert isinstance(service_state(client.app).store, MemoryStore)  # type: ignore[attr-defined]
    first = await client.post(CHAT, json=body(), headers=bearer(ALICE))
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert "x-ratelimit-limit-tokens" not in first.headers
    stream = await client.post(CHAT, json=body(stream=True), headers=bearer(ALICE))
    assert stream.status_code == 200
    assert stream.headers["x-ratelimit-remaining-requests"] == "0"
    await stream.get_data()
    refused = await client.post(CHAT, json=body(), headers=bearer(ALICE))
    assert refused.status_code == 429
    error = assert_error(await refused.get_json(), "rate_limit_exceeded")
    assert error["type"] == "requests"
    assert "GENESIS_RATE_LIMIT_RPM" in str(error["message"])
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"


async def test_per_key_limit_replaces_the_service_limit(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"{key_line('alice', ALICE)} rpm=1\n{key_line('free', BATCH)} rpm=0\n")
    app = create_app(Settings(api_keys_file=path, rate_limit_rpm=100))
    client = app.test_client()
    assert (await client.post(CHAT, json=body(), headers=bearer(ALICE))).status_code == 200
    refused = await client.post(CHAT, json=body(), headers=bearer(ALICE))
    assert refused.status_code == 429
    assert "rpm= of the key 'alice'" in (await refused.get_json())["error"]["message"]
    for _ in range(3):
        unlimited = await client.post(CHAT, json=body(), headers=bearer(BATCH))
        assert unlimited.status_code == 200
        assert "x-ratelimit-limit-requests" not in unlimited.headers


async def test_tokens_are_reserved_then_settled_to_usage(
    make_client: Callable[..., Client],
) -> None:
    client = make_client(rate_limit_tpm=1000)
    first = await client.post(CHAT, json=body(max_tokens=500), headers=bearer(ALICE))
    assert first.status_code == 200
    reserved = 1000 - int(first.headers["x-ratelimit-remaining-tokens"])
    assert reserved >= 500, "max_tokens is reserved up front"
    used = (await first.get_json())["usage"]["total_tokens"]
    # The next admission sees the settled usage, not the 500-token reservation.
    second = await client.post(CHAT, json=body(max_tokens=400), headers=bearer(ALICE))
    assert second.status_code == 200
    second_reserved = 400 + (reserved - 500)
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == 1000 - used - second_reserved
    stream = await client.post(CHAT, json=body(stream=True, max_tokens=5), headers=bearer(ALICE))
    assert stream.status_code == 200
    await stream.get_data()
    too_big = await client.post(CHAT, json=body(max_tokens=999), headers=bearer(ALICE))
    assert too_big.status_code == 429
    assert too_big.headers["x-ratelimit-limit-tokens"] == "1000"
    error = assert_error(await too_big.get_json(), "rate_limit_exceeded")
    assert error["type"] == "tokens"
    never = await client.post(CHAT, json=body(max_tokens=5000), headers=bearer(ALICE))
    assert never.status_code == 429
    assert "Request too large" in (await never.get_json())["error"]["message"]
    assert "Retry-After" not in never.headers


async def test_anonymous_callers_share_one_budget_when_auth_is_off() -> None:
    app = create_app(Settings(rate_limit_rpm=1))
    client = app.test_client()
    assert (await client.post(CHAT, json=body())).status_code == 200
    assert (await client.post(CHAT, json=body())).status_code == 429


async def test_openapi_document_states_auth_and_limits(
    make_client: Callable[..., Client],
) -> None:
    client = make_client(max_messages=7, max_tokens=99)
    document = await (await client.get("/openapi.json")).get_json()
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    chat = document["paths"][CHAT]["post"]
    assert chat["security"] == [{"apiKey": []}]
    assert "security" not in document["paths"]["/readyz"]["get"]
    request = chat["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert request["messages"]["maxItems"] == 7
    assert {"minimum": 1, "maximum": 99, "type": "integer"} in request["max_tokens"]["anyOf"]
    assert "401" in chat["responses"] or 401 in chat["responses"]
