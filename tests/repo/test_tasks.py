"""tasks.py: the invoke front door lists its tasks and refuses what it cannot do."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _invoke(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("invoke") or pytest.fail("invoke is in the dev extra; reinstall it")
    return subprocess.run(
        [binary, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_invoke_lists_the_tasks() -> None:
    listing = _invoke("--list")
    assert listing.returncode == 0, listing.stderr
    names = {line.split()[0] for line in listing.stdout.splitlines()[2:] if line.strip()}
    assert {"serve", "lint", "tests", "ci", "cluster", "gate"} <= names


def test_an_unknown_cluster_action_is_refused_by_name() -> None:
    result = _invoke("cluster", "--action", "explode")
    assert result.returncode == 1
    assert "unknown action 'explode'" in result.stderr
    assert "build|up|status|down" in result.stderr


def test_task_help_documents_the_options() -> None:
    result = _invoke("--help", "serve")
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout
    assert "offline (demo text, no network) or openai" in result.stdout


def test_gate_task_passes_the_gate_exit_code_through() -> None:
    from harness.processes import free_port

    result = _invoke("gate", "--prometheus", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "unreachable" in result.stdout + result.stderr
