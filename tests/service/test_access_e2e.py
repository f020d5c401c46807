"""Auth and rate limits on real `genesis serve` processes sharing one real Redis, through the
official openai SDK; the key never reaches a log."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

from genesis.service.settings import OFFLINE_MODEL
from harness.genesis import GenesisFactory, GenesisServer, serve_to_exit
from harness.redis import RedisServer

pytestmark = pytest.mark.integration

PROMPT = [{"role": "user", "content": "Tell me about rate limits"}]


def new_key(name: str, *extra: str) -> tuple[str, str]:
    """`genesis keys new NAME`, as an operator runs it: the key, and its keys file line."""
    result = subprocess.run(
        [sys.executable, "-m", "genesis", "keys", "new", name, *extra],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    key, line = result.stdout.splitlines()
    assert "GENESIS_API_KEYS_FILE" in result.stderr
    return key, line


def sdk(server: GenesisServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=10)


def chat(client: openai.OpenAI) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(model=OFFLINE_MODEL, messages=PROMPT)  # type: ignore[arg-type]


def get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def rejections(server: GenesisServer, limit: str) -> float:
    with urllib.request.urlopen(server.metrics_url, timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("genesis_rate_limit_rejections_total{") and f'limit="{limit}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def assert_no_secret_in_logs(servers: list[GenesisServer], *secrets: str) -> None:
    for server in servers:
        log = server.log_path.read_text()
        assert log, f"{server.name} wrote no log"
        for secret in secrets:
            assert secret not in log, f"a key reached the log of {server.name}"


def test_keys_limits_and_errors_through_the_openai_sdk(
    genesis_server: GenesisFactory, redis_server: RedisServer, tmp_path: Path
) -> None:
    alice, alice_line = new_key("alice")
    robot, robot_line = new_key("robot", "--models", "some-other-model")
    keys = tmp_path / "api-keys"
    keys.write_text(f"# team keys\n{alice_line}\n{robot_line}\n")
    env = {
        "GENESIS_API_KEYS_FILE": str(keys),
        "GENESIS_REDIS_URL": redis_server.url,
        "GENESIS_RATE_LIMIT_RPM": "6",
        "GENESIS_RATE_LIMIT_TPM": "100000",
    }
    servers = [genesis_server(env) for _ in range(3)]
    unknown = "gsk_" + "x" * 43

    # The SDK refuses to send no key at all; a bare HTTP client can.
    request = urllib.request.Request(
        f"{servers[0].url}/v1/chat/completions",
        data=json.dumps({"model": OFFLINE_MODEL, "messages": PROMPT}).encode(),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(request, timeout=5)
    assert missing.value.code == 401
    assert json.loads(missing.value.read())["error"]["code"] == "missing_api_key"
    with pytest.raises(openai.AuthenticationError) as wrong:
        chat(sdk(servers[0], unknown))
    assert wrong.value.code == "invalid_api_key"
    with pytest.raises(openai.PermissionDeniedError) as denied:
        chat(sdk(servers[1], robot))
    assert denied.value.code == "model_not_allowed"
    for path in ("/livez", "/readyz", "/openapi.json"):
        status, _ = get_json(f"{servers[0].url}{path}")
        assert status == 200, path

    # Six requests a minute for alice, counted in Redis whichever replica serves them.
    answered, limited = 0, []
    for attempt in range(12):
        client = sdk(servers[attempt % 3], alice)
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=OFFLINE_MODEL,
                messages=PROMPT,  # type: ignore[arg-type]
            )
        except openai.RateLimitError as error:
            limited.append(error)
            continue
        answered += 1
        assert raw.headers["x-ratelimit-limit-requests"] == "6"
        assert raw.headers["x-ratelimit-remaining-requests"] == str(6 - answered)
        assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
        assert raw.parse().usage is not None
    assert answered == 6
    assert len(limited) == 6
    for error in limited:
        assert error.code == "rate_limit_exceeded"
        assert int(error.response.headers["Retry-After"]) >= 1
        assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
        assert error.response.headers["x-ratelimit-reset-tokens"]
    # The refusals are exported, by whichever replica made them.
    assert sum(rejections(server, "rpm") for server in servers) == 6
    # The refused requests were refunded: the counter in Redis holds exactly the six.
    counters = redis_server.command("KEYS", "genesis:rl:{alice}:requests:*")
    assert isinstance(counters, list)
    assert sum(int(redis_server.command("GET", name)) for name in counters) == 6  # type: ignore[arg-type]

    assert_no_secret_in_logs(servers, alice, robot, unknown)


def test_redis_outage_makes_replicas_unready_and_they_recover(
    genesis_server: GenesisFactory, redis_server: RedisServer, tmp_path: Path
) -> None:
    key, line = new_key("ops")
    keys = tmp_path / "api-keys"
    keys.write_text(line + "\n")
    server = genesis_server(
        {
            "GENESIS_API_KEYS_FILE": str(keys),
            "GENESIS_REDIS_URL": redis_server.url,
            "GENESIS_RATE_LIMIT_RPM": "100",
        }
    )
    client = sdk(server, key)
    chat(client)
    redis_server.stop()
    status, body = get_json(f"{server.url}/readyz")
    assert status == 503
    assert "Redis unreachable" in str(body["checks"])
    with pytest.raises(openai.InternalServerError) as unavailable:
        chat(client)
    assert unavailable.value.status_code == 503
    assert unavailable.value.code == "rate_limiter_unavailable"
    redis_server.start()
    server.wait_ready(server.ready, timeout=15)
    assert chat(client).choices[0].message.content
    assert_no_secret_in_logs([server], key)


def test_malformed_keys_file_stops_start_up_naming_the_line(tmp_path: Path) -> None:
    key, line = new_key("alice")
    keys = tmp_path / "api-keys"
    # The classic mistake: the key itself pasted where its line belongs.
    keys.write_text(f"{line}\n\n{key}\n")
    result = serve_to_exit(
        tmp_path, env={"GENESIS_API_KEYS_FILE": str(keys), "PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 2
    assert "GENESIS_API_KEYS_FILE" in result.stderr
    assert "line 3" in result.stderr
    assert key not in result.stdout + result.stderr


def test_auth_off_is_logged_as_a_warning(genesis_server: GenesisFactory) -> None:
    server = genesis_server()
    log = server.log_path.read_text()
    assert "authentication is off" in log
