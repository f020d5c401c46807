"""What a test needs from a cluster, whether the harness runs it or someone else does.

`KubeCluster` wraps a kubeconfig: the local cluster from cluster.py, or an existing one named by
GENESIS_TEST_KUBECONFIG (kind on a GitHub runner). Tests use only this, so they run on both.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.kube import images
from harness.kube.build import cached
from harness.kube.cluster import LocalCluster, read_state
from harness.kube.kubectl import Kubectl, KubectlError
from harness.kube.settings import ENV_IMAGE_LOADER, ENV_NODE_HOST, kube_version

_MAX_PODS_IN_REPORT = 10
_LOG_LINES = 40


def _external_kubectl_binary() -> Path:
    """Our own kubectl when it is built (it matches the local cluster), else the one on PATH."""
    built = cached(kube_version())
    if built is not None:
        return built.path("kubectl")
    found = shutil.which("kubectl")
    if found is None:
        raise FileNotFoundError(
            "no kubectl: run `python -m harness.kube build` (from tests/) or put kubectl on PATH"
        )
    return Path(found)


@dataclass
class KubeCluster:
    kubeconfig: Path
    kubectl: Kubectl
    local: LocalCluster | None = None

    @classmethod
    def from_local(cls, cluster: LocalCluster) -> KubeCluster:
        return cls(kubeconfig=cluster.kubeconfig, kubectl=cluster.kubectl, local=cluster)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path) -> KubeCluster:
        return cls(kubeconfig=kubeconfig, kubectl=Kubectl(_external_kubectl_binary(), kubeconfig))

    def started_here(self) -> bool:
        """Also true for a kubeconfig of a cluster `python -m harness.kube up` started."""
        return self.local is not None or bool(read_state(self.kubeconfig.parent))

    # ---- namespaces ---------------------------------------------------------------------

    def create_namespace(self, hint: str) -> str:
        """A fresh namespace whose name shows which test module made it."""
        stem = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")[:40].strip("-") or "test"
        name = f"{stem}-{secrets.token_hex(3)}"
        self.kubectl("create", "namespace", name)
        return name

    def delete_namespace(self, name: str) -> None:
        # Not waiting: the namespace controller finishes in the background.
        self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")

    # ---- images -------------------------------------------------------------------------

    def _containerd_socket(self) -> Path | None:
        if self.local is not None:
            return self.local.containerd_socket
        # GENESIS_TEST_KUBECONFIG may name a cluster `python -m harness.kube up` started.
        socket = read_state(self.kubeconfig.parent).get("containerd_socket")
        return Path(socket) if socket else None

    def load_image(self, ref: str) -> None:
        """Move image `ref` from podman into the cluster; pods then use it without pulling."""
        loader = os.environ.get(ENV_IMAGE_LOADER, "").strip()
        socket = self._containerd_socket()
        if not loader and socket is None:
            raise images.ImageError(
                f"cannot load {ref} into the cluster of {self.kubeconfig}: set {ENV_IMAGE_LOADER}"
                " to a command such as 'kind load docker-image {ref}'"
                " or 'kind load image-archive {archive}'"
            )
        with tempfile.TemporaryDirectory(prefix="genesis-image-") as scratch:
            archive = Path(scratch) / "image.tar"
            if loader:
                if "{archive}" in loader:
                    images.podman_save(ref, archive)
                command = [part.format(ref=ref, archive=archive) for part in shlex.split(loader)]
                result = subprocess.run(command, capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    raise images.ImageError(f"{loader!r} failed for {ref}: {result.stderr.strip()}")
                return
            assert socket is not None
            images.podman_save(ref, archive)
            images.ctr_import(socket, archive)

    # ---- services -----------------------------------------------------------------------

    def node_host(self) -> str:
        """Where NodePorts answer: 127.0.0.1 locally, else the override or the node's address."""
        if self.started_here():
            return "127.0.0.1"
        override = os.environ.get(ENV_NODE_HOST, "").strip()
        if override:
            return override
        nodes = self.kubectl.json("get", "nodes")["items"]
        for address in nodes[0]["status"]["addresses"] if nodes else []:
            if address["type"] == "InternalIP":
                return str(address["address"])
        raise KubectlError(f"no node InternalIP in {self.kubeconfig}; set {ENV_NODE_HOST}")

    def service_url(
        self, name: str, namespace: str, port: int | str | None = None, scheme: str = "http"
    ) -> str:
        """`scheme://host:<NodePort>` of a NodePort Service (port picks by number or name)."""
        service: dict[str, Any] = self.kubectl.json("get", "service", name, "-n", namespace)
        ports = service["spec"].get("ports", [])
        chosen = [p for p in ports if port is None or port in (p.get("port"), p.get("name"))]
        if not chosen or "nodePort" not in chosen[0]:
            raise KubectlError(
                f"service {namespace}/{name} has no NodePort"
                f"{f' for port {port!r}' if port is not None else ''};"
                f" its type is {service['spec'].get('type')}"
            )
        return f"{scheme}://{self.node_host()}:{chosen[0]['nodePort']}"

    # ---- diagnostics --------------------------------------------------------------------

    def diagnostics(self, namespace: str) -> str:
        """Pods, events and pod logs of `namespace`, for the report of a failed test."""
        sections: list[str] = []

        def add(title: str, *args: str) -> None:
            result = self.kubectl.run(*args, check=False, timeout=20)
            body = (result.stdout or result.stderr).rstrip() or "(nothing)"
            sections.append(f"--- {title}\n{body}")

        add(
            "workloads",
            "get",
            "pods,deployments,replicasets,services",
            "-n",
            namespace,
            "-o",
            "wide",
        )
        add("events", "get", "events", "-n", namespace, "--sort-by=.lastTimestamp")
        result = self.kubectl.run("get", "pods", "-n", namespace, "-o", "json", check=False)
        pods = []
        if result.returncode == 0:
            pods = json.loads(result.stdout).get("items", [])
        # Failing pods first: they explain most failures.
        pods.sort(key=_pod_is_healthy)
        for pod in pods[:_MAX_PODS_IN_REPORT]:
            name = pod["metadata"]["name"]
            add(f"logs {name}", "logs", name, "-n", namespace, "--all-containers", "--prefix",
                f"--tail={_LOG_LINES}")  # fmt: skip
            if any(s.get("restartCount", 0) for s in pod["status"].get("containerStatuses", [])):
                add(f"previous logs {name}", "logs", name, "-n", namespace, "--all-containers",
                    "--prefix", "--previous", f"--tail={_LOG_LINES}")  # fmt: skip
        if self.local is not None:
            for component in ("kubelet", "containerd", "kube-proxy"):
                process = self.local.processes.get(component)
                if process is not None:
                    sections.append(f"--- {component} log (tail)\n{process.log_tail(40)}")
        return "\n".join(sections)


def _pod_is_healthy(pod: dict[str, Any]) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return bool(statuses) and all(s.get("ready") and not s.get("restartCount") for s in statuses)
