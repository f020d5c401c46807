"""The real `genesis serve` process: the openai SDK against it, signals, workers, errors."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from genesis.service.settings import OFFLINE_MODEL
from harness.genesis import GenesisFactory, serve_to_exit
from harness.processes import free_port

pytestmark = pytest.mark.integration

PROMPT = [{"role": "user", "content": "Say something about canary releases"}]


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10)


def test_serve_prints_its_url(genesis_server: GenesisFactory) -> None:
    server = genesis_server()
    assert f"genesis serving on {server.url}" in server.log_path.read_text()


def test_openai_sdk_sync_non_streaming(genesis_server: GenesisFactory) -> None:
    client = sdk(genesis_server().url)
    completion = client.chat.completions.create(model=OFFLINE_MODEL, messages=PROMPT)  # type: ignore[arg-type]
    assert completion.object == "chat.completion"
    assert completion.model == OFFLINE_MODEL
    assert "canary releases" in (completion.choices[0].message.content or "")
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0
    assert [model.id for model in client.models.list()] == [OFFLINE_MODEL]
    assert client.models.retrieve(OFFLINE_MODEL).id == OFFLINE_MODEL


def test_openai_sdk_sync_streaming(genesis_server: GenesisFactory) -> None:
    client = sdk(genesis_server().url)
    whole = client.chat.completions.create(model=OFFLINE_MODEL, messages=PROMPT)  # type: ignore[arg-type]
    stream = client.chat.completions.create(
        model=OFFLINE_MODEL,
        messages=PROMPT,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == (whole.usage.total_tokens if whole.usage else -1)


def test_openai_sdk_async(genesis_server: GenesisFactory) -> None:
    url = genesis_server().url

    async def scenario() -> None:
        async with openai.AsyncOpenAI(
            base_url=f"{url}/v1", api_key="unused", max_retries=0
        ) as client:
            whole = await client.chat.completions.create(model=OFFLINE_MODEL, messages=PROMPT)  # type: ignore[arg-type]
            stream = await client.chat.completions.create(
                model=OFFLINE_MODEL,
                messages=PROMPT,  # type: ignore[arg-type]
                stream=True,
            )
            plain = [chunk async for chunk in stream]
            counted = await client.chat.completions.create(
                model=OFFLINE_MODEL,
                messages=PROMPT,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
            )
            with_usage = [chunk async for chunk in counted]
        text = whole.choices[0].message.content
        assert text
        for chunks in (plain, with_usage):
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
        # Usage only when asked for, in a last chunk without choices, as OpenAI sends it.
        assert all(chunk.usage is None for chunk in plain)
        assert with_usage[-1].choices == []
        assert with_usage[-1].usage is not None
        assert whole.usage is not None
        assert with_usage[-1].usage.total_tokens == whole.usage.total_tokens

    asyncio.run(scenario())


def test_openai_sdk_sees_openai_errors(genesis_server: GenesisFactory) -> None:
    client = sdk(genesis_server().url)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-nothing", messages=PROMPT)  # type: ignore[arg-type]
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as invalid:
        client.chat.completions.create(model=OFFLINE_MODEL, messages=[])
    assert invalid.value.param == "messages"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_sigterm_drains_then_exits_zero(genesis_server: GenesisFactory) -> None:
    server = genesis_server({"GENESIS_DRAIN_SECONDS": "2", "GENESIS_FAULT_LATENCY_MS": "800"})
    result: dict[str, object] = {}

    def slow_request() -> None:
        completion = sdk(server.url).chat.completions.create(model=OFFLINE_MODEL, messages=PROMPT)  # type: ignore[arg-type]
        result["content"] = completion.choices[0].message.content

    in_flight = threading.Thread(target=slow_request)
    in_flight.start()
    time.sleep(0.3)
    server.signal(signal.SIGTERM)
    # During the drain the instance still answers, but reports not ready.
    deadline = time.monotonic() + 1.5
    status, payload = _get(f"{server.url}/readyz")
    while status == 200 and time.monotonic() < deadline:
        status, payload = _get(f"{server.url}/readyz")
    assert status == 503
    assert b'"draining"' in payload
    assert _get(f"{server.url}/livez")[0] == 200
    in_flight.join(timeout=10)
    assert result.get("content"), "the in-flight request finished during the drain"
    assert server.wait(timeout=15) == 0


def test_sigint_stops_cleanly(genesis_server: GenesisFactory) -> None:
    server = genesis_server()
    server.signal(signal.SIGINT)
    assert server.wait(timeout=15) == 0


def test_two_workers_serve_and_stop_together(genesis_server: GenesisFactory) -> None:
    server = genesis_server({"GENESIS_WORKERS": "2"}, timeout=60)
    client = sdk(server.url)
    for _ in range(10):
        assert client.chat.completions.create(model=OFFLINE_MODEL, messages=PROMPT).choices  # type: ignore[arg-type]
    children = subprocess.run(
        ["pgrep", "-P", str(server.pid), "-f", "multiprocessing.spawn"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert len(children) == 2
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    for pid in children:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the supervisor"


def test_a_crashed_worker_stops_the_service(genesis_server: GenesisFactory) -> None:
    server = genesis_server({"GENESIS_WORKERS": "2"}, timeout=60)
    children = subprocess.run(
        ["pgrep", "-P", str(server.pid), "-f", "multiprocessing.spawn"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    subprocess.run(["kill", "-KILL", children[0]], check=True)
    assert server.wait(timeout=30) == 1
    assert "worker died" in server.log_path.read_text()


def test_invalid_settings_exit_2_without_echoing_secrets(tmp_path: Path) -> None:
    secret = "sk-never-print-me-42"
    result = serve_to_exit(
        tmp_path,
        env={
            "GENESIS_ENV": "prod",
            "GENESIS_FAULT_ERROR_RATE": "0.5",
            "GENESIS_OPENAI_API_KEY": secret,
            "GENESIS_PORT": "70000",
            "PATH": "/usr/bin:/bin",
        },
    )
    assert result.returncode == 2
    assert "GENESIS_PORT: Input should be less than or equal to 65535" in result.stderr
    assert secret not in result.stdout + result.stderr


def test_port_in_use_is_a_clear_error(genesis_server: GenesisFactory, tmp_path: Path) -> None:
    busy = genesis_server()
    result = serve_to_exit(tmp_path, "--port", str(busy.port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{busy.port} (API)" in result.stderr
    metrics_busy = serve_to_exit(
        tmp_path,
        "--port",
        str(free_port()),
        env={**os.environ, "GENESIS_METRICS_PORT": str(busy.metrics_port)},
    )
    assert metrics_busy.returncode == 1
    assert f"cannot listen on 127.0.0.1:{busy.metrics_port} (metrics)" in metrics_busy.stderr


def test_cli_usage(tmp_path: Path) -> None:
    from genesis import __version__
    from genesis.cli import main

    assert main([]) == 2
    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0
    unused = free_port()
    assert main(["serve", "--port", str(unused), "--provider", "bard"]) == 2
    assert __version__
