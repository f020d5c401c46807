"""An image built with podman runs in the cluster after load_image(), without any registry."""

from __future__ import annotations

import io
import secrets
import tarfile
from collections.abc import Iterator

import pytest

from harness.kube.access import KubeCluster
from harness.kube.build import build_agent
from harness.kube.images import podman
from harness.kube.workloads import agent_deployment, node_port_service, wait_for_answer
from harness.processes import require_binary

pytestmark = [pytest.mark.kube, pytest.mark.integration]


@pytest.fixture
def podman_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A podman image made from a tarball, as a service team's `podman build` would leave one."""
    require_binary("podman", "podman")
    agent = build_agent()
    rootfs = tmp_path_factory.mktemp("rootfs") / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add(agent, arcname="agent")
        # An image from `podman build` has more than one file; a directory is enough to show it.
        info = tarfile.TarInfo("etc")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info, io.BytesIO())
    ref = f"localhost/genesis-kube-test/agent:{secrets.token_hex(4)}"
    podman(
        "import",
        "--change",
        'ENTRYPOINT ["/agent"]',
        "--change",
        'CMD ["serve"]',
        str(rootfs),
        ref,
    )
    yield ref
    podman("rmi", "--force", ref, check=False)


def test_podman_image_runs_after_load_image(
    kube_cluster: KubeCluster, kube_namespace: str, podman_image: str
) -> None:
    kube_cluster.load_image(podman_image)
    kube_cluster.kubectl.apply(
        agent_deployment("podman-built", version="from-podman", replicas=1, image=podman_image),
        node_port_service("podman-built"),
        namespace=kube_namespace,
    )
    kube_cluster.kubectl(
        "rollout",
        "status",
        "deployment/podman-built",
        "-n",
        kube_namespace,
        "--timeout=60s",
        timeout=70,
    )
    pod = kube_cluster.kubectl.json("get", "pods", "-n", kube_namespace, "-l", "app=podman-built")[
        "items"
    ][0]
    assert pod["spec"]["containers"][0]["image"] == podman_image
    answer = wait_for_answer(kube_cluster.service_url("podman-built", kube_namespace))
    assert answer["version"] == "from-podman"
