"""The ways a developer reaches into the cluster beyond Services: port-forward and Helm."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.error
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from harness.kube.access import KubeCluster
from harness.kube.images import PROBE_IMAGE
from harness.kube.workloads import agent_deployment, fetch_json, node_port_service, wait_for_answer

pytestmark = [pytest.mark.kube, pytest.mark.integration]

_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080")


def test_port_forward_reaches_a_pod(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    kube_cluster.kubectl.apply(agent_deployment("fwd", replicas=1), namespace=kube_namespace)
    kube_cluster.kubectl(
        "rollout", "status", "deployment/fwd", "-n", kube_namespace, "--timeout=60s", timeout=70
    )
    forward = subprocess.Popen(
        [
            str(kube_cluster.kubectl.binary),
            "--kubeconfig",
            str(kube_cluster.kubeconfig),
            "port-forward",
            "-n",
            kube_namespace,
            "deployment/fwd",
            # Port 0: kubectl picks a free local port and says which.
            ":8080",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        match = _FORWARDING.search(line)
        assert match, f"unexpected port-forward output: {line!r}"
        answer = wait_for_answer(f"http://127.0.0.1:{match.group(1)}/", timeout=20)
        pods = kube_cluster.kubectl.json("get", "pods", "-n", kube_namespace, "-l", "app=fwd")
        assert answer["hostname"] == pods["items"][0]["metadata"]["name"]
        assert answer["version"] == "v1"
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def _write_chart(root: Path) -> Path:
    """A minimal chart of the probe workload: a Deployment and a NodePort Service."""
    chart = root / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": "probe",
                "version": "0.1.0",
                # Proves the cluster reports a real version: Helm checks this constraint.
                "kubeVersion": ">=1.30.0-0",
            }
        )
    )
    (chart / "values.yaml").write_text(yaml.safe_dump({"version": "v1"}))
    deployment = agent_deployment("helm-probe", replicas=1, image=PROBE_IMAGE)
    deployment["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "VERSION", "value": "{{ .Values.version }}"}
    ]
    documents = [deployment, node_port_service("helm-probe")]
    (chart / "templates" / "probe.yaml").write_text(yaml.safe_dump_all(documents))
    return chart


def test_helm_release_through_helm_python_sdk(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    chart = _write_chart(tmp_path)
    with helm.Config(kubeconfig_path=kube_cluster.kubeconfig, namespace=kube_namespace) as config:
        release = config.install(chart, "probe", {"version": "v1"}, wait="watcher", timeout=90)
        assert release["status"] == "deployed"
        url = kube_cluster.service_url("helm-probe", kube_namespace)
        assert wait_for_answer(url)["version"] == "v1"

        upgraded = config.upgrade(chart, "probe", {"version": "v2"}, wait="watcher", timeout=90)
        assert upgraded["revision"] == 2
        deadline = time.monotonic() + 30
        while fetch_json(url)["version"] != "v2":
            assert time.monotonic() < deadline, "the upgrade never reached the Service"
            time.sleep(0.5)

        config.rollback("probe", version=1, wait="watcher", timeout=90)
        status = config.status("probe")
        assert status["status"] == "deployed"
        assert status["revision"] == 3
        history = [entry["revision"] for entry in config.history("probe")]
        assert history == [1, 2, 3]
        config.uninstall("probe", wait="watcher", timeout=60)
    # kube-proxy drops the NodePort on its next sync after the Service is gone.
    deadline = time.monotonic() + 30
    while True:
        try:
            fetch_json(url, timeout=2)
        except (urllib.error.URLError, OSError):
            break
        assert time.monotonic() < deadline, "the uninstalled release still answers"
        time.sleep(0.5)
    for kind in ("deployment", "service"):
        gone = kube_cluster.kubectl.run(
            "get", kind, "helm-probe", "-n", kube_namespace, check=False
        )
        assert "NotFound" in gone.stderr, f"{kind} helm-probe outlived the uninstall"
