"""The processes under test, each started on loopback with its log in a file, and stopped.

- the upstream stub (the fast one in stub.py, or the test harness' own with `--stub harness`);
- the bare Quart proxy (bare.py) under the `hypercorn` command, `--workers N`;
- genesis, `genesis serve`, everything on: API keys from a keys file, rate limits counted in a
  real Redis (limits far above the load, so nothing is refused), `/metrics` on its own port,
  JSON request logs to a file;
- the LiteLLM proxy from its own virtualenv (never the project's), with what it can enable
  offline: master-key auth, router RPM/TPM limits tracked in the same kind of Redis,
  Prometheus metrics, JSON logs. Its virtual keys and per-key limits need a database
  (PostgreSQL through Prisma), which is not here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from benchmarks.service.load import Target, process_tree

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HIGH_RPM = 100_000_000  # far above any load here: counted in Redis, never refused
HIGH_TPM = 10_000_000_000
LITELLM_MASTER_KEY = "sk-bench-master"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tree(self) -> list[int]:
        return process_tree(self.popen.pid) if self.popen.poll() is None else []

    def stop(self, grace: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        # Its own session: the signal reaches its workers, and nothing else.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(
    name: str, argv: list[str], logs: Path, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> Process:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Process(name, popen, log)


def wait_ready(process: Process, url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited ({process.popen.returncode}):\n{process.tail()}"
            )
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{process.name} not ready at {url} within {timeout}s:\n{process.tail()}")


def start_stub(kind: str, chunk_latency: float, logs: Path) -> tuple[Process, str]:
    port = free_port()
    if kind == "fast":
        argv = [sys.executable, "-m", "benchmarks.service.stub", "--port", str(port)]
        cwd = ROOT
    else:
        argv = [sys.executable, "-m", "harness.openai_stub", "--port", str(port), "--quiet"]
        argv += ["--no-record"]
        cwd = ROOT / "tests"
    argv += ["--chunk-latency", str(chunk_latency)]
    process = start("stub", argv, logs, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    wait_ready(process, f"{url}/_stub/health")
    return process, url


def start_redis(logs: Path) -> tuple[Process, int]:
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--daemonize", "no"]
    process = start("redis", argv, logs)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return process, port
        time.sleep(0.1)
    raise RuntimeError(f"redis did not start:\n{process.tail()}")


def start_bare(upstream: str, workers: int, logs: Path) -> tuple[Process, Target]:
    port = free_port()
    argv = [str(BIN / "hypercorn"), "benchmarks.service.bare:app"]
    argv += ["--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    env = {"BENCH_UPSTREAM": upstream, "PYTHONPATH": str(ROOT)}
    process = start("bare-quart", argv, logs, env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(process, f"{url}/livez")
    return process, Target("bare Quart proxy", url, "unused", pids=process.tree)


def _genesis_key(logs: Path) -> tuple[str, Path]:
    out = subprocess.run(
        [str(BIN / "genesis"), "keys", "new", "bench"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    key = next(word for word in out if word.startswith("gsk_"))
    line = next(word for word in out if word.startswith("bench:sha256:"))
    keys_file = logs / "api-keys"
    keys_file.write_text(line + "\n", encoding="utf-8")
    return key, keys_file


def start_genesis(
    upstream: str, redis_port: int, workers: int, logs: Path, redis: Process
) -> tuple[Process, Target]:
    key, keys_file = _genesis_key(logs)
    port, metrics_port = free_port(), free_port()
    env = {
        "GENESIS_ENV": "dev",
        "GENESIS_HOST": "127.0.0.1",
        "GENESIS_PORT": str(port),
        "GENESIS_WORKERS": str(workers),
        "GENESIS_PROVIDER": "openai",
        "GENESIS_OPENAI_BASE_URL": f"{upstream}/v1",
        "GENESIS_OPENAI_API_KEY": "sk-upstream-bench",
        "GENESIS_MODEL": "gpt-4o-mini",
        "GENESIS_AUTH": "on",
        "GENESIS_API_KEYS_FILE": str(keys_file),
        "GENESIS_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "GENESIS_RATE_LIMIT_RPM": str(HIGH_RPM),
        "GENESIS_RATE_LIMIT_TPM": str(HIGH_TPM),
        "GENESIS_METRICS_PORT": str(metrics_port),
        "GENESIS_LOG_FORMAT": "json",
    }
    # Never a stray setting from the caller's environment: only what is listed here.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GENESIS_")}
    log = logs / "genesis.log"  # the JSON request log, one line per request
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [str(BIN / "genesis"), "serve"],
            cwd=logs,  # no .env file from the checkout
            env={**clean, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    process = Process("genesis", popen, log)
    url = f"http://127.0.0.1:{port}"
    wait_ready(process, f"{url}/readyz")
    wait_ready(process, f"http://127.0.0.1:{metrics_port}/metrics")
    target = Target(
        "genesis (everything on)",
        url,
        key,
        pids=process.tree,
        extra_pids=lambda: {"redis": redis.tree()},
    )
    return process, target


LITELLM_CONFIG = """\
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {upstream}/v1
      api_key: sk-upstream-bench
      rpm: {rpm}
      tpm: {tpm}
router_settings:
  redis_host: 127.0.0.1
  redis_port: {redis_port}
litellm_settings:
  json_logs: true
  callbacks: ["prometheus"]
  require_auth_for_metrics_endpoint: false
general_settings:
  master_key: {master_key}
"""


def start_litellm(
    venv: Path, upstream: str, redis_port: int, workers: int, logs: Path, redis: Process
) -> tuple[Process, Target]:
    config = logs / "litellm-config.yaml"
    config.write_text(
        LITELLM_CONFIG.format(
            upstream=upstream,
            rpm=HIGH_RPM,
            tpm=HIGH_TPM,
            redis_port=redis_port,
            master_key=LITELLM_MASTER_KEY,
        ),
        encoding="utf-8",
    )
    port = free_port()
    argv = [str(venv / "bin" / "litellm"), "--config", str(config)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--num_workers", str(workers)]
    # Offline: the bundled model cost map instead of fetching it from GitHub at start-up.
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}
    process = start("litellm", argv, logs, env, cwd=logs)
    url = f"http://127.0.0.1:{port}"
    wait_ready(process, f"{url}/health/liveliness", timeout=180.0)
    target = Target(
        "LiteLLM proxy",
        url,
        LITELLM_MASTER_KEY,
        pids=process.tree,
        extra_pids=lambda: {"redis": redis.tree()},
    )
    return process, target
