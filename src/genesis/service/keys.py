"""API keys: the keys file format, new keys, and constant-time lookup of a presented key.

The file (`GENESIS_API_KEYS_FILE`) holds one key per line as `NAME:sha256:HEX`, the SHA-256 of
the key, never the key itself. genesis extends a line with optional, space-separated options
after it, so every plain contract line stays valid::

    # comments and blank lines are ignored
    alice:sha256:3f0a...            # any model, the service-wide rate limits
    batch:sha256:9b1c... models=gpt-4o-mini,llama3:8b rpm=600 tpm=200000

`models=` restricts the key to those models (commas; `*` means any), `rpm=` and `tpm=` replace
the service-wide `GENESIS_RATE_LIMIT_RPM`/`TPM` for this key (0: unlimited).

A plain SHA-256 suffices because keys are 256-bit random tokens, not passwords: there is no
dictionary to try, so a slow, salted hash would add latency to every request and no safety.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

KEY_PREFIX = "gsk_"
HASH_SCHEME = "sha256"
# Names end up in Redis keys (inside a `{...}` hash tag), metrics-free logs and error messages,
# so they are restricted to characters that are safe in all of them.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_HEX = re.compile(r"[0-9a-f]{64}")
_OPTIONS = ("models", "rpm", "tpm")
ANY_MODEL = "*"


class KeysFileError(ValueError):
    """The keys file cannot be used; the message names the line, never its content."""


@dataclass(frozen=True)
class APIKey:
    """One entry of the keys file: who it is, what it may use, and its own limits."""

    name: str
    digest: bytes
    models: frozenset[str] | None = None
    rpm: int | None = None
    tpm: int | None = None

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models

    def __repr__(self) -> str:
        # The digest is not the key, but nothing about a key needs to be in a traceback.
        return f"APIKey(name={self.name!r}, models={self.models!r}, rpm={self.rpm}, tpm={self.tpm})"


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def new_key() -> str:
    """A fresh key: 256 random bits, URL-safe, with a prefix that secret scanners can match."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_line(name: str, key: str) -> str:
    """The keys file line for `key`."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid key name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return f"{name}:{HASH_SCHEME}:{hash_key(key).hex()}"


def _parse_options(words: list[str], where: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for word in words:
        option, sep, value = word.partition("=")
        if not sep or option not in _OPTIONS:
            raise KeysFileError(
                f"{where}: unknown option (expected {', '.join(o + '=' for o in _OPTIONS)})"
            )
        if option in options:
            raise KeysFileError(f"{where}: option {option}= given twice")
        options[option] = value
    return options


def _limit(options: dict[str, str], option: str, where: str) -> int | None:
    if option not in options:
        return None
    value = options[option]
    if not value.isdigit():
        raise KeysFileError(f"{where}: {option}= must be a whole number >= 0")
    return int(value)


def _models(options: dict[str, str], where: str) -> frozenset[str] | None:
    if "models" not in options:
        return None
    models = [model for model in options["models"].split(",") if model]
    if not models:
        raise KeysFileError(f"{where}: models= needs at least one model (or *)")
    return None if ANY_MODEL in models else frozenset(models)


def parse_line(line: str, where: str) -> APIKey | None:
    """One line of the keys file; None for blank lines and comments."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    entry, *words = text.split()
    name, scheme, digest = [*entry.split(":", 2), "", ""][:3]
    # The message never quotes the line: a raw key pasted by mistake must not reach a log.
    if not scheme:
        raise KeysFileError(
            f"{where}: expected NAME:sha256:HEX (a raw key does not belong here; store the "
            "line `genesis keys new NAME` prints)"
        )
    if not _NAME.fullmatch(name):
        raise KeysFileError(f"{where}: expected NAME:sha256:HEX with a valid NAME")
    if scheme != HASH_SCHEME:
        raise KeysFileError(f"{where}: expected NAME:sha256:HEX (only sha256 is supported)")
    if not _HEX.fullmatch(digest):
        raise KeysFileError(f"{where}: expected NAME:sha256:HEX with 64 lowercase hex digits")
    options = _parse_options(words, where)
    return APIKey(
        name=name,
        digest=bytes.fromhex(digest),
        models=_models(options, where),
        rpm=_limit(options, "rpm", where),
        tpm=_limit(options, "tpm", where),
    )


@dataclass(frozen=True)
class KeyRing:
    """The keys a service accepts."""

    keys: tuple[APIKey, ...]

    @classmethod
    def from_lines(cls, lines: Iterable[str], source: str = "keys file") -> KeyRing:
        keys: list[APIKey] = []
        names: dict[str, int] = {}
        digests: dict[bytes, int] = {}
        for number, line in enumerate(lines, start=1):
            where = f"{source} line {number}"
            key = parse_line(line, where)
            if key is None:
                continue
            if key.name in names:
                raise KeysFileError(
                    f"{where}: name {key.name!r} already used on line {names[key.name]}"
                )
            if key.digest in digests:
                raise KeysFileError(
                    f"{where}: the same key is already on line {digests[key.digest]}"
                )
            names[key.name] = digests[key.digest] = number
            keys.append(key)
        return cls(tuple(keys))

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise KeysFileError(f"cannot read {path}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise KeysFileError(f"{path} is not UTF-8 text") from None
        return cls.from_lines(text.splitlines(), source=str(path))

    def identify(self, presented: str) -> APIKey | None:
        """The entry whose hash matches `presented`, comparing every entry in constant time.

        Every digest is compared, match or not, so the time taken says nothing about which
        entry (or which prefix of a digest) came close.
        """
        digest = hash_key(presented)
        found: APIKey | None = None
        for key in self.keys:
            if hmac.compare_digest(key.digest, digest):
                found = key
        return found

    def __len__(self) -> int:
        return len(self.keys)
