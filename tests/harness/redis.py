"""A real `redis-server` (Debian package `redis-server`) on 127.0.0.1, owned by one test.

Nothing stands in for Redis: the service's cache, job queue and rate limits are tested against
the real server. This module starts it on a free port in a tmp dir, ephemeral by default
(`--save '' --appendonly no`) or durable (AOF with `fsync always`) so tests can restart or
kill it while work is queued and see what survives. Readiness and the small `command()`
client speak raw RESP over a socket, so the harness needs neither `redis-cli` nor a client
library.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Sequence
from pathlib import Path

from harness.processes import ManagedProcess, free_port

RespValue = str | int | bytes | list["RespValue"] | None


class RedisError(RuntimeError):
    """Redis answered a command with an error reply (`-ERR ...`)."""


def encode_command(*args: str | bytes | int) -> bytes:
    """A RESP array of bulk strings, the form every Redis command takes on the wire."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rb")

    def close(self) -> None:
        self._file.close()

    def _line(self) -> bytes:
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"Redis closed the connection mid-reply (read {line!r})")
        return line[:-2]

    def read(self) -> RespValue:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None
            data = self._file.read(length + 2)
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.read() for _ in range(count)]
        raise ConnectionError(f"unexpected RESP reply {line!r}")


def command(
    port: int, *args: str | bytes | int, host: str = "127.0.0.1", timeout: float = 5.0
) -> RespValue:
    """Send one command on a fresh connection and return the parsed reply."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(encode_command(*args))
        reader = _Reader(sock)
        try:
            return reader.read()
        finally:
            reader.close()


def ping(port: int, host: str = "127.0.0.1") -> bool:
    """True once Redis answers PING with +PONG (not while it is still loading its data)."""
    try:
        return command(port, "PING", host=host, timeout=1.0) == "PONG"
    except (OSError, ConnectionError, RedisError):
        return False


class RedisServer:
    """One redis-server process; `restart()` keeps its port and data directory."""

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str = "redis-server",
        persistent: bool = False,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        name: str = "redis",
    ) -> None:
        self.name = name
        self.binary = binary
        self.persistent = persistent
        self.port = port if port is not None else free_port()
        self.data_dir = workdir / f"{name}-data"
        self.log_dir = workdir
        self.extra_args = list(extra_args)
        self._process: ManagedProcess | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        durability = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persistent
            else ["--appendonly", "no"]
        )
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            *durability,
            # Logs go to stdout, which ManagedProcess appends to one file across restarts.
            "--daemonize",
            "no",
            *self.extra_args,
        ]

    @property
    def is_running(self) -> bool:
        proc = self._process.proc if self._process is not None else None
        return proc is not None and proc.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.is_running:
            raise RuntimeError(f"{self.name} is already running on port {self.port}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        process = ManagedProcess(self.name, self.argv(), log_dir=self.log_dir, cwd=self.data_dir)
        self._process = process
        process.start()
        process.wait_ready(lambda: ping(self.port), timeout=timeout)
        return self

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM: Redis flushes its AOF and exits (SIGKILL after `grace`)."""
        if self._process is None:
            return None
        return self._process.stop(grace=grace)

    def kill(self) -> None:
        """SIGKILL, as in a crash or an OOM kill: only what was fsynced survives."""
        if self._process is None:
            return
        self._process.signal(signal.SIGKILL)
        self._process.wait(timeout=10)

    def restart(self, *, hard: bool = False, timeout: float = 10.0) -> RedisServer:
        """Stop (gracefully, or SIGKILL when `hard`) and start again on the same port and dir."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.restarts += 1
        return self.start(timeout=timeout)

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._process.pid

    def command(self, *args: str | bytes | int) -> RespValue:
        return command(self.port, *args)

    def ping(self) -> bool:
        return ping(self.port)

    def log_tail(self, lines: int = 40) -> str:
        return self._process.log_tail(lines) if self._process is not None else "(not started)"

    def log_tails(self, lines: int = 40) -> list[tuple[str, str]]:
        return [(self.name, self.log_tail(lines))] if self._process is not None else []

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["RedisError", "RedisServer", "command", "encode_command", "ping"]
