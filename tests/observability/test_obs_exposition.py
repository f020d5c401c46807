"""Serving /metrics on its own port: single-process, multi-process, and what promtool says."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from genesis.observability import (
    Metrics,
    mark_worker_dead,
    prepare_multiprocess_dir,
    scrape_registry,
    start_metrics_server,
)
from harness.exposition import sample_sum
from harness.processes import require_binary


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback
        assert response.status == 200
        body: bytes = response.read()
        return body.decode()


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    promtool = require_binary("promtool", "prometheus")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )


def test_single_process_server_serves_the_default_registry_and_passes_promtool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = Metrics(track="green", version="1.2.3", revision="abc")
    metrics.service.cache_hit("exposition-test")
    server = start_metrics_server("127.0.0.1", 0)
    try:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        text = scrape(server.url)
    finally:
        server.close()
    assert sample_sum(text, "genesis_build_info", version="1.2.3", track="green") == 1
    assert sample_sum(text, "genesis_cache_lookups_total", cache="exposition-test") == 1
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_bad_arguments_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="metrics port must be within 0-65535, got 70000"):
        start_metrics_server("127.0.0.1", 70000)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        prepare_multiprocess_dir(not_a_dir)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with pytest.raises(RuntimeError, match="call prepare_multiprocess_dir"):
        mark_worker_dead(1)


WORKER = """
from genesis.observability import Metrics
metrics = Metrics(track="canary", version="1.0.0", revision="r1")
metrics.instruments.http_in_flight.labels(track="canary").inc(3)
metrics.service.upstream_retry("openai")
"""


def test_multiprocess_dir_is_cleaned_and_dead_workers_stop_counting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left over by a previous run")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "placeholder")
    assert prepare_multiprocess_dir(directory) == directory
    assert list(directory.iterdir()) == []

    # A real worker process writes its samples, then exits without cleaning up.
    worker = subprocess.run([sys.executable, "-c", WORKER], check=True, timeout=60)
    assert worker.returncode == 0
    pids = {path.stem.rsplit("_", 1)[1] for path in directory.glob("*.db")}
    assert len(pids) == 1

    def families() -> dict[str, float]:
        return {
            sample.name: sample.value
            for family in scrape_registry().collect()
            for sample in family.samples
        }

    assert families()["http_requests_in_flight"] == 3
    mark_worker_dead(int(pids.pop()))
    after = families()
    # Its in-flight requests are gone; what it counted stays counted.
    assert "http_requests_in_flight" not in after
    assert after["genesis_upstream_retries_total"] == 1
