"""Start real server processes on loopback, wait until they answer, stop them cleanly.

Every server a test starts goes through `ManagedProcess`, so logs, readiness and
teardown behave the same for Redis, Prometheus, the genesis service and the rest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_binary(name: str, package: str) -> str:
    """Path of `name`, or skip the test naming the Debian package that provides it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"{name} not found: install the Debian package '{package}'"
            f" (apt-get install -y {package})"
        )
    return path


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when GET `url` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return 200 <= status < 300
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def tcp_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class ProcessFailed(RuntimeError):
    """A managed process exited or never became ready; the message carries its log tail."""


class ManagedProcess:
    """One real process with its log in a file, a readiness probe and a graceful stop."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, probe: Callable[[], bool], timeout: float = 20.0) -> ManagedProcess:
        """Poll `probe` until it returns True; fail with the log tail if the process dies first."""
        assert self.proc is not None, f"{self.name} was not started"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ProcessFailed(
                    f"{self.name} exited with code {self.proc.returncode} before it was ready;"
                    f" last log lines:\n{self.log_tail()}"
                )
            if probe():
                return self
            time.sleep(0.05)
        raise ProcessFailed(
            f"{self.name} was not ready after {timeout:.0f}s; last log lines:\n{self.log_tail()}"
        )

    def signal(self, signum: int) -> None:
        assert self.proc is not None, f"{self.name} was not started"
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.wait(timeout=timeout)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        return self.proc.returncode

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(
    process: ManagedProcess, probe: Callable[[], bool], timeout: float = 20.0
) -> Iterator[ManagedProcess]:
    """Start `process`, wait for `probe`, and always stop it afterwards."""
    process.start()
    try:
        process.wait_ready(probe, timeout=timeout)
        yield process
    finally:
        process.stop()
