"""The exact-match response cache: in-process and on a real Redis, hits, bypass, fail-open."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from genesis.service import Settings, create_app
from genesis.service.cache import CACHE_NAME, cache_directives, cache_key
from genesis.service.keys import key_line, new_key
from genesis.service.schemas import ChatCompletionRequest
from genesis.service.settings import OFFLINE_MODEL
from harness.redis import RedisServer

CHAT = "/v1/chat/completions"
HEADER = "x-genesis-cache"


def body(**extra: object) -> dict[str, object]:
    return {"model": OFFLINE_MODEL, "messages": [{"role": "user", "content": "cache me"}], **extra}


def lookups(result: str) -> float:
    labels = {"cache": CACHE_NAME, "result": result, "track": "stable"}
    return REGISTRY.get_sample_value("genesis_cache_lookups_total", labels) or 0.0


def request(**extra: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(body(**extra))


def test_key_covers_what_shapes_the_answer_and_nothing_else() -> None:
    base = cache_key("alice", request(temperature=0.5))
    assert base == cache_key("alice", request(temperature=0.5, stream=False, user="u-1"))
    assert base.startswith("genesis:cache:{alice}:")
    assert base != cache_key("bob", request(temperature=0.5)), "scoped to the API key"
    assert base != cache_key("alice", request(temperature=0.6))
    assert base != cache_key("alice", request(temperature=0.5, max_tokens=3))
    other = body(messages=[{"role": "user", "content": "cache me!"}], temperature=0.5)
    assert base != cache_key("alice", ChatCompletionRequest.model_validate(other))


def test_cache_control_directives() -> None:
    assert cache_directives(None) == set()
    assert cache_directives("No-Cache, max-age=0 ,no-store") == {"no-cache", "max-age", "no-store"}


async def test_off_by_default() -> None:
    app = create_app(Settings())
    response = await app.test_client().post(CHAT, json=body())
    assert HEADER not in response.headers


async def test_hit_miss_bypass_and_no_store_in_process() -> None:
    app = create_app(Settings(cache_ttl_seconds=60))
    client = app.test_client()
    hits, misses = lookups("hit"), lookups("miss")
    first = await client.post(CHAT, json=body())
    assert first.headers[HEADER] == "miss"
    second = await client.post(CHAT, json=body())
    assert second.headers[HEADER] == "hit"
    assert await second.get_json() == await first.get_json()
    bypass = await client.post(CHAT, json=body(), headers={"Cache-Control": "no-cache"})
    assert bypass.headers[HEADER] == "bypass"
    unstored = await client.post(
        CHAT, json=body(max_tokens=4), headers={"Cache-Control": "no-store"}
    )
    assert unstored.headers[HEADER] == "miss"
    again = await client.post(CHAT, json=body(max_tokens=4))
    assert again.headers[HEADER] == "miss", "no-store kept the answer out"
    stream = await client.post(CHAT, json=body(stream=True))
    assert HEADER not in stream.headers, "streams are never cached"
    assert lookups("hit") - hits == 1
    assert lookups("miss") - misses == 3


async def test_a_hit_costs_a_request_but_no_tokens(tmp_path: Path) -> None:
    key = new_key()
    keys = tmp_path / "keys"
    keys.write_text(key_line("alice", key) + "\n")
    app = create_app(
        Settings(api_keys_file=keys, cache_ttl_seconds=60, rate_limit_rpm=10, rate_limit_tpm=10_000)
    )
    client = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    first = await client.post(CHAT, json=body(), headers=auth)
    used = (await first.get_json())["usage"]["total_tokens"]
    hit = await client.post(CHAT, json=body(), headers=auth)
    assert hit.headers[HEADER] == "hit"
    assert hit.headers["x-ratelimit-remaining-requests"] == "8"
    after = await client.post(CHAT, json=body(max_tokens=1), headers=auth)
    reserved = 10_000 - int(first.headers["x-ratelimit-remaining-tokens"])
    # Only the first answer's tokens count: the hit was settled to zero.
    assert int(after.headers["x-ratelimit-remaining-tokens"]) == 10_000 - used - (reserved + 1)


@pytest.mark.integration
async def test_replicas_share_the_cache_on_redis_and_fail_open(redis_server: RedisServer) -> None:
    settings = Settings(redis_url=redis_server.url, cache_ttl_seconds=30)
    one, two = create_app(settings), create_app(settings)
    async with one.test_app(), two.test_app():
        first = await one.test_client().post(CHAT, json=body())
        assert first.headers[HEADER] == "miss"
        shared = await two.test_client().post(CHAT, json=body())
        assert shared.headers[HEADER] == "hit"
        assert await shared.get_json() == await first.get_json()
        names = redis_server.command("KEYS", "genesis:cache:*")
        assert isinstance(names, list)
        assert len(names) == 1
        ttl = redis_server.command("TTL", names[0])  # type: ignore[arg-type]
        assert isinstance(ttl, int)
        assert 0 < ttl <= 30
        redis_server.stop()
        # The cache is an optimisation: without Redis the answer is computed, not refused.
        down = await one.test_client().post(CHAT, json=body())
        assert down.status_code == 200
        assert down.headers[HEADER] == "miss"
