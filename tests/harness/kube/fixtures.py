"""pytest fixtures for tests on a real Kubernetes cluster (load with pytest_plugins).

- `kube_cluster` (session): a `KubeCluster`; the local cluster, started once per session, or the
  one GENESIS_TEST_KUBECONFIG names.
- `kubeconfig` (session): its kubeconfig path, for tools that take one (helm, kubectl, genesis).
- `kube_namespace` (module): a fresh namespace per test module, deleted afterwards.
A failing test that used `kube_namespace` gets that namespace's pods, events and pod logs
attached to its report.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Generator, Iterator

import pytest

from harness.kube import teardown
from harness.kube.access import KubeCluster
from harness.kube.build import build
from harness.kube.cluster import (
    APT_PACKAGES,
    LocalCluster,
    detached_run,
    missing_prerequisites,
    read_state,
)
from harness.kube.settings import external_kubeconfig, run_root

_KEEP_RUN_DIRS = 3


def _prune_old_runs() -> None:
    """Keep the logs of the last few sessions, not of every session ever run."""
    root = run_root()
    runs = sorted(root.glob("pytest-*"), key=lambda path: path.stat().st_mtime, reverse=True)
    for old in runs[_KEEP_RUN_DIRS:]:
        # Never a run dir that another session's cluster still uses.
        pids = read_state(old).get("pids", {}).values()
        if not teardown.mounts_under(old) and not any(teardown.alive(pid) for pid in pids):
            shutil.rmtree(old, ignore_errors=True)


def _progress(message: str) -> None:
    # Visible with -s and in CI logs; the session fixture may build for minutes on a cold cache.
    print(f"[kube {time.strftime('%H:%M:%S')}] {message}", flush=True)


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    external = external_kubeconfig()
    if external is not None:
        yield KubeCluster.from_kubeconfig(external)
        return
    by_hand = detached_run()
    if by_hand is not None:
        # A developer's `python -m harness.kube up` cluster: reuse it rather than wait for it.
        _progress(f"reusing the local cluster started by hand in {by_hand}")
        yield KubeCluster.from_kubeconfig(by_hand / "kubeconfig")
        return
    missing = missing_prerequisites()
    if missing:
        pytest.skip(
            "no local Kubernetes cluster: missing " + "; ".join(missing)
            + f" (all packages: apt-get install -y {' '.join(APT_PACKAGES)})"
        )  # fmt: skip
    binaries = build(progress=_progress)
    _prune_old_runs()
    local = LocalCluster(binaries, run_root() / f"pytest-{os.getpid()}", progress=_progress)
    local.start()
    try:
        yield KubeCluster.from_local(local)
    finally:
        leftovers = local.stop()
        if not leftovers.clean:
            raise RuntimeError(f"the local cluster left traces behind: {leftovers}")


@pytest.fixture(scope="session")
def kubeconfig(kube_cluster: KubeCluster) -> str:
    return str(kube_cluster.kubeconfig)


@pytest.fixture(scope="module")
def kube_namespace(kube_cluster: KubeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    module = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    name = kube_cluster.create_namespace(module.replace("_", "-"))
    yield name
    kube_cluster.delete_namespace(name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report = outcome.get_result()
    if report.passed or report.skipped or call.excinfo is None:
        return
    funcargs = getattr(item, "funcargs", {})
    namespace = funcargs.get("kube_namespace")
    cluster = funcargs.get("kube_cluster")
    if not isinstance(namespace, str) or not isinstance(cluster, KubeCluster):
        return
    try:
        text = cluster.diagnostics(namespace)
    except Exception as error:
        text = f"(could not collect diagnostics: {error})"
    report.sections.append((f"kubernetes namespace {namespace}", text))
