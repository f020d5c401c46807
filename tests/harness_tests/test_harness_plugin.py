"""The fixtures' reporting, seen from a real pytest run in a subprocess.

A failing test must show the server logs; a missing binary must skip naming its Debian package.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.processes import require_binary

pytestmark = pytest.mark.integration

TESTS_DIR = Path(__file__).resolve().parent.parent

INNER_TESTS = """
def test_fails_with_servers(redis_server, openai_stub):
    redis_server.command("SET", "k", "v")
    assert False, "deliberate failure"


def test_needs_prometheus(prometheus_server):
    prometheus_server()
"""


def run_inner_pytest(tmp_path: Path, path_env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    # A pytest.ini of its own keeps the outer project's config (and its addopts) out.
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    )
    env = {
        **os.environ,
        "PATH": path_env,
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "harness.plugin", "-p", "no:cacheprovider", "-rs"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_failure_report_carries_server_log_tails(tmp_path: Path) -> None:
    redis = require_binary("redis-server", "redis-server")
    # PATH has redis-server but not prometheus, so the second inner test must skip.
    only_redis = tmp_path / "bin"
    only_redis.mkdir()
    (only_redis / "redis-server").symlink_to(redis)

    result = run_inner_pytest(tmp_path, str(only_redis))
    output = result.stdout + result.stderr

    assert result.returncode == 1, output
    assert "1 failed, 1 skipped" in output
    assert "redis log tail" in output
    assert "Ready to accept connections" in output
    assert "openai-stub log tail" in output
    assert "listening on http://127.0.0.1:" in output
    assert "install the Debian package 'prometheus'" in output
