"""The judge benchmark runs as one command and prints the comparison table."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    output = tmp_path / "table.md"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.gate", "--trials", "3", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    table = output.read_text(encoding="utf-8")
    assert table.splitlines()[0].startswith("| scenario | should | genesis |")
    assert "| errors +2 pp | FAIL |" in table
    assert "variance only" in table
    assert "3 simulated 5-minute analyses per scenario" in table
    assert table.strip() in completed.stdout


def test_benchmark_refuses_zero_trials() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.gate", "--trials", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "--trials must be at least 1" in completed.stderr


def test_benchmark_runs_one_scenario_and_refuses_unknown_ones() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "benchmarks.gate", "--trials", "2", "--only", "errors +5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    rows = [line for line in ran.stdout.splitlines() if line.startswith("| errors")]
    assert [row.split(" | ")[0] for row in rows] == ["| errors +5 pp"]
    unknown = subprocess.run(
        [sys.executable, "-m", "benchmarks.gate", "--only", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unknown.returncode == 2
    assert "no scenario matches 'nope'" in unknown.stderr
