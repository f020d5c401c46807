"""The real service's /metrics: own port, track split, GenAI instruments, several workers."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request

import openai
import pytest

from genesis import __version__
from genesis.service.settings import OFFLINE_MODEL
from harness.exposition import sample_sum, settled_metrics
from harness.genesis import GenesisFactory
from harness.processes import require_binary

pytestmark = pytest.mark.integration

PROMPT = [{"role": "user", "content": "count me"}]


def scrape(url: str) -> str:
    return settled_metrics(url)


def chat(url: str, count: int, *, stream: bool = False) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    for _ in range(count):
        if stream:
            list(client.chat.completions.create(model=OFFLINE_MODEL, messages=PROMPT, stream=True))  # type: ignore[arg-type]
        else:
            client.chat.completions.create(model=OFFLINE_MODEL, messages=PROMPT)  # type: ignore[arg-type]


def test_metrics_on_their_own_port_split_by_track(genesis_server: GenesisFactory) -> None:
    server = genesis_server({"GENESIS_TRACK": "canary", "GENESIS_REVISION": "abc1234"})
    chat(server.url, 3)
    chat(server.url, 2, stream=True)
    with pytest.raises(urllib.error.HTTPError) as public:
        urllib.request.urlopen(f"{server.url}/metrics", timeout=5)
    assert public.value.code == 404, "/metrics must not be served on the public port"
    text = scrape(server.metrics_url)
    route = {"route": "/v1/chat/completions", "method": "POST", "track": "canary"}
    assert sample_sum(text, "http_requests_total", status="200", **route) == 5
    assert (
        sample_sum(
            text, "genesis_build_info", version=__version__, revision="abc1234", track="canary"
        )
        == 1
    )
    genai = {"gen_ai_request_model": OFFLINE_MODEL, "gen_ai_provider_name": "offline"}
    assert sample_sum(text, "gen_ai_client_operation_duration_seconds_count", **genai) == 5
    # Usage is counted for streams too, although these clients did not ask to see it.
    assert sample_sum(text, "gen_ai_client_token_usage_count", gen_ai_token_type="output") == 5
    assert (
        sample_sum(text, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **genai) == 2
    )


def test_failures_are_labelled(genesis_server: GenesisFactory) -> None:
    server = genesis_server({"GENESIS_FAULT_ERROR_RATE": "1.0"})
    with pytest.raises(openai.InternalServerError):
        chat(server.url, 1)
    text = scrape(server.metrics_url)
    assert sample_sum(text, "http_requests_total", route="/v1/chat/completions", status="500") == 1


def test_two_workers_count_every_request(genesis_server: GenesisFactory) -> None:
    server = genesis_server({"GENESIS_WORKERS": "2"}, timeout=60)
    requests = 40
    chat(server.url, requests)
    text = scrape(server.metrics_url)
    assert (
        sample_sum(text, "http_requests_total", route="/v1/chat/completions", status="200")
        == requests
    )


def test_promtool_accepts_the_exposition(genesis_server: GenesisFactory) -> None:
    promtool = require_binary("promtool", "prometheus")
    server = genesis_server()
    chat(server.url, 2)
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=scrape(server.metrics_url),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
