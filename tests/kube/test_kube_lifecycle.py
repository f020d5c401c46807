"""Teardown of a busy local cluster leaves the host clean, failures name their component, and a
warm restart is quick.

This stops the session's own cluster (after it ran pods, Services and NodePorts, so there are
mounts, network namespaces and iptables rules to clean) and starts it again for later modules.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.kube import teardown
from harness.kube.access import KubeCluster
from harness.kube.build import Binaries
from harness.kube.cluster import (
    BRIDGE,
    CONTAINER_LOG_LINKS,
    NETWORK_NAME,
    NODE_NAME,
    ClusterError,
    LocalCluster,
)
from harness.kube.workloads import agent_deployment, node_port_service, wait_for_answer
from harness.processes import ProcessFailed

pytestmark = [pytest.mark.kube, pytest.mark.integration]


@pytest.fixture(scope="module")
def local(kube_cluster: KubeCluster) -> Iterator[LocalCluster]:
    """The session's local cluster, running again when this module is done."""
    if kube_cluster.local is None:
        pytest.skip("the cluster is not this session's own (GENESIS_TEST_KUBECONFIG or `up`)")
    yield kube_cluster.local
    if not kube_cluster.local.is_running():
        kube_cluster.local.start()


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def kube_rules() -> list[str]:
    saved = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    saved += subprocess.run(["ip6tables-save"], capture_output=True, text=True, check=False).stdout
    return [
        line for line in saved.splitlines() if line.startswith(":KUBE-") or NETWORK_NAME in line
    ]


def assert_host_clean(run_dir: Path) -> None:
    """Checks by other means than the teardown's own bookkeeping."""
    assert processes_mentioning(str(run_dir)) == []
    assert teardown.mounts_under(run_dir) == []
    assert kube_rules() == []
    assert not Path(f"/sys/class/net/{BRIDGE}").exists()
    if CONTAINER_LOG_LINKS.is_dir():
        assert not [p for p in CONTAINER_LOG_LINKS.iterdir() if str(run_dir) in str(p.resolve())]


def test_teardown_of_a_busy_cluster_leaves_nothing(
    local: LocalCluster,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    request: pytest.FixtureRequest,
) -> None:
    kube_cluster.kubectl.apply(
        agent_deployment("busy", replicas=2), node_port_service("busy"), namespace=kube_namespace
    )
    kube_cluster.kubectl(
        "rollout", "status", "deployment/busy", "-n", kube_namespace, "--timeout=60s", timeout=70
    )
    wait_for_answer(kube_cluster.service_url("busy", kube_namespace))
    run_dir = local.layout.root
    assert teardown.mounts_under(run_dir), "running pods should have mounts to clean up"
    assert kube_rules(), "kube-proxy should have programmed iptables"
    assert teardown.shim_pids(local.containerd_socket), "pods should run under containerd shims"

    leftovers = local.stop()

    assert leftovers.clean, str(leftovers)
    assert_host_clean(run_dir)
    # user_properties, not record_property: the latter warns under junit's xunit2 family.
    request.node.user_properties.append(("teardown_seconds", local.timings["stop"]))


def test_a_component_that_dies_is_named_with_its_log(local: LocalCluster, tmp_path: Path) -> None:
    """Start with a kube-scheduler that exits at once: the error says so and shows its output."""
    assert not local.is_running()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command in local.binaries.bin_dir.iterdir():
        (bin_dir / command.name).symlink_to(command)
    broken = bin_dir / "kube-scheduler"
    broken.unlink()
    broken.write_text("#!/bin/sh\necho 'scheduler exploded: no config for you' >&2\nexit 3\n")
    broken.chmod(0o755)
    binaries = Binaries(local.binaries.version, bin_dir, local.binaries.agent)
    cluster = LocalCluster(binaries, tmp_path / "run", progress=lambda _: None)

    with pytest.raises((ProcessFailed, ClusterError)) as failure:
        cluster.start()

    message = str(failure.value)
    assert "kube-scheduler" in message
    assert "exited with code 3" in message
    assert "scheduler exploded: no config for you" in message
    assert_host_clean(cluster.layout.root)


def test_warm_restart_is_ready_with_a_node(
    local: LocalCluster, kube_cluster: KubeCluster, request: pytest.FixtureRequest
) -> None:
    if not local.is_running():
        local.start()
    request.node.user_properties.append(("warm_start_seconds", local.timings["start"]))
    nodes = kube_cluster.kubectl.json("get", "nodes")["items"]
    assert [node["metadata"]["name"] for node in nodes] == [NODE_NAME]
    print(f"teardown {local.timings.get('stop')}s, warm start {local.timings['start']}s")
