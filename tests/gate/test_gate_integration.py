"""The gate end to end: a real Prometheus scrapes real genesis services under real load.

One stable instance and four canaries (healthy, 10% errors, +200 ms, idle) run for the whole
module; Prometheus scrapes them every second, each canary paired with the stable instance
under its own job, so `--var service=<job>` picks a scenario. Bounded loopback load comes
from the gate's own traffic driver. Times are scaled down (tests/gate/specs/scaled.yaml: a
20 s window instead of 5 m), and the scenarios share the servers, so the module takes about a
minute. Every verdict is the real `genesis gate` command's exit code and JSON report.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from genesis.gate.display import GateDisplay
from genesis.gate.prometheus import PrometheusClient
from genesis.gate.run import GateRun
from genesis.gate.spec import load
from genesis.gate.traffic import TrafficDriver, traffic_plan
from harness.genesis import GenesisServer, genesis_servers
from harness.processes import free_port, require_binary
from harness.prometheus import PrometheusServer, ScrapeJob

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPECS = Path(__file__).parent / "specs"
SCALED = SPECS / "scaled.yaml"
LIVE = SPECS / "live.yaml"
RATE = 15.0  # requests/s per instance: 300 per 20 s window, enough to see +5 points of errors
SCENARIOS = ("healthy", "errors", "slow", "idle")


@dataclass
class Stack:
    prometheus: PrometheusServer
    stable: GenesisServer
    canaries: dict[str, GenesisServer]
    traffic: TrafficDriver
    workdir: Path


def _target(server: GenesisServer) -> str:
    return f"127.0.0.1:{server.metrics_port}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = require_binary("prometheus", "prometheus")
    workdir = tmp_path_factory.mktemp("gate-e2e")
    with genesis_servers(workdir) as start:
        stable = start({"GENESIS_TRACK": "stable"})
        canaries = {
            "healthy": start({"GENESIS_TRACK": "canary"}),
            "errors": start({"GENESIS_TRACK": "canary", "GENESIS_FAULT_ERROR_RATE": "0.1"}),
            "slow": start({"GENESIS_TRACK": "canary", "GENESIS_FAULT_LATENCY_MS": "200"}),
            "idle": start({"GENESIS_TRACK": "canary"}),
        }
        jobs = [
            ScrapeJob(name, [_target(stable), _target(canary)]) for name, canary in canaries.items()
        ]
        prometheus = PrometheusServer(workdir, binary=binary, jobs=jobs, scrape_interval="1s")
        with prometheus:
            loaded = [stable, canaries["healthy"], canaries["errors"], canaries["slow"]]
            plan = traffic_plan([f"{s.url}/v1/models" for s in loaded], RATE, 600)
            with TrafficDriver(plan) as traffic:
                prometheus.wait_for_targets_up(timeout=30)
                # Scraped traffic on every loaded canary for a full window before judging it,
                # plus the 5 s that the first check's rate() looks back, plus margin.
                prometheus.wait_for(
                    'min(count_over_time(http_requests_total{route="/v1/models", track="canary",'
                    ' status="200"}[30s]))',
                    lambda samples: bool(samples) and samples[0].value >= 29,
                    timeout=90,
                )
                yield Stack(prometheus, stable, canaries, traffic, workdir)


def gate(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genesis", "gate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def retro(stack: Stack, scenario: str, tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    report = tmp_path / f"{scenario}.json"
    markdown = tmp_path / f"{scenario}.md"
    done = gate(
        "retro",
        "--prometheus",
        stack.prometheus.url,
        "--spec",
        str(SCALED),
        "--var",
        f"service={scenario}",
        # End a little in the past: the newest scrape may not be queryable yet.
        "--from=-22s",
        "--to",
        "now-2s",
        "--json",
        str(report),
        "--markdown",
        str(markdown),
    )
    assert "Traceback" not in done.stderr, done.stderr
    document = json.loads(report.read_text())
    assert document["exit_code"] == done.returncode, done.stdout + done.stderr
    assert markdown.read_text().startswith(f"## genesis gate retro: {document['verdict']}")
    return done.returncode, document, done.stdout + done.stderr


def _metrics(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in document["metrics"]}


def test_healthy_canary_passes(stack: Stack, tmp_path: Path) -> None:
    code, document, output = retro(stack, "healthy", tmp_path)
    assert code == 0, output
    assert document["verdict"] == "PASS"
    metrics = _metrics(document)
    assert metrics["error-rate"]["classification"] == "PASS"
    assert metrics["error-rate"]["proportion"]["canary_total"] >= 150
    assert metrics["latency-mean"]["classification"] == "PASS"
    assert metrics["latency-mean"]["canary"]["count"] >= 15
    assert metrics["in-flight"]["dry_run"] is True
    [check] = document["checks"]
    assert check["phase"] == "Successful"
    assert [m["value"] for m in document["measurements"]["error-rate"]] == [[0.0]] * 3
    assert document["comparison_window"]["end"] > document["comparison_window"]["start"]
    assert output.startswith("PASS (score 100)")


def test_canary_with_ten_percent_errors_fails(stack: Stack, tmp_path: Path) -> None:
    code, document, output = retro(stack, "errors", tmp_path)
    assert code == 1, output
    assert document["verdict"] == "FAIL"
    errors = _metrics(document)["error-rate"]
    assert errors["classification"] == "HIGH"
    assert errors["critical_failure"] is True
    assert 0.03 < errors["proportion"]["canary_rate"] < 0.25
    assert errors["proportion"]["baseline_events"] == 0
    assert "critical metric failed: error-rate" in document["reason"]


def test_canary_200ms_slower_fails(stack: Stack, tmp_path: Path) -> None:
    code, document, output = retro(stack, "slow", tmp_path)
    assert code == 1, output
    latency = _metrics(document)["latency-mean"]
    assert latency["classification"] == "HIGH"
    assert latency["canary"]["median"] > 0.2 > latency["baseline"]["median"]
    assert "latency-mean: higher on the canary" in document["reason"]
    assert _metrics(document)["error-rate"]["classification"] == "PASS"


def test_canary_without_traffic_is_inconclusive(stack: Stack, tmp_path: Path) -> None:
    code, document, output = retro(stack, "idle", tmp_path)
    assert code == 2, output
    metrics = _metrics(document)
    assert metrics["error-rate"]["classification"] == "NODATA"
    assert "the canary served no requests" in metrics["error-rate"]["reason"]
    assert metrics["latency-mean"]["classification"] == "NODATA"
    assert metrics["latency-mean"]["missing_samples"] > 0
    # 0/0 has no value: each threshold measurement is inconclusive, never failed.
    [check] = document["checks"]
    assert check["phase"] == "Inconclusive"


def test_prometheus_down_is_an_error(tmp_path: Path) -> None:
    nothing = f"http://127.0.0.1:{free_port()}"
    done = gate(
        "retro",
        "--prometheus",
        nothing,
        "--spec",
        str(SCALED),
        "--from=-1m",
        "--retries",
        "1",
        "--json",
        str(tmp_path / "report.json"),
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"Prometheus at {nothing} is unreachable after 2 attempts" in done.stdout
    assert "Connection refused" in done.stdout
    assert json.loads((tmp_path / "report.json").read_text())["verdict"] == "ERROR"


def test_builtin_analysis_runs_against_real_metrics(stack: Stack, tmp_path: Path) -> None:
    """The built-in 5-minute analysis over a 20 s window: every query is valid PromQL on
    real genesis metrics, and too little data is INCONCLUSIVE, never a pass."""
    done = gate(
        "retro",
        "--prometheus",
        stack.prometheus.url,
        "--var",
        "service=healthy",
        "--from=-22s",
        "--to",
        "now-2s",
        "--json",
        str(tmp_path / "b.json"),
    )
    code, output = done.returncode, done.stdout + done.stderr
    document = json.loads((tmp_path / "b.json").read_text())
    assert code == 2, output
    metrics = _metrics(document)
    assert not [m for m in metrics.values() if m["classification"] == "ERROR"], output
    assert metrics["latency-p99"]["classification"] == "NODATA"
    assert {c["name"] for c in document["checks"]} == {"request-error-rate", "availability"}
    # The targets carry no track label: the canary's `up` is found through what it exports.
    [availability] = [c for c in document["checks"] if c["name"] == "availability"]
    assert availability["phase"] == "Successful", output


def test_live_run_stops_at_the_first_failed_check(stack: Stack) -> None:
    """Library-level live run on a terminal console: the table redraws, a failed threshold
    check ends the run at once (nothing later could outrank it)."""
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=160, color_system=None)
    with PrometheusClient(stack.prometheus.url) as client:
        run = GateRun(
            load(str(LIVE)),
            client,
            variables={"service": "errors"},
            observer=GateDisplay(console),
        )
        # The error share is measured over 5 s windows of ~50 requests at 10% errors: a
        # window under the 5% threshold is possible, so the test allows a second run.
        result = run.live()
        if result.verdict.value != "FAIL":
            result = run.live()
    assert result.verdict.value == "FAIL", result.judgment.reason
    assert result.stopped_early
    assert result.comparison is None
    assert "threshold checks: error-rate: Failed" in result.judgment.reason
    shown = output.getvalue()
    assert "Failed" in shown
    assert "verdict: FAIL" in shown
    assert "stopped early" in result.to_markdown()


def test_live_run_with_traffic_driver_passes_a_quiet_canary(stack: Stack, tmp_path: Path) -> None:
    """`gate run --traffic` gives the idle canary the requests it needs: PASS, not
    INCONCLUSIVE. Runs last in the module: it ends the idle canary's quiet."""
    idle = stack.canaries["idle"]
    report = tmp_path / "live.json"
    summary = tmp_path / "summary.md"
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "genesis",
            "gate",
            "run",
            "--prometheus",
            stack.prometheus.url,
            "--spec",
            str(LIVE),
            "--var",
            "service=idle",
            "--traffic",
            f"{idle.url}/v1/models",
            "--traffic-rate",
            str(RATE),
            "--json",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)},
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(report.read_text())
    assert document["mode"] == "live"
    sent = document["traffic"]["targets"][f"{idle.url}/v1/models"]
    assert sent["ok"] > 80
    assert sent["failed"] == sent["errors"] == 0
    # Bounded: never more than the rate allows over the time it ran.
    assert sent["sent"] <= RATE * elapsed + 1
    assert summary.read_text().startswith("## genesis gate live: PASS")
    assert "error-rate" in done.stderr  # the progress table went to stderr


def test_builtin_availability_fails_a_canary_that_went_down(stack: Stack, tmp_path: Path) -> None:
    """Runs last in the module: it stops the slow canary. Its `up` turns 0 while its last
    genesis_build_info still says it was the canary, so the built-in check measures a 0."""
    stack.canaries["slow"].stop()
    stack.prometheus.wait_for('up{job="slow"} == 0', lambda samples: len(samples) == 1, timeout=30)
    # Threshold checks are measured from the start of the range: start it once `up` is 0.
    down_since = f"{time.time():.3f}"
    done = gate(
        "retro",
        "--prometheus",
        stack.prometheus.url,
        "--var",
        "service=slow",
        "--from",
        down_since,
        "--json",
        str(tmp_path / "down.json"),
    )
    output = done.stdout + done.stderr
    document = json.loads((tmp_path / "down.json").read_text())
    # The measurement is a failure, 0, not "no data": the dead canary was found. One failed
    # measurement is within failureLimit 1, so a range this short ends INCONCLUSIVE, never PASS.
    assert "availability: Failed (0)" in output
    [availability] = [c for c in document["checks"] if c["name"] == "availability"]
    assert availability["phase"] == "Inconclusive", output
    assert availability["message"] == "none of 1 measurements succeeded", output
    assert document["verdict"] == "INCONCLUSIVE", output
    assert done.returncode == 2, output
