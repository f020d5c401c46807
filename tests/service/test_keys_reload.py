"""Keys rotate without a restart: LiveKeyRing on real files, then a real `genesis serve`."""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import openai
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from genesis.observability import ServiceMetrics
from genesis.observability._instruments import instruments_for
from genesis.service.keys import KeyRing, key_line, new_key
from genesis.service.keys_reload import LiveKeyRing
from harness.genesis import GenesisFactory, GenesisServer

from .test_access_e2e import assert_no_secret_in_logs, chat, sdk


def _replace(path: Path, text: str) -> None:
    """Write a new version the way a Secret update or `mv` does: a new inode, then rename."""
    staged = path.with_suffix(".new")
    staged.write_text(text)
    os.replace(staged, path)


def _reloads(registry: CollectorRegistry, result: str) -> float:
    value = registry.get_sample_value(
        "genesis_api_keys_reloads_total", {"result": result, "track": "stable"}
    )
    return value or 0.0


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def _live(path: Path, registry: CollectorRegistry, *, limits: bool = True) -> LiveKeyRing:
    metrics = ServiceMetrics(instruments_for(registry), "stable")
    return LiveKeyRing(KeyRing.load(path), path, metrics, per_key_limits_enforced=limits)


def test_a_changed_file_is_applied_whole(tmp_path: Path, registry: CollectorRegistry) -> None:
    alice, bob = new_key(), new_key()
    path = tmp_path / "keys"
    path.write_text(key_line("alice", alice) + "\n")
    live = _live(path, registry)
    assert live.refresh() is False  # nothing changed yet

    _replace(path, key_line("bob", bob) + " rpm=5\n")
    with capture_logs() as logs:
        assert live.refresh() is True
    assert live.ring.identify(alice) is None
    found = live.ring.identify(bob)
    assert found is not None
    assert found.rpm == 5
    assert _reloads(registry, "applied") == 1
    [line] = [entry for entry in logs if entry["event"] == "api keys reloaded"]
    assert (line["added"], line["removed"], line["keys"]) == (["bob"], ["alice"], 1)
    assert live.refresh() is False  # the same version is not applied twice


def test_an_edit_in_place_is_noticed(tmp_path: Path, registry: CollectorRegistry) -> None:
    alice, bob = new_key(), new_key()
    path = tmp_path / "keys"
    path.write_text(key_line("alice", alice) + "\n")
    live = _live(path, registry)
    with path.open("a") as file:  # same inode: the size and mtime change
        file.write(key_line("bob", bob) + "\n")
    assert live.refresh() is True
    assert live.ring.identify(alice) is not None
    assert live.ring.identify(bob) is not None


def test_a_secret_volume_update_is_noticed(tmp_path: Path, registry: CollectorRegistry) -> None:
    """The kubelet's atomic writer: the file is a symlink into `..data`, itself a symlink to a
    timestamped directory; an update writes a new directory and swaps `..data` by rename."""
    alice, bob = new_key(), new_key()
    mount = tmp_path / "api-keys-mount"
    first = mount / "..2026_12_04_01"
    first.mkdir(parents=True)
    (first / "api-keys").write_text(key_line("alice", alice) + "\n")
    (mount / "..data").symlink_to(first.name)
    (mount / "api-keys").symlink_to("..data/api-keys")
    live = _live(mount / "api-keys", registry)

    second = mount / "..2026_12_04_02"
    second.mkdir()
    (second / "api-keys").write_text(key_line("bob", bob) + "\n")
    (mount / "..data_tmp").symlink_to(second.name)
    os.replace(mount / "..data_tmp", mount / "..data")
    assert live.refresh() is True
    assert live.ring.identify(bob) is not None
    assert live.ring.identify(alice) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("alice:sha256:nothex\n", "line 1: expected NAME:sha256:HEX with 64 lowercase hex"),
        ("# every key revoked by mistake\n", "holds no keys"),
        (None, "cannot read"),
    ],
    ids=["malformed", "empty", "missing"],
)
def test_a_bad_new_version_is_refused_and_the_old_keys_stay(
    tmp_path: Path, registry: CollectorRegistry, text: str | None, reason: str
) -> None:
    alice = new_key()
    path = tmp_path / "keys"
    path.write_text(key_line("alice", alice) + "\n")
    live = _live(path, registry)

    if text is None:
        path.unlink()
    else:
        _replace(path, text)
    with capture_logs() as logs:
        assert live.refresh() is False
        assert live.refresh() is False  # reported once per version, not once per look
    assert live.ring.identify(alice) is not None
    assert _reloads(registry, "refused") == 1
    [line] = logs
    assert line["log_level"] == "error"
    assert reason in line["error"]
    assert "nothex" not in line["error"]  # the message names the line, never its content

    # The next good version applies.
    bob = new_key()
    _replace(path, key_line("bob", bob) + "\n")
    assert live.refresh() is True
    assert live.ring.identify(bob) is not None


def test_new_per_key_limits_without_a_limiter_warn(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    path = tmp_path / "keys"
    path.write_text(key_line("alice", new_key()) + "\n")
    live = _live(path, registry, limits=False)
    _replace(path, key_line("alice", new_key()) + " tpm=1000\n")
    with capture_logs() as logs:
        assert live.refresh() is True
    assert [entry["log_level"] for entry in logs] == ["info", "warning"]
    assert "after a restart" in logs[1]["event"]


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the service did not pick up the new keys file"
        time.sleep(0.1)


def _accepted(server: GenesisServer, key: str) -> bool:
    try:
        chat(sdk(server, key))
    except openai.AuthenticationError:
        return False
    return True


@pytest.mark.integration
def test_genesis_serve_rotates_keys_without_a_restart(
    genesis_server: GenesisFactory, tmp_path: Path
) -> None:
    alice, bob = new_key(), new_key()
    path = tmp_path / "api-keys"
    path.write_text(key_line("alice", alice) + "\n")
    server = genesis_server(
        {"GENESIS_API_KEYS_FILE": str(path), "GENESIS_API_KEYS_RELOAD_SECONDS": "0.2"}
    )
    pid = server.pid
    assert _accepted(server, alice)
    assert not _accepted(server, bob)

    # Rotate: bob added, then alice revoked, each picked up by the running process.
    _replace(path, key_line("alice", alice) + "\n" + key_line("bob", bob) + "\n")
    _until(lambda: _accepted(server, bob))
    _replace(path, key_line("bob", bob) + "\n")
    _until(lambda: not _accepted(server, alice))

    # A broken edit (a raw key pasted in) is refused: bob keeps working.
    _replace(path, f"{bob}\n")
    _until(lambda: "api keys file refused" in server.log_path.read_text())
    assert _accepted(server, bob)
    assert server.pid == pid
    assert server.proc.poll() is None

    with urllib.request.urlopen(server.metrics_url, timeout=5) as answer:
        metrics = answer.read().decode()
    assert 'genesis_api_keys_reloads_total{result="applied",track="stable"} 2.0' in metrics
    assert 'genesis_api_keys_reloads_total{result="refused",track="stable"} 1.0' in metrics
    assert_no_secret_in_logs([server], alice, bob)
