"""The Prometheus client against a real Prometheus, and against a real small HTTP server for
what a healthy Prometheus will not do on demand (5xx, hangs, auth challenges)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from genesis.gate.prometheus import (
    BearerToken,
    PrometheusClient,
    PrometheusError,
    basic_auth,
    credentials,
    redact,
)
from harness.processes import free_port, require_binary
from harness.prometheus import PrometheusServer


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    binary = require_binary("prometheus", "prometheus")
    with PrometheusServer(tmp_path_factory.mktemp("prom-client"), binary=binary) as server:
        yield server


@pytest.mark.integration
class TestAgainstRealPrometheus:
    def test_instant_vector_and_scalar(self, prometheus: PrometheusServer) -> None:
        with PrometheusClient(prometheus.url) as client:
            [sample] = client.query('label_replace(vector(3), "track", "canary", "", "")')
            assert sample.value == 3.0
            assert sample.labels == {"track": "canary"}
            [scalar] = client.query("scalar(vector(0.25))", at=1_700_000_000)
            assert (scalar.value, scalar.timestamp, dict(scalar.labels)) == (
                0.25,
                1_700_000_000,
                {},
            )
            assert client.query('up{job="nothing-here"}') == []

    def test_nan_and_infinities_come_through_as_floats(self, prometheus: PrometheusServer) -> None:
        with PrometheusClient(prometheus.url) as client:
            values = [s.value for s in client.query("vector(0) / vector(0)")]
            assert len(values) == 1
            assert values[0] != values[0]
            assert client.query("vector(1) / vector(0)")[0].value == float("inf")

    def test_range_query(self, prometheus: PrometheusServer) -> None:
        end = time.time()
        with PrometheusClient(prometheus.url) as client:
            [series] = client.query_range("vector(2)", end - 10, end, 1)
        assert len(series.points) == 11
        assert all(value == 2.0 for _, value in series.points)
        assert series.points[0][0] == pytest.approx(end - 10, abs=0.01)

    def test_invalid_query_quotes_prometheus(self, prometheus: PrometheusServer) -> None:
        with PrometheusClient(prometheus.url) as client, pytest.raises(PrometheusError) as error:
            client.query("sum(rate(http_requests_total[5m])")
        assert error.value.kind == "query"
        assert error.value.error_type == "bad_data"
        message = str(error.value)
        assert message.startswith("Prometheus rejected the query (bad_data): ")
        assert "parse error" in message  # Prometheus' own words

    def test_range_vector_where_a_number_is_needed(self, prometheus: PrometheusServer) -> None:
        with PrometheusClient(prometheus.url) as client, pytest.raises(PrometheusError) as error:
            client.query("up[1m]")
        assert error.value.kind == "query"
        assert "range selector" in str(error.value)

    def test_bad_range_arguments(self, prometheus: PrometheusServer) -> None:
        with PrometheusClient(prometheus.url) as client:
            with pytest.raises(ValueError, match="step"):
                client.query_range("vector(1)", 0, 10, 0)
            with pytest.raises(ValueError, match="before it starts"):
                client.query_range("vector(1)", 10, 0, 1)
            # Prometheus refuses more than 11,000 points per series, in its words.
            with pytest.raises(PrometheusError, match="exceeded maximum resolution"):
                client.query_range("vector(1)", 0, 100_000, 1)


def test_unreachable_retries_with_backoff_then_says_why() -> None:
    waits: list[float] = []
    url = f"http://127.0.0.1:{free_port()}"
    client = PrometheusClient(url, retries=3, backoff=0.1, sleep=waits.append)
    with client, pytest.raises(PrometheusError) as error:
        client.query("up")
    assert error.value.kind == "unreachable"
    assert str(error.value).startswith(f"Prometheus at {url} is unreachable after 4 attempts: ")
    assert "Connection refused" in str(error.value)
    assert waits == [0.1, 0.2, 0.4]


def test_not_a_url() -> None:
    with pytest.raises(PrometheusError, match="is not a Prometheus URL"):
        PrometheusClient("localhost:9090")
    with pytest.raises(ValueError, match="timeout"):
        PrometheusClient("http://127.0.0.1:9090", timeout=0)


# --- a real small HTTP server with scripted answers ------------------------------------------


@dataclass
class Script:
    """Answers to give, in order (the last one repeats), and what was asked."""

    answers: list[tuple[int, str, float]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


def _success(value: str = "1") -> str:
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1700000000, value]}
        ]}}
    )  # fmt: skip


@pytest.fixture
def stub() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            script.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length)}
            )
            index = min(len(script.requests) - 1, len(script.answers) - 1)
            status, body, delay = script.answers[index]
            time.sleep(delay)
            payload = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()


def test_5xx_is_retried_then_succeeds(stub: tuple[str, Script]) -> None:
    url, script = stub
    script.answers = [(503, "overloaded", 0), (502, "", 0), (200, _success("7"), 0)]
    with PrometheusClient(url, retries=2, backoff=0) as client:
        assert client.query("up")[0].value == 7.0
    assert len(script.requests) == 3
    body = script.requests[0]["body"].decode()
    assert "query=up" in body
    assert "timeout=10s" in body


def test_5xx_after_every_retry_quotes_the_last_answer(stub: tuple[str, Script]) -> None:
    url, script = stub
    error_body = json.dumps({"status": "error", "errorType": "timeout", "error": "query timed out"})
    script.answers = [(503, error_body, 0)]
    with PrometheusClient(url, retries=1, backoff=0) as client, pytest.raises(PrometheusError) as e:
        client.query("up")
    assert e.value.kind == "unreachable"
    assert "HTTP 503, timeout: query timed out" in str(e.value)
    assert len(script.requests) == 2


def test_timeout_is_an_unreachable_error(stub: tuple[str, Script]) -> None:
    url, script = stub
    script.answers = [(200, _success(), 1.0)]
    with (
        PrometheusClient(url, timeout=0.2, retries=0) as client,
        pytest.raises(PrometheusError) as e,
    ):
        client.query("up")
    assert "no answer within 0.2s" in str(e.value)
    assert "after 1 attempt:" in str(e.value)


def test_an_answer_that_is_not_the_api(stub: tuple[str, Script]) -> None:
    url, script = stub
    script.answers = [(404, "<html>not found</html>", 0)]
    with PrometheusClient(url) as client, pytest.raises(PrometheusError) as e:
        client.query("up")
    assert e.value.kind == "response"
    assert "not the Prometheus API (HTTP 404: <html>not found</html>); is the URL right?" in str(
        e.value
    )


def test_refused_credentials(stub: tuple[str, Script]) -> None:
    url, script = stub
    script.answers = [(401, "Unauthorized", 0)]
    with PrometheusClient(url) as client, pytest.raises(PrometheusError) as e:
        client.query("up")
    assert e.value.kind == "auth"
    assert "refused the credentials (401)" in str(e.value)


def test_bearer_token_from_file(stub: tuple[str, Script], tmp_path: Path) -> None:
    url, script = stub
    script.answers = [(200, _success(), 0)]
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    auth = credentials(bearer_token_file=token)
    assert isinstance(auth, BearerToken)
    assert "s3cret" not in repr(auth)
    with PrometheusClient(url, auth=auth) as client:
        client.query("up")
        assert "s3cret" not in repr(client)
    assert script.requests[0]["headers"]["Authorization"] == "Bearer s3cret-token"


def test_basic_auth_from_file(stub: tuple[str, Script], tmp_path: Path) -> None:
    url, script = stub
    script.answers = [(200, _success(), 0)]
    password = tmp_path / "password"
    password.write_text("pa55word\n")
    auth = credentials(username="gate", password_file=password)
    assert isinstance(auth, httpx.BasicAuth)
    with PrometheusClient(url, auth=auth) as client:
        client.query("up")
    # base64("gate:pa55word")
    assert script.requests[0]["headers"]["Authorization"] == "Basic Z2F0ZTpwYTU1d29yZA=="


def test_credential_problems_are_named_without_secrets(tmp_path: Path) -> None:
    assert credentials() is None
    with pytest.raises(PrometheusError, match=r"cannot read the bearer token file .*No such file"):
        credentials(bearer_token_file=tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(PrometheusError, match="is empty"):
        credentials(bearer_token_file=empty)
    with pytest.raises(PrometheusError, match="not both"):
        credentials(bearer_token_file=empty, username="a")
    with pytest.raises(PrometheusError, match="needs both a username and a password file"):
        credentials(username="a")
    with pytest.raises(PrometheusError, match="cannot contain ':'"):
        basic_auth("a:b", empty)


def test_urls_lose_their_passwords_in_messages() -> None:
    assert redact("http://user:pw@127.0.0.1:9090/prom") == "http://127.0.0.1:9090/prom"
    assert redact("http://127.0.0.1:9090") == "http://127.0.0.1:9090"
    url = f"http://user:hunter2@127.0.0.1:{free_port()}"
    with PrometheusClient(url, retries=0) as client, pytest.raises(PrometheusError) as e:
        client.query("up")
    assert "hunter2" not in str(e.value)
    assert "hunter2" not in repr(client)
