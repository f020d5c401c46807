"""`genesis gate ...` as a real subprocess: exit codes, messages, reports, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.processes import free_port

SCALED = Path(__file__).parent / "specs" / "scaled.yaml"


def gate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "genesis", "gate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def nowhere() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_lint_builtin_renders_every_query() -> None:
    done = gate("lint", "--render", "--var", "service=chat", "--canary-track", "canary")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("builtin analysis: valid; a live run takes 5m30s")
    assert "# latency-p99 compare.query [stable]\nhistogram_quantile(0.99" in done.stdout
    assert 'job="chat"' in done.stdout
    assert "{{" not in done.stdout


def test_lint_reports_each_problem_with_its_line(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("window: 5x\nmetrics:\n  - name: Bad Name\n    query: up{job='{{svc}}'}\n")
    done = gate("lint", str(spec))
    assert done.returncode == 1
    assert f"{spec}:1:9: error: window:" in done.stdout
    assert "unknown variable svc" in done.stdout
    assert "3:11: error: metrics[0].name" in done.stdout
    assert gate("lint", str(tmp_path / "missing.yaml")).returncode == 3
    assert gate("lint", str(SCALED)).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--spec", "/no/such.yaml"], "cannot read the spec '/no/such.yaml'"),
        (["retro", "--from", "yesterday"], "'yesterday' is not a time"),
        (["retro", "--from", "-10m"], "write --from=-10m or --from now-10m"),
        (["retro", "--from=now", "--to=-1h"], "must be later than --from"),
        (["run", "--spec", str(SCALED), "--var", "nope=1"], "no variable 'nope'"),
        (["run", "--var", "track=x"], "{{track}} is set by the gate itself"),
        (["run", "--var", "novalue"], "write NAME=VALUE"),
        (["run", "--var", 'service=a"b'], "would break out of a PromQL string"),
        (["run", "--baseline-track", "canary"], "must differ"),
        (["run", "--traffic", "http://127.0.0.1:1/", "--traffic-rate", "1000"], "at most 100"),
        (["run", "--traffic", "http://127.0.0.1:1/", "--traffic-body", "{"], "is not JSON"),
        (["run", "--traffic", "http://127.0.0.1:1/", "--traffic-duration", "2h"], "3600s"),
        (["run", "--bearer-token-file", "/no/token"], "cannot read the bearer token file"),
        (["run", "--timeout", "0"], "--timeout must be positive"),
        (["run", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_an_error_with_a_clear_message(args: list[str], message: str) -> None:
    command = args[0]
    full = [*args, "--prometheus", nowhere()] if command in ("run", "retro") else args
    done = gate(*full)
    assert done.returncode == 3, done.stdout + done.stderr
    assert message in done.stderr


def test_invalid_spec_names_the_line(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("metrics:\n  - name: a\n    query: up\n    successCondition: os.system(1)\n")
    done = gate("retro", "--prometheus", nowhere(), "--spec", str(spec), "--from=-5m")
    assert done.returncode == 3
    assert "4:23: error: metrics[0].successCondition" in done.stderr


def test_unreachable_prometheus_reports_everywhere(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    url = nowhere()
    done = gate(
        "retro",
        "--prometheus",
        url,
        "--from=-5m",
        "--retries",
        "0",
        "--json",
        "-",
        "--markdown",
        str(tmp_path / "report.md"),
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert done.returncode == 3
    document = json.loads(done.stdout)
    assert document["verdict"] == "ERROR"
    assert document["mode"] == "retro"
    assert f"Prometheus at {url} is unreachable after 1 attempt" in document["reason"]
    assert {c["phase"] for c in document["checks"]} == {"Error"}
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.startswith("## genesis gate retro: ERROR")
    assert summary.read_text() == "earlier step\n" + markdown + "\n"
    assert "verdict: ERROR" in done.stderr


def test_help_documents_exit_codes() -> None:
    done = gate("--help")
    assert done.returncode == 0
    assert "3 ERROR" in " ".join(done.stdout.split())
