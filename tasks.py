"""invoke tasks: the day-to-day front door of this repository (`invoke --list`).

Each task is a thin shell over a genesis command or a nox session, so a task, a nox session
and a CI workflow never disagree about what "run the tests" means. The deploy tasks of the
design (`invoke deploy|promote|rollback|status`) arrive with genesis.deploy; `invoke gate` is
here already.
"""

from __future__ import annotations

import shlex

from invoke.context import Context
from invoke.tasks import task


@task(
    help={
        "port": "port of the chat service (default 8000)",
        "provider": "offline (demo text, no network) or openai",
    }
)
def serve(c: Context, port: int = 8000, provider: str = "offline") -> None:
    """Run the chat service on this machine (`genesis serve`)."""
    c.run(f"genesis serve --port {port} --provider {shlex.quote(provider)}", pty=True, echo=True)


@task
def lint(c: Context) -> None:
    """ruff, mypy --strict and yamllint (`nox -s lint`)."""
    c.run("nox -s lint", pty=True, echo=True)


@task(help={"marker": 'a pytest -m expression, e.g. "not integration"'})
def tests(c: Context, marker: str = "") -> None:
    """The test suite on real servers (`nox -s tests`)."""
    extra = f" -- -m {shlex.quote(marker)}" if marker else ""
    c.run(f"nox -s tests{extra}", pty=True, echo=True)


@task
def ci(c: Context) -> None:
    """Everything CI runs (`nox -s ci`)."""
    c.run("nox -s ci", pty=True, echo=True)


@task(help={"action": "build, up, status or down"})
def cluster(c: Context, action: str = "status") -> None:
    """The local test Kubernetes cluster (`nox -s cluster -- ACTION`)."""
    if action not in {"build", "up", "status", "down"}:
        raise SystemExit(f"invoke cluster: unknown action {action!r}; use build|up|status|down")
    c.run(f"nox -s cluster -- {action}", pty=True, echo=True)


@task(
    help={
        "prometheus": "Prometheus base URL, e.g. http://127.0.0.1:9090",
        "spec": "analysis spec file (default: the built-in analysis)",
        "baseline": "baseline track (default stable)",
        "canary": "canary track (default canary)",
    }
)
def gate(
    c: Context, prometheus: str, spec: str = "", baseline: str = "stable", canary: str = "canary"
) -> None:
    """Judge the canary against the baseline on Prometheus (`genesis gate run`).

    Exits with the gate's own code: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR.
    """
    command = [
        "genesis", "gate", "run", "--prometheus", prometheus,
        "--baseline-track", baseline, "--canary-track", canary,
    ]  # fmt: skip
    if spec:
        command += ["--spec", spec]
    result = c.run(shlex.join(command), pty=True, echo=True, warn=True)
    if result is not None and result.exited:
        raise SystemExit(result.exited)
