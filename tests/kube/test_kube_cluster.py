"""The cluster the chart and deploy tests rely on: a real API server, real pods, real Services."""

from __future__ import annotations

import threading
import time
import urllib.error
from collections import Counter

import pytest

from harness.kube.access import KubeCluster
from harness.kube.settings import external_kubeconfig, kube_version
from harness.kube.workloads import (
    agent_deployment,
    fetch_json,
    node_port_service,
    wait_for_answer,
)

pytestmark = [pytest.mark.kube, pytest.mark.integration]


def test_server_and_client_report_the_pinned_version(kube_cluster: KubeCluster) -> None:
    versions = kube_cluster.kubectl.json("version")
    if external_kubeconfig() is None:
        assert versions["serverVersion"]["gitVersion"] == kube_version().git
        assert versions["clientVersion"]["gitVersion"] == kube_version().git
    assert int(versions["serverVersion"]["minor"].rstrip("+")) >= 28


def test_the_node_is_ready(kube_cluster: KubeCluster) -> None:
    nodes = kube_cluster.kubectl.json("get", "nodes")["items"]
    assert nodes, "the cluster has no node"
    ready = {
        node["metadata"]["name"]: condition["status"]
        for node in nodes
        for condition in node["status"]["conditions"]
        if condition["type"] == "Ready"
    }
    assert set(ready.values()) == {"True"}, ready


def test_deployment_becomes_available_behind_a_node_port(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    kube_cluster.kubectl.apply(
        agent_deployment("web", version="v1"), node_port_service("web"), namespace=kube_namespace
    )
    kube_cluster.kubectl(
        "rollout", "status", "deployment/web", "-n", kube_namespace, "--timeout=60s", timeout=70
    )
    pods = kube_cluster.kubectl.json("get", "pods", "-n", kube_namespace, "-l", "app=web")["items"]
    assert len(pods) == 2
    assert all(status["ready"] for pod in pods for status in pod["status"]["containerStatuses"])

    url = kube_cluster.service_url("web", kube_namespace)
    answers = [wait_for_answer(url) for _ in range(20)]
    assert {answer["version"] for answer in answers} == {"v1"}
    names = {pod["metadata"]["name"] for pod in pods}
    assert {answer["hostname"] for answer in answers} <= names


def test_rolling_update_serves_every_request(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    kube_cluster.kubectl.apply(
        agent_deployment("roll", version="v1"), node_port_service("roll"), namespace=kube_namespace
    )
    kube_cluster.kubectl(
        "rollout", "status", "deployment/roll", "-n", kube_namespace, "--timeout=60s", timeout=70
    )
    url = kube_cluster.service_url("roll", kube_namespace)
    wait_for_answer(url)

    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                outcomes[fetch_json(url)["version"]] += 1
            except (urllib.error.URLError, OSError) as error:
                outcomes[f"error: {error}"] += 1
            time.sleep(0.005)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        kube_cluster.kubectl.apply(agent_deployment("roll", version="v2"), namespace=kube_namespace)
        kube_cluster.kubectl(
            "rollout",
            "status",
            "deployment/roll",
            "-n",
            kube_namespace,
            "--timeout=90s",
            timeout=100,
        )
        time.sleep(1.0)
    finally:
        stop.set()
        worker.join(timeout=10)

    print(f"rolling update under load: {dict(outcomes)}")
    errors = {key: count for key, count in outcomes.items() if key.startswith("error")}
    assert not errors, f"requests failed during the rollout: {errors} of {sum(outcomes.values())}"
    assert outcomes["v1"] > 0
    assert outcomes["v2"] > 0
    # kube-proxy drops the old pods' endpoints on its next sync, later on a busy machine.
    deadline = time.monotonic() + 20
    while {fetch_json(url)["version"] for _ in range(10)} != {"v2"}:
        assert time.monotonic() < deadline, "v1 pods still answer 20 s after the rollout"
        time.sleep(0.5)


def test_logs_and_exec_reach_the_kubelet(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    kube_cluster.kubectl.apply(agent_deployment("talk", replicas=1), namespace=kube_namespace)
    kube_cluster.kubectl(
        "rollout", "status", "deployment/talk", "-n", kube_namespace, "--timeout=60s", timeout=70
    )
    logs = kube_cluster.kubectl("logs", "deployment/talk", "-n", kube_namespace)
    assert 'serving on :8080 version="v1"' in logs
    # The image holds nothing but the agent, so exec runs the agent itself.
    result = kube_cluster.kubectl.run(
        "exec", "deployment/talk", "-n", kube_namespace, "--", "/agent", "nonsense", check=False
    )
    assert result.returncode == 2
    assert 'unknown mode "nonsense"' in result.stderr


def test_diagnostics_show_a_crashing_pod(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    """What a failing test's report gets: the failing pod's own output and its events."""
    crashing = agent_deployment("crash", replicas=1)
    crashing["spec"]["template"]["spec"]["containers"][0]["command"] = ["/agent", "no-such-mode"]
    kube_cluster.kubectl.apply(crashing, namespace=kube_namespace)

    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline:
        text = kube_cluster.diagnostics(kube_namespace)
        if 'unknown mode "no-such-mode"' in text and "BackOff" in text:
            break
        time.sleep(1)
    assert 'unknown mode "no-such-mode"' in text
    assert "BackOff" in text
    assert "--- events" in text
