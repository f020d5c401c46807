"""Server-side conversations: the cap decision exhaustively, the API in-process (validation,
ownership, caps, off by default), on a real Redis shared by two app instances (atomic
appends under concurrency, TTLs), and through a real `genesis serve` process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from genesis.service import Settings, create_app
from genesis.service.conversations.model import (
    EMPTY,
    ID_PATTERN,
    ConversationCaps,
    ConversationMessage,
    ConversationSize,
    cap_refusal,
    is_conversation_id,
    new_conversation_id,
    size_of,
)
from genesis.service.conversations.redis import RedisConversations, conversation_keys
from genesis.service.conversations.store import MemoryConversations
from genesis.service.errors import APIError
from genesis.service.keys import key_line, new_key
from harness.genesis import GenesisFactory
from harness.redis import RedisServer

BASE = "/v1/conversations"
HI = {"role": "user", "content": "hi"}
CAPS = ConversationCaps(max_messages=3, max_chars=10)


def _settings(redis: RedisServer | None = None, **extra: Any) -> Settings:
    return Settings(
        redis_url=redis.url if redis else None,
        metrics_port=0,
        conversation_ttl_seconds=extra.pop("ttl", 60),
        **extra,
    )


def _keys(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    alice, bob = new_key(), new_key()
    keys = tmp_path / "keys"
    keys.write_text(f"{key_line('alice', alice)}\n{key_line('bob', bob)}\n")
    return keys, {"Authorization": f"Bearer {alice}"}, {"Authorization": f"Bearer {bob}"}


async def _create(client: Client, **kwargs: Any) -> dict[str, Any]:
    response = await client.post(BASE, **kwargs)
    assert response.status_code == 201, await response.get_data()
    created: dict[str, Any] = await response.get_json()
    assert response.headers["Location"] == f"{BASE}/{created['id']}"
    return created


async def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, await response.get_data()
    body: dict[str, Any] = await response.get_json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


# -- pure decisions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "added"),
    [
        (EMPTY, EMPTY),
        (EMPTY, ConversationSize(3, 10)),
        (ConversationSize(2, 9), ConversationSize(1, 1)),
    ],
)
def test_what_fits_the_caps_exactly_is_kept(
    current: ConversationSize, added: ConversationSize
) -> None:
    assert cap_refusal(current, added, CAPS) is None


def test_too_many_messages_is_a_400_naming_its_setting() -> None:
    refusal = cap_refusal(ConversationSize(2, 0), ConversationSize(2, 0), CAPS)
    assert refusal is not None
    assert refusal.status == 400
    assert refusal.code == "conversation_too_many_messages"
    assert refusal.param == "messages"
    assert "4 messages (2 stored, 2 added)" in refusal.message
    assert "GENESIS_CONVERSATION_MAX_MESSAGES" in refusal.message


def test_too_many_characters_is_a_413_naming_its_setting() -> None:
    refusal = cap_refusal(ConversationSize(1, 8), ConversationSize(1, 3), CAPS)
    assert refusal is not None
    assert refusal.status == 413
    assert refusal.code == "conversation_too_large"
    assert "11 characters (8 stored, 3 added)" in refusal.message
    assert "GENESIS_CONVERSATION_MAX_CHARS" in refusal.message


def test_the_message_cap_is_named_first_when_both_are_exceeded() -> None:
    refusal = cap_refusal(ConversationSize(3, 10), ConversationSize(1, 1), CAPS)
    assert refusal is not None
    assert refusal.code == "conversation_too_many_messages"


def test_size_counts_text_parts_and_names_nothing() -> None:
    messages = [
        ConversationMessage.model_validate(HI),
        ConversationMessage.model_validate(
            {"role": "assistant", "content": [{"type": "text", "text": "abc"}] * 2, "name": "x"}
        ),
    ]
    assert size_of(messages) == ConversationSize(2, 8)


def test_ids() -> None:
    fresh = new_conversation_id()
    assert is_conversation_id(fresh)
    assert fresh != new_conversation_id()
    for bad in ("", "conv_", "conv_" + "A" * 32, "conv_" + "0" * 31, "job_" + "0" * 32):
        assert not is_conversation_id(bad)
    assert not is_conversation_id(f"{fresh}\n")


async def test_the_memory_store_forgets_after_the_ttl_and_writes_renew_it() -> None:
    now = [1000.0]
    store = MemoryConversations(10, CAPS, clock=lambda: now[0])
    created = await store.create("alice", "c1", [HI], ConversationSize(1, 2))
    assert (created.created_at, created.updated_at) == (1000, 1000)
    now[0] = 1009.0
    appended = await store.append("alice", "c1", [HI], ConversationSize(1, 2))
    assert appended is not None
    assert appended.updated_at == 1009
    now[0] = 1018.0
    assert await store.get("alice", "c1") is not None, "the append renewed the TTL"
    assert await store.get("bob", "c1") is None
    now[0] = 1019.0
    assert await store.get("alice", "c1") is None
    assert await store.append("alice", "c1", [HI], ConversationSize(1, 2)) is None
    assert not await store.delete("alice", "c1")


async def test_the_memory_store_sweeps_expired_conversations() -> None:
    now = [0.0]
    store = MemoryConversations(1, CAPS, clock=lambda: now[0])
    await store.create("alice", "old", [], EMPTY)
    now[0] = 5.0
    for index in range(300):
        await store.create("alice", f"new-{index}", [], EMPTY)
    assert ("alice", "old") not in store._entries
    await store.aclose()


# -- the API, in-process ----------------------------------------------------------------------


@pytest.fixture
def app() -> Quart:
    return create_app(_settings(conversation_max_messages=4, conversation_max_chars=20))


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


async def test_off_by_default_every_route_says_how_to_turn_it_on() -> None:
    client = create_app(Settings(metrics_port=0)).test_client()
    some = f"{BASE}/{new_conversation_id()}"
    for response in (
        await client.post(BASE, json={}),
        await client.get(some),
        await client.post(f"{some}/messages", json={"messages": [HI]}),
        await client.delete(some),
    ):
        error = await _error(response, 404)
        assert error["code"] == "conversations_disabled"
        assert "GENESIS_CONVERSATION_TTL_SECONDS" in error["message"]


async def test_create_get_append_delete(client: Client) -> None:
    empty = await _create(client)
    assert empty["object"] == "conversation"
    assert (empty["message_count"], empty["total_chars"], empty["messages"]) == (0, 0, [])
    assert empty["expires_at"] == empty["updated_at"] + 60

    parts = {"role": "system", "content": [{"type": "text", "text": "be kind"}], "name": "ops"}
    created = await _create(client, json={"messages": [parts, HI]})
    path = f"{BASE}/{created['id']}"
    assert created["messages"] == [parts, HI]
    assert (created["message_count"], created["total_chars"]) == (2, 9)

    response = await client.post(
        f"{path}/messages", json={"messages": [{"role": "assistant", "content": "hello"}]}
    )
    assert response.status_code == 200
    appended = await response.get_json()
    assert [m["role"] for m in appended["messages"]] == ["system", "user", "assistant"]
    assert appended["total_chars"] == 14
    assert await (await client.get(path)).get_json() == appended

    deleted = await client.delete(path)
    assert await deleted.get_json() == {
        "id": created["id"],
        "object": "conversation.deleted",
        "deleted": True,
    }
    assert (await _error(await client.get(path), 404))["code"] == "conversation_not_found"
    assert (await client.delete(path)).status_code == 404
    gone = await client.post(f"{path}/messages", json={"messages": [HI]})
    assert (await _error(gone, 404))["param"] == "conversation_id"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": None}]}, "messages.0.content"),
        (
            {"messages": [{"role": "user", "content": "x", "tool_calls": []}]},
            "messages.0.tool_calls",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages.0.content",
        ),
        ({"messages": [{"role": "user", "content": "x", "name": ""}]}, "messages.0.name"),
        ({"messages": {"role": "user"}}, "messages"),
        ({"title": "x"}, "title"),
    ],
)
async def test_create_validates_every_field(
    client: Client, body: dict[str, Any], param: str
) -> None:
    error = await _error(await client.post(BASE, json=body), 400)
    assert error["code"] == "invalid_value"
    # A union's branch is named after the field: `messages.0.content.str`.
    assert error["param"].startswith(param)


async def test_append_needs_messages_and_valid_json(client: Client) -> None:
    path = f"{BASE}/{(await _create(client))['id']}/messages"
    assert (await _error(await client.post(path, json={"messages": []}), 400))[
        "param"
    ] == "messages"
    assert (await _error(await client.post(path, data=b""), 400))["code"] == "invalid_json"
    assert (await _error(await client.post(BASE, data=b"{"), 400))["code"] == "invalid_json"


@pytest.mark.parametrize("suffix", ["", "/messages"])
@pytest.mark.parametrize("bad", ["nope", "conv_" + "G" * 32, "conv_{alice}"])
async def test_malformed_ids_are_refused_before_any_store(
    client: Client, suffix: str, bad: str
) -> None:
    path = f"{BASE}/{bad}{suffix}"
    responses = [await client.post(path, json={"messages": [HI]})]
    if not suffix:
        responses = [await client.get(path), await client.delete(path)]
    for response in responses:
        error = await _error(response, 400)
        assert error["param"] == "conversation_id"


async def test_caps_refuse_a_whole_write_and_keep_the_conversation(client: Client) -> None:
    over = await client.post(BASE, json={"messages": [HI] * 5})
    assert "GENESIS_CONVERSATION_MAX_MESSAGES" in (await _error(over, 400))["message"]
    created = await _create(client, json={"messages": [HI, HI, HI]})
    path = f"{BASE}/{created['id']}"
    too_many = await client.post(f"{path}/messages", json={"messages": [HI, HI]})
    assert (await _error(too_many, 400))["code"] == "conversation_too_many_messages"
    too_long = await client.post(
        f"{path}/messages", json={"messages": [{"role": "user", "content": "x" * 15}]}
    )
    error = await _error(too_long, 413)
    assert error["code"] == "conversation_too_large"
    assert "GENESIS_CONVERSATION_MAX_CHARS" in error["message"]
    kept = await (await client.get(path)).get_json()
    assert kept["messages"] == created["messages"], "a refused append adds nothing"
    fits = await client.post(
        f"{path}/messages", json={"messages": [{"role": "user", "content": "x" * 14}]}
    )
    assert (await fits.get_json())["total_chars"] == 20


async def test_a_conversation_belongs_to_the_key_that_made_it(tmp_path: Path) -> None:
    keys, alice, bob = _keys(tmp_path)
    client = create_app(_settings(api_keys_file=keys)).test_client()
    created = await _create(client, json={"messages": [HI]}, headers=alice)
    path = f"{BASE}/{created['id']}"
    assert (await _error(await client.get(path, headers=bob), 404))["code"] == (
        "conversation_not_found"
    )
    await _error(await client.post(f"{path}/messages", json={"messages": [HI]}, headers=bob), 404)
    await _error(await client.delete(path, headers=bob), 404)
    assert (await _error(await client.get(path), 401))["code"] == "missing_api_key"
    mine = await (await client.get(path, headers=alice)).get_json()
    assert mine["messages"] == [HI], "bob's attempts changed nothing"
    assert (await client.delete(path, headers=alice)).status_code == 200


async def test_the_openapi_document_describes_the_routes(tmp_path: Path) -> None:
    keys, _, _ = _keys(tmp_path)
    app = create_app(_settings(api_keys_file=keys))
    document = await (await app.test_client().get("/openapi.json")).get_json()
    paths = document["paths"]
    assert set(paths[BASE]) == {"post"}
    assert set(paths[f"{BASE}/{{conversation_id}}"]) == {"get", "delete"}
    append = paths[f"{BASE}/{{conversation_id}}/messages"]["post"]
    assert {"200", "400", "401", "404", "413", "503"} <= set(map(str, append["responses"]))
    assert append["security"] == [{"apiKey": []}]
    assert "201" in map(str, paths[BASE]["post"]["responses"])
    ok = append["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["title"] == "ConversationObject"
    assert append["requestBody"]["required"] is True
    (parameter,) = append["parameters"]
    assert parameter["schema"]["pattern"] == ID_PATTERN


# -- on a real Redis, shared by two app instances -----------------------------------------------


@pytest.mark.integration
async def test_replicas_share_conversations_with_ttls_renewed_on_write(
    redis_server: RedisServer,
) -> None:
    settings = _settings(redis_server, ttl=30)
    one, two = create_app(settings), create_app(settings)
    async with one.test_app(), two.test_app():
        created = await _create(one.test_client(), json={"messages": [HI]})
        meta, listed = conversation_keys("anonymous", created["id"])
        assert meta == f"genesis:conv:{{anonymous}}:{created['id']}"
        for key in (meta, listed):
            redis_server.command("EXPIRE", key, 5)
        path = f"{BASE}/{created['id']}"
        reply = {"role": "assistant", "content": "hello from two"}
        appended = await two.test_client().post(f"{path}/messages", json={"messages": [reply]})
        assert appended.status_code == 200
        for key in (meta, listed):
            ttl = redis_server.command("TTL", key)
            assert isinstance(ttl, int)
            assert 25 < ttl <= 30, "the write renewed both keys' TTL"
        seen = await (await one.test_client().get(path)).get_json()
        assert seen["messages"] == [HI, reply]
        assert seen["total_chars"] == 16
        assert seen["created_at"] == created["created_at"]
        assert (await two.test_client().delete(path)).status_code == 200
        assert redis_server.command("EXISTS", meta, listed) == 0
        assert (await one.test_client().get(path)).status_code == 404


@pytest.mark.integration
async def test_the_cap_holds_under_concurrent_appends_from_two_replicas(
    redis_server: RedisServer,
) -> None:
    settings = _settings(redis_server, conversation_max_messages=12)
    one, two = create_app(settings), create_app(settings)
    async with one.test_app(), two.test_app():
        created = await _create(one.test_client(), json={"messages": [HI, HI]})
        path = f"{BASE}/{created['id']}/messages"

        async def append(app: Quart, index: int) -> int:
            message = {"role": "user", "content": f"m{index}"}
            response = await app.test_client().post(path, json={"messages": [message]})
            return response.status_code

        statuses = await asyncio.gather(
            *(append(one if index % 2 else two, index) for index in range(30))
        )
        assert sorted(statuses) == [200] * 10 + [400] * 20
        stored = await (await two.test_client().get(f"{BASE}/{created['id']}")).get_json()
        assert stored["message_count"] == 12
        assert len({m["content"] for m in stored["messages"][2:]}) == 10, (
            "no append lost or doubled"
        )
        _, listed = conversation_keys("anonymous", created["id"])
        assert redis_server.command("LLEN", listed) == 12


@pytest.mark.integration
async def test_on_redis_caps_and_unknown_ids_answer_as_in_process(
    redis_server: RedisServer,
) -> None:
    app = create_app(_settings(redis_server, conversation_max_chars=5))
    async with app.test_app():
        client = app.test_client()
        long = {"messages": [{"role": "user", "content": "x" * 6}]}
        assert (await _error(await client.post(BASE, json=long), 413))["code"] == (
            "conversation_too_large"
        )
        unknown = f"{BASE}/{new_conversation_id()}"
        await _error(await client.post(f"{unknown}/messages", json={"messages": [HI]}), 404)
        assert (await client.delete(unknown)).status_code == 404
    assert redis_server.command("KEYS", "genesis:conv:*") == [], "nothing was written"


@pytest.mark.integration
async def test_a_writer_that_keeps_losing_the_race_is_told_to_retry(
    redis_server: RedisServer,
) -> None:
    # One round only: of writers racing on one conversation, the ones that lose get a 409.
    store = RedisConversations(redis_server.url, 60, CAPS, max_rounds=1)
    try:
        await store.create("alice", "c1", [], EMPTY)
        outcomes = await asyncio.gather(
            *(store.append("alice", "c1", [HI], ConversationSize(1, 1)) for _ in range(3)),
            return_exceptions=True,
        )
        kept = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
        busy = [outcome for outcome in outcomes if isinstance(outcome, APIError)]
        assert kept, "every round lets one writer through"
        assert busy, "three writers racing in one round: some must lose"
        assert len(kept) + len(busy) == 3
        assert {(error.status, error.code) for error in busy} == {(409, "conversation_busy")}
        assert busy[0].headers == {"Retry-After": "1"}
        stored = await store.get("alice", "c1")
        assert stored is not None
        assert stored.size.messages == len(kept)
    finally:
        await store.aclose()


@pytest.mark.integration
async def test_an_unreachable_redis_is_a_503(redis_server: RedisServer) -> None:
    app = create_app(_settings(redis_server))
    async with app.test_app():
        client = app.test_client()
        created = await _create(client)
        redis_server.stop()
        path = f"{BASE}/{created['id']}"
        for response in (
            await client.post(BASE),
            await client.get(path),
            await client.post(f"{path}/messages", json={"messages": [HI]}),
            await client.delete(path),
        ):
            error = await _error(response, 503)
            assert error["code"] == "conversations_unavailable"
            assert response.headers["Retry-After"] == "1"


# -- a real `genesis serve` --------------------------------------------------------------------


@pytest.mark.integration
def test_a_real_server_keeps_conversations_on_redis_per_key(
    genesis_server: GenesisFactory, redis_server: RedisServer, tmp_path: Path
) -> None:
    keys, alice, bob = _keys(tmp_path)
    server = genesis_server(
        {
            "GENESIS_REDIS_URL": redis_server.url,
            "GENESIS_API_KEYS_FILE": str(keys),
            "GENESIS_CONVERSATION_TTL_SECONDS": "120",
            "GENESIS_CONVERSATION_MAX_MESSAGES": "3",
        }
    )
    with httpx.Client(base_url=server.url, timeout=10) as http:
        created = http.post(BASE, headers=alice, json={"messages": [HI]})
        assert created.status_code == 201
        conversation = created.json()
        path = created.headers["Location"]
        reply = {"role": "assistant", "content": "hello"}
        appended = http.post(f"{path}/messages", headers=alice, json={"messages": [reply]})
        assert appended.json()["messages"] == [HI, reply]
        over = http.post(f"{path}/messages", headers=alice, json={"messages": [HI, HI]})
        assert over.status_code == 400
        assert "GENESIS_CONVERSATION_MAX_MESSAGES" in over.json()["error"]["message"]
        assert http.get(path, headers=bob).status_code == 404
        assert http.get(path).status_code == 401
        shown = http.get(path, headers=alice).json()
        assert shown["id"] == conversation["id"]
        assert shown["message_count"] == 2
        assert http.delete(path, headers=alice).json()["deleted"] is True
        assert http.get(path, headers=alice).status_code == 404

    alone = genesis_server({"GENESIS_CONVERSATION_TTL_SECONDS": "60"})
    with httpx.Client(base_url=alone.url, timeout=10) as http:
        assert http.post(BASE).status_code == 201
    assert "conversations are kept in-process: correct for one instance only" in (
        alone.log_path.read_text()
    )
