"""Watch every log a `genesis serve` or `genesis worker` process writes in the run for secrets.

What counts as a secret: any value a test gave the service as a secret setting (the upstream
key, a Redis password, the content of a `*_FILE` secret), anything a test `remember`s, and
anything shaped like a genesis API key (`gsk_...`): no key — valid, unknown or revoked — may
ever reach a log, and the service only ever sees keys in `Authorization` headers.

The session-wide check lives in harness/plugin.py (`no_secret_in_any_log`): it fails the run
naming the log, the line number and which secret, never printing the secret itself.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# genesis.service.keys.KEY_PREFIX + token_urlsafe(32); shorter tails are not real keys.
API_KEY_SHAPE = re.compile(r"gsk_[A-Za-z0-9_\-]{20,}")
_SECRET_SETTING = re.compile(r"^GENESIS_\w*(API_KEY|SECRET|PASSWORD|TOKEN)$")
_SECRET_FILE = re.compile(r"^GENESIS_\w*(API_KEY|SECRET|PASSWORD|TOKEN|REDIS_URL)_FILE$")
# Too short to mean anything in a log ("x", "unused"); such values are not worth a finding.
_MIN_LENGTH = 8


@dataclass(frozen=True)
class Leak:
    log: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.log}:{self.line}: {self.what}"


class SecretWatch:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, str] = {}
        self._logs: list[Path] = []

    def remember(self, value: str, what: str = "a secret") -> None:
        if len(value) >= _MIN_LENGTH:
            with self._lock:
                self._secrets.setdefault(value, what)

    def watch(self, log: Path, settings: Mapping[str, str]) -> None:
        """Watch `log`, and remember the secrets among the `settings` its process was given."""
        with self._lock:
            self._logs.append(log)
        for name, value in settings.items():
            if _SECRET_SETTING.match(name):
                self.remember(value, name)
            elif name == "GENESIS_REDIS_URL":
                password = urlsplit(value).password
                if password:
                    self.remember(password, "the password in GENESIS_REDIS_URL")
            elif _SECRET_FILE.match(name):
                with contextlib.suppress(OSError):
                    self.remember(Path(value).read_text().strip(), f"the content of {name}")

    @property
    def logs(self) -> list[Path]:
        with self._lock:
            return list(self._logs)

    def leaks(self) -> list[Leak]:
        with self._lock:
            secrets = dict(self._secrets)
            logs = list(dict.fromkeys(self._logs))
        found: list[Leak] = []
        for log in logs:
            try:
                text = log.read_text(errors="replace")
            except FileNotFoundError:
                continue
            for number, line in enumerate(text.splitlines(), 1):
                found += [
                    Leak(log, number, what) for value, what in secrets.items() if value in line
                ]
                if API_KEY_SHAPE.search(line):
                    found.append(Leak(log, number, "a genesis API key (gsk_...)"))
        return found


WATCH = SecretWatch()
