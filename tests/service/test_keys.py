"""The keys file format, new keys, and lookup of a presented key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from genesis.service.keys import (
    KEY_PREFIX,
    APIKey,
    KeyRing,
    KeysFileError,
    hash_key,
    key_line,
    new_key,
    parse_line,
)

KEY = "gsk_test-key-for-parsing-0123456789"
HEX = hashlib.sha256(KEY.encode()).hexdigest()


def test_new_keys_are_prefixed_random_and_long() -> None:
    keys = {new_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert key.startswith(KEY_PREFIX)
        # 32 random bytes, URL-safe base64: 43 characters after the prefix.
        assert len(key) == len(KEY_PREFIX) + 43
        assert key[len(KEY_PREFIX) :].replace("-", "").replace("_", "").isalnum()


def test_key_line_is_the_contract_format() -> None:
    assert key_line("alice", KEY) == f"alice:sha256:{HEX}"
    assert KEY not in key_line("alice", KEY)
    with pytest.raises(ValueError, match="invalid key name"):
        key_line("no spaces", KEY)
    with pytest.raises(ValueError, match="invalid key name"):
        key_line("a:b", KEY)


def test_plain_line_allows_every_model_and_uses_service_limits() -> None:
    entry = parse_line(f"alice:sha256:{HEX}", "line 1")
    assert entry == APIKey("alice", bytes.fromhex(HEX))
    assert entry.allows("any-model")
    assert entry.rpm is None
    assert entry.tpm is None


def test_options_restrict_models_and_set_own_limits() -> None:
    entry = parse_line(f"  batch:sha256:{HEX} models=gpt-4o-mini,llama3:8b rpm=600 tpm=0  ", "x")
    assert entry is not None
    assert entry.models == frozenset({"gpt-4o-mini", "llama3:8b"})
    assert entry.allows("llama3:8b")
    assert not entry.allows("gpt-4o")
    assert (entry.rpm, entry.tpm) == (600, 0)
    star = parse_line(f"any:sha256:{HEX} models=a,*", "x")
    assert star is not None
    assert star.models is None


@pytest.mark.parametrize("line", ["", "   ", "# a comment", "   # indented comment"])
def test_blank_lines_and_comments_are_skipped(line: str) -> None:
    assert parse_line(line, "x") is None


def test_trailing_comment_is_ignored() -> None:
    entry = parse_line(f"alice:sha256:{HEX}  # laptop", "x")
    assert entry is not None
    assert entry.name == "alice"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (KEY, "a raw key does not belong here"),
        (f"bad name:sha256:{HEX}", "expected NAME:sha256:HEX"),
        (f"-bad:sha256:{HEX}", "valid NAME"),
        (f"alice:md5:{HEX}", "only sha256"),
        ("alice:sha256:abc", "64 lowercase hex"),
        (f"alice:sha256:{HEX.upper()}", "64 lowercase hex"),
        (f"alice:sha256:{HEX} colour=blue", "unknown option"),
        (f"alice:sha256:{HEX} models", "unknown option"),
        (f"alice:sha256:{HEX} rpm=1 rpm=2", "given twice"),
        (f"alice:sha256:{HEX} rpm=-1", "whole number"),
        (f"alice:sha256:{HEX} tpm=lots", "whole number"),
        (f"alice:sha256:{HEX} models=,", "at least one model"),
    ],
)
def test_malformed_lines_name_the_line_never_the_content(line: str, problem: str) -> None:
    with pytest.raises(KeysFileError, match=problem) as raised:
        KeyRing.from_lines(["# keys", "", line], source="keys.txt")
    message = str(raised.value)
    assert message.startswith("keys.txt line 3:")
    assert KEY not in message
    assert HEX not in message


def test_duplicate_names_and_keys_are_refused() -> None:
    other = hash_key("another").hex()
    with pytest.raises(KeysFileError, match="line 2: name 'alice' already used on line 1"):
        KeyRing.from_lines([f"alice:sha256:{HEX}", f"alice:sha256:{other}"])
    with pytest.raises(KeysFileError, match="line 2: the same key is already on line 1"):
        KeyRing.from_lines([f"alice:sha256:{HEX}", f"bob:sha256:{HEX}"])


def test_identify_finds_the_entry_of_the_presented_key() -> None:
    bob = new_key()
    ring = KeyRing.from_lines([key_line("alice", KEY), key_line("bob", bob)])
    assert len(ring) == 2
    found = ring.identify(bob)
    assert found is not None
    assert found.name == "bob"
    assert ring.identify(KEY + "x") is None
    assert ring.identify("") is None


def test_repr_of_an_entry_shows_no_digest() -> None:
    entry = parse_line(f"alice:sha256:{HEX}", "x")
    assert HEX not in repr(entry)
    assert str(bytes.fromhex(HEX)) not in repr(entry)


def test_load_reads_a_file_and_reports_unreadable_ones(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# team\n{key_line('alice', KEY)}\n\n")
    assert [key.name for key in KeyRing.load(path).keys] == ["alice"]
    with pytest.raises(KeysFileError, match="cannot read"):
        KeyRing.load(tmp_path / "missing")
    path.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(KeysFileError, match="not UTF-8"):
        KeyRing.load(path)


def test_cli_prints_the_key_then_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    from genesis.cli import main

    assert main(["keys", "new", "batch", "--models", "gpt-4o-mini,llama3:8b"]) == 0
    out, err = capsys.readouterr()
    key, line = out.splitlines()
    assert key.startswith(KEY_PREFIX)
    assert line == f"{key_line('batch', key)} models=gpt-4o-mini,llama3:8b"
    ring = KeyRing.from_lines([line])
    found = ring.identify(key)
    assert found is not None
    assert found.models == frozenset({"gpt-4o-mini", "llama3:8b"})
    assert "GENESIS_API_KEYS_FILE" in err
    assert key not in err


@pytest.mark.parametrize("argv", [["bad name"], ["alice", "--models", "a b"]])
def test_cli_refuses_names_and_models_the_file_could_not_hold(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from genesis.cli import main

    assert main(["keys", "new", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("genesis keys new:")
