"""The Redis harness against a real redis-server: commands, ephemeral default, durable restarts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.plugin import RedisFactory
from harness.redis import RedisError, RedisServer, encode_command

pytestmark = pytest.mark.integration


def test_ping_set_get_over_a_raw_socket(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(64) == b"+PONG\r\n"

    assert redis_server.command("SET", "greeting", "hello") == "OK"
    assert redis_server.command("GET", "greeting") == b"hello"
    assert redis_server.command("INCRBY", "counter", 5) == 5
    assert redis_server.command("GET", "missing") is None


def test_error_replies_raise(redis_server: RedisServer) -> None:
    with pytest.raises(RedisError, match="unknown command"):
        redis_server.command("NOSUCHCOMMAND")


def test_listens_on_loopback_with_the_expected_config(redis_server: RedisServer) -> None:
    config = redis_server.command("CONFIG", "GET", "*")
    assert isinstance(config, list)
    settings = dict(zip(config[::2], config[1::2], strict=True))

    assert settings[b"bind"] == b"127.0.0.1"
    assert settings[b"save"] == b""
    assert settings[b"appendonly"] == b"no"
    assert settings[b"dir"] == str(redis_server.data_dir).encode()


def test_default_server_forgets_everything_on_restart(redis_server: RedisServer) -> None:
    redis_server.command("RPUSH", "jobs", "a", "b")
    port = redis_server.port

    redis_server.restart()

    assert redis_server.port == port
    assert redis_server.command("LLEN", "jobs") == 0
    assert list(redis_server.data_dir.iterdir()) == []


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "sigkill"])
def test_persistent_server_keeps_queued_jobs_across_restart(
    redis_factory: RedisFactory, hard: bool
) -> None:
    redis = redis_factory(persistent=True)
    assert redis.command("CONFIG", "GET", "appendfsync") == [b"appendfsync", b"always"]
    redis.command("RPUSH", "jobs", "job-1", "job-2", "job-3")
    old_pid, port = redis.pid, redis.port

    redis.restart(hard=hard)

    assert redis.pid != old_pid
    assert redis.port == port
    # Redis appends to its AOF before it replies, so even SIGKILL right after the write keeps it.
    # (What `fsync always` adds, surviving a machine crash, cannot be shown on one machine.)
    assert redis.command("LRANGE", "jobs", 0, -1) == [b"job-1", b"job-2", b"job-3"]
    assert redis.restarts == 1
    assert "Ready to accept connections" in redis.log_tail(200)


def test_starting_twice_is_refused(redis_server: RedisServer) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        redis_server.start()


def test_session_server_answers(redis_server_session: RedisServer) -> None:
    key = "test_session_server_answers"
    redis_server_session.command("SET", key, "1")
    assert redis_server_session.command("GET", key) == b"1"
    redis_server_session.command("DEL", key)


def test_two_servers_in_one_test_get_their_own_ports_and_logs(
    redis_factory: RedisFactory, tmp_path: Path
) -> None:
    first, second = redis_factory(), redis_factory()
    first.command("SET", "k", "first")

    assert first.port != second.port
    assert second.command("GET", "k") is None
    assert {p.name for p in tmp_path.glob("*.log")} == {"redis.log", "redis-1.log"}


def test_resp_encoding_is_binary_safe() -> None:
    assert encode_command("SET", b"k\r\n", 7) == b"*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$1\r\n7\r\n"
