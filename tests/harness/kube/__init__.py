"""A real Kubernetes for the tests: built from source, started in seconds, torn down cleanly.

See docs/testing-kubernetes.md. Tests use the fixtures in harness.kube.fixtures
(`kube_cluster`, `kubeconfig`, `kube_namespace`); CI pre-builds with `python -m harness.kube build`.
"""

from harness.kube.access import KubeCluster
from harness.kube.build import Binaries, build
from harness.kube.cluster import ClusterError, LocalCluster
from harness.kube.kubectl import Kubectl, KubectlError

__all__ = [
    "Binaries",
    "ClusterError",
    "KubeCluster",
    "Kubectl",
    "KubectlError",
    "LocalCluster",
    "build",
]
