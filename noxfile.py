"""Contributor entry points: `nox -s lint`, `nox -s tests`, and `nox -s ci` for both.

genesis is always installed from this checkout: the name `genesis` on the public index
belongs to an unrelated project, so nothing here asks an index for it.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["ci"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
# The checkout plus its extras; every other requirement comes from the index.
PROJECT = ".[gate,dev]"


def _install(session: nox.Session) -> None:
    session.install("-e", PROJECT)
    # Guard against a resolver ever swapping in the unrelated `genesis` from the index.
    session.run(
        "python",
        "-c",
        "import genesis, genesis.service; from importlib.metadata import metadata; "
        "assert 'metric-gated delivery' in metadata('genesis')['Summary'], 'not our genesis'",
        silent=True,
    )


def _lint(session: nox.Session) -> None:
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("yamllint", "--strict", ".")


def _tests(session: nox.Session) -> None:
    # pytest-cov combines the data that subprocesses (genesis serve, its workers) wrote.
    session.run(
        "pytest",
        "--cov",
        "--cov-report=term-missing:skip-covered",
        "--cov-report=xml",
        "--junitxml=junit.xml",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (check and format), mypy --strict, yamllint."""
    _install(session)
    _lint(session)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite on real servers, with branch coverage >= 90% and junit XML."""
    _install(session)
    _tests(session)


@nox.session(python=PYTHON)
def ci(session: nox.Session) -> None:
    """Everything CI runs, in one environment: lint, then tests."""
    _install(session)
    _lint(session)
    _tests(session)


@nox.session(python=PYTHON)
def cluster(session: nox.Session) -> None:
    """The local test Kubernetes cluster: `nox -s cluster -- build|up|status|down`.

    `up` builds the binaries when the cache is cold, starts a cluster that outlives the
    command and prints `KUBECONFIG=<path>` last; the test fixtures reuse it until `down`.
    """
    if not session.posargs or session.posargs[0] not in {"build", "up", "status", "down"}:
        session.error("usage: nox -s cluster -- build|up|status|down [--run-dir DIR]")
    # The harness shares tests/harness/processes.py with the suite, which imports pytest.
    session.install("pyyaml>=6", "pytest>=8")
    session.chdir("tests")
    session.run("python", "-m", "harness.kube", *session.posargs)
