"""invoke tasks: the day-to-day front door of this repository (`invoke --list`).

Each task is a thin shell over a genesis command or a nox session, so a task, a nox session
and a CI workflow never disagree about what "run the tests" means. The deploy tasks of the
design (`invoke deploy|promote|rollback|status`) arrive with genesis.deploy.
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
