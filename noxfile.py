"""Contributor entry points: `nox -s lint`, `nox -s tests`, and `nox -s ci` for both.

genesis is always installed from this checkout: the name `genesis` on the public index
belongs to an unrelated project, so nothing here asks an index for it.

The chat UI in web/ is part of the sessions: ESLint, Prettier and tsc in `lint`; Jest and the
Vite build (which the browser tests serve) in `tests`; any wheel build (`python -m build`)
runs the Vite build through hatch_build.py. Node.js 20 and npm must be on PATH; `npm ci`
runs only when node_modules is missing or older than the lockfile.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["ci"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
# The checkout plus its extras; every other requirement comes from the index.
PROJECT = ".[gate,redis,dev]"
WEB = Path(__file__).resolve().parent / "web"


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


def _npm(session: nox.Session, *args: str) -> None:
    with session.chdir(WEB):
        session.run("npm", *args, external=True)


def _web_install(session: nox.Session) -> None:
    # npm writes node_modules/.package-lock.json on every install; when it is older than the
    # lockfile, the installed tree may differ from the locked one (hatch_build.py does the same).
    installed = WEB / "node_modules" / ".package-lock.json"
    lock = WEB / "package-lock.json"
    if installed.is_file() and installed.stat().st_mtime >= lock.stat().st_mtime:
        session.log("web/node_modules matches package-lock.json; skipping npm ci")
        return
    _npm(session, "ci", "--no-audit", "--no-fund")


def _web_build(session: nox.Session) -> None:
    """Vite builds web/ into src/genesis/service/web_dist, where `genesis serve` finds it."""
    _web_install(session)
    _npm(session, "run", "build")


def _lint(session: nox.Session) -> None:
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("yamllint", "--strict", ".")
    _web_install(session)
    _npm(session, "run", "lint")
    _npm(session, "run", "format:check")
    _npm(session, "run", "typecheck")


def _tests(session: nox.Session) -> None:
    # Jest (jsdom, React Testing Library) with coverage, then the build the browser tests use.
    _web_install(session)
    _npm(session, "test", "--", "--ci")
    _npm(session, "run", "build")
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
    """ruff (check and format), mypy --strict, yamllint; ESLint, Prettier and tsc for web/."""
    _install(session)
    _lint(session)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Jest for web/, then the whole suite on real servers (headless Chromium included),
    with branch coverage >= 90% and junit XML."""
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


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """sdist, wheel, CycloneDX SBOM and the container image: `nox -s build [-- --local-base]`.

    The logic is genesis.pipeline.build (`-- --help` lists the options); `--local-base` makes
    and uses a debootstrap base image where no registry is reachable.
    """
    import os

    _install(session)
    # The wheel ships the chart: refresh its copies of the dashboards and rules first.
    session.run("python", "-m", "genesis.pipeline.chart", "sync")
    podman_conf = "tests/harness/kube/containers.conf"
    # podman on these machines needs runc, cgroupfs and low ulimits (docs/container-image.md).
    env = (
        {} if "CONTAINERS_CONF" in os.environ else {"CONTAINERS_CONF": os.path.abspath(podman_conf)}
    )
    session.run("python", "-m", "genesis.pipeline.build", *session.posargs, env=env)
