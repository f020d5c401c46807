"""Two real Hypercorn workers behind one /metrics port: N requests read as N."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from harness.exposition import sample_sum, settled_metrics
from harness.processes import ManagedProcess, free_port, http_ok, require_binary

FIXTURE_SERVER = Path(__file__).parent / "obs_fixture_server.py"
REQUESTS = 300


def wait_for_workers(directory: Path, count: int, timeout: float = 30) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Every worker sets genesis_build_info as soon as it imports the app.
        pids = {path.stem.rsplit("_", 1)[1] for path in directory.glob("gauge_max_*.db")}
        if len(pids) >= count:
            return pids
        time.sleep(0.1)
    raise AssertionError(f"{count} workers did not start within {timeout}s")


@pytest.mark.integration
def test_two_workers_count_every_request_once(tmp_path: Path) -> None:
    promtool = require_binary("promtool", "prometheus")
    port, metrics_port = free_port(), free_port()
    metrics_dir = tmp_path / "prom"
    server = ManagedProcess(
        "obs-fixture-server",
        [
            sys.executable,
            str(FIXTURE_SERVER),
            f"--port={port}",
            f"--metrics-port={metrics_port}",
            "--workers=2",
            f"--metrics-dir={metrics_dir}",
        ],
        log_dir=tmp_path,
        env={"GENESIS_TRACK": "canary"},
    )
    with server:
        server.start().wait_ready(lambda: http_ok(f"http://127.0.0.1:{port}/items/0"), timeout=60)
        pids = wait_for_workers(metrics_dir, 2)

        # No keep-alive: a fresh connection per request lets the kernel hand requests to
        # either worker.
        with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:

            def hello(_: int) -> int:
                return client.get(f"http://127.0.0.1:{port}/hello").status_code

            with ThreadPoolExecutor(max_workers=8) as pool:
                statuses = list(pool.map(hello, range(REQUESTS)))
        assert statuses == [200] * REQUESTS
        text = settled_metrics(f"http://127.0.0.1:{metrics_port}/metrics")

    served_by = {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("histogram_*.db")} & pids
    assert len(served_by) == 2, "both workers should have served requests"
    assert (
        sample_sum(text, "http_requests_total", route="/hello", status="200", track="canary")
        == REQUESTS
    )
    assert sample_sum(text, "http_request_duration_seconds_count", route="/hello") == REQUESTS
    assert sample_sum(text, "http_requests_in_flight", track="canary") == 0
    assert sample_sum(text, "genesis_build_info", version="9.9.9", track="canary") == 1
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
