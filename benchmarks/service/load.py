"""The load: an asyncio HTTP/1.1 client on loopback, keep-alive, bounded in count and time.

Two shapes, the same for every target:

- **paced** (open loop): requests start on a fixed schedule, `rate` per second, alternating a
  plain completion and a streamed one, whatever the target's speed. Well below every target's
  capacity, so latency is the target's own work plus the network hops, not queueing: this is
  where added latency (p50/p99) and streaming time to first token are read.
- **saturating** (closed loop): `concurrency` connections each send the next plain completion
  as soon as the last one answered, until `count` answered or `seconds` passed: throughput,
  and the CPU the target's processes spent per request.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CHAT = "/v1/chat/completions"
MODEL = "gpt-4o-mini"
_MESSAGES = [{"role": "user", "content": "How do canary deploys work?"}]
PLAIN_BODY = json.dumps({"model": MODEL, "messages": _MESSAGES, "max_tokens": 64}).encode()
STREAM_BODY = json.dumps(
    {"model": MODEL, "messages": _MESSAGES, "max_tokens": 64, "stream": True}
).encode()

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Target:
    """Something that answers `POST /v1/chat/completions` at `url`."""

    name: str
    url: str
    api_key: str
    # Processes whose CPU counts as the target's (server, workers; Redis counted apart).
    pids: Callable[[], list[int]] = list
    extra_pids: Callable[[], dict[str, list[int]]] = dict


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and every descendant alive now."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time these processes have used so far (threads included)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _TICKS


class BadAnswerError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection: a request, then its whole response, then the next.

    A load generator of its own rather than httpx: httpx's connection pool cost 1.4-3.5 ms of
    CPU per request here at 32 connections, more than the stub's whole answer, so at saturation
    the client would be what is measured. This one costs tens of microseconds; it speaks just
    enough HTTP for these answers (Content-Length or chunked bodies).
    """

    def __init__(self, target: Target) -> None:
        host_port = target.url.removeprefix("http://")
        host, _, port = host_port.partition(":")
        self._address = (host, int(port))
        self._head = (
            f"POST {CHAT} HTTP/1.1\r\nhost: {host_port}\r\n"
            f"authorization: Bearer {target.api_key}\r\ncontent-type: application/json\r\n"
        ).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reused = False  # it has answered a request already, so it may have gone stale

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(*self._address)
            self._reused = False
        return self._reader, self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def post(self, body: bytes, on_data: Callable[[bytes], None] | None = None) -> bytes:
        """POST `body`; the response body (`on_data` sees every piece as it arrives)."""
        try:
            reader, writer = await self._open()
            request = self._head + b"content-length: %d\r\n\r\n" % len(body) + body
            writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as error:
                if error.partial or not self._reused:
                    raise
                # The server closed this idle keep-alive connection (its keep-alive timeout)
                # just before the request: nothing was answered, so send it again on a new one.
                self.close()
                reader, writer = await self._open()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
            self._reused = True
            status = int(head[9:12])
            headers = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip().lower()
            pieces = []
            if "content-length" in headers:
                piece = await reader.readexactly(int(headers["content-length"]))
                pieces.append(piece)
                if on_data is not None:
                    on_data(piece)
            elif headers.get("transfer-encoding") == "chunked":
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        await reader.readuntil(b"\r\n")  # no trailers here
                        break
                    piece = (await reader.readexactly(size + 2))[:-2]
                    pieces.append(piece)
                    if on_data is not None:
                        on_data(piece)
            else:
                pieces.append(await reader.read())
                headers["connection"] = "close"
            if headers.get("connection") == "close":
                self.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.close()
            raise
        data = b"".join(pieces)
        if status != 200:
            raise BadAnswerError(f"{status}: {data[:200]!r}")
        return data


class Pool:
    """Idle connections for the paced load; a new one only when every open one is busy."""

    def __init__(self, target: Target, limit: int) -> None:
        self._target = target
        self._idle: list[Connection] = []
        self._free = asyncio.Semaphore(limit)
        self._all: list[Connection] = []

    async def acquire(self) -> Connection:
        await self._free.acquire()
        if self._idle:
            return self._idle.pop()
        connection = Connection(self._target)
        self._all.append(connection)
        return connection

    def release(self, connection: Connection) -> None:
        self._idle.append(connection)
        self._free.release()

    def close(self) -> None:
        for connection in self._all:
            connection.close()


TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


async def plain(connection: Connection) -> float:
    """One plain completion; its latency in ms."""
    started = time.perf_counter()
    data = await connection.post(PLAIN_BODY)
    elapsed = (time.perf_counter() - started) * 1000
    if b'"choices"' not in data:
        raise BadAnswerError(f"not a completion: {data[:200]!r}")
    return elapsed


def first_content(buffer: bytes) -> bool:
    """Whether the SSE bytes so far hold an event whose delta carries text (the first token)."""
    for event in buffer.split(b"\n\n")[:-1]:  # the last piece may be incomplete
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                continue
            choices = json.loads(data).get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                return True
    return False


async def streamed(connection: Connection) -> tuple[float, float]:
    """One streamed completion; (time to first token, time to the end) in ms."""
    started = time.perf_counter()
    ttft: float | None = None
    buffer = b""

    def on_data(piece: bytes) -> None:
        nonlocal buffer, ttft
        if ttft is None:
            buffer += piece
            if first_content(buffer):
                ttft = (time.perf_counter() - started) * 1000

    data = await connection.post(STREAM_BODY, on_data)
    total = (time.perf_counter() - started) * 1000
    if ttft is None or b"[DONE]" not in data[-64:]:
        raise BadAnswerError(f"stream without a token or [DONE]: {data[-200:]!r}")
    return ttft, total


@dataclass
class Paced:
    latency_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    stream_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unfinished: int = 0
    late_ms: float = 0.0  # how far behind its schedule the client started the last request
    cpu: float = 0.0  # the target's processes, seconds, over the whole paced run
    extra_cpu: dict[str, float] = field(default_factory=dict)

    @property
    def cpu_ms_per_request(self) -> float:
        answered = len(self.latency_ms) + len(self.ttft_ms)
        return 1000 * self.cpu / answered if answered else float("nan")


async def paced(target: Target, rate: float, seconds: float, connections: int = 64) -> Paced:
    result = Paced()
    count = max(2, int(rate * seconds))
    pool = Pool(target, connections)
    try:

        async def one(index: int) -> None:
            connection = await pool.acquire()
            try:
                if index % 2 == 0:
                    result.latency_ms.append(await plain(connection))
                else:
                    ttft, total = await streamed(connection)
                    result.ttft_ms.append(ttft)
                    result.stream_ms.append(total)
            except (*TRANSPORT_ERRORS, BadAnswerError) as error:
                result.errors.append(f"{type(error).__name__}: {error}")
            finally:
                pool.release(connection)

        pids, extra = target.pids(), target.extra_pids()
        cpu_before = cpu_seconds(pids)
        extra_before = {name: cpu_seconds(p) for name, p in extra.items()}
        start = time.perf_counter() + 0.05
        tasks = []
        for index in range(count):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(index)))
        result.late_ms = max(0.0, (time.perf_counter() - start - (count - 1) / rate) * 1000)
        _, pending = await asyncio.wait(tasks, timeout=30.0)
        for task in pending:
            task.cancel()
        result.unfinished = len(pending)
        result.cpu = cpu_seconds(pids) - cpu_before
        result.extra_cpu = {name: cpu_seconds(p) - extra_before[name] for name, p in extra.items()}
    finally:
        pool.close()
    return result


@dataclass
class Saturated:
    answered: int
    seconds: float
    cpu: float  # the target's processes, seconds
    extra_cpu: dict[str, float]
    client_cpu: float
    errors: list[str]

    @property
    def throughput(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu / self.answered if self.answered else float("nan")


async def saturate(target: Target, concurrency: int, count: int, seconds: float) -> Saturated:
    errors: list[str] = []
    answered = 0
    remaining = count
    connections = [Connection(target) for _ in range(concurrency)]
    try:
        deadline = time.perf_counter() + seconds

        async def worker(connection: Connection) -> None:
            nonlocal answered, remaining
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                try:
                    await plain(connection)
                    answered += 1
                except (*TRANSPORT_ERRORS, BadAnswerError) as error:
                    errors.append(f"{type(error).__name__}: {error}")

        pids = target.pids()
        extra = target.extra_pids()
        cpu_before = cpu_seconds(pids)
        extra_before = {name: cpu_seconds(p) for name, p in extra.items()}
        client_before = time.process_time()
        started = time.perf_counter()
        workers = [asyncio.create_task(worker(c)) for c in connections]
        await asyncio.wait(workers, timeout=seconds + 30.0)
        elapsed = time.perf_counter() - started
        for task in workers:
            task.cancel()
        return Saturated(
            answered=answered,
            seconds=elapsed,
            cpu=cpu_seconds(pids) - cpu_before,
            extra_cpu={name: cpu_seconds(p) - extra_before[name] for name, p in extra.items()},
            client_cpu=time.process_time() - client_before,
            errors=errors,
        )
    finally:
        for connection in connections:
            connection.close()
