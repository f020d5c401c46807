"""Where the test cluster's binaries live, which Kubernetes they are, and the knobs to change that.

Every knob is an environment variable so CI, a developer shell and pytest agree without flags.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_VERSION = "1.34.2"
DEFAULT_CACHE = Path("/var/cache/genesis/kube")
DEFAULT_RUN_ROOT = Path("/tmp/genesis-kube")

ENV_VERSION = "GENESIS_KUBE_VERSION"
ENV_CACHE = "GENESIS_KUBE_CACHE"
ENV_RUN_ROOT = "GENESIS_KUBE_RUN_ROOT"
ENV_KUBECONFIG = "GENESIS_TEST_KUBECONFIG"
ENV_NODE_HOST = "GENESIS_TEST_KUBE_NODE_HOST"
ENV_IMAGE_LOADER = "GENESIS_TEST_KUBE_IMAGE_LOADER"
ENV_WAIT = "GENESIS_KUBE_WAIT_SECONDS"

# The machine runs cgroup v1; kubelets from 1.35 on refuse to start there.
NEWEST_MINOR_ON_CGROUP_V1 = 34

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


class SettingsError(ValueError):
    """A GENESIS_KUBE_* variable holds something the harness cannot use."""


@dataclass(frozen=True)
class KubeVersion:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> KubeVersion:
        match = _VERSION_RE.match(text.strip())
        if match is None:
            raise SettingsError(
                f"Kubernetes version {text!r} is not of the form 1.34.2 (or v1.34.2);"
                f" set {ENV_VERSION} to a released version"
            )
        version = cls(*(int(part) for part in match.groups()))
        if version.major != 1 or version.minor > NEWEST_MINOR_ON_CGROUP_V1:
            raise SettingsError(
                f"Kubernetes {version.git} cannot run here: this machine uses cgroup v1, which"
                f" kubelets newer than 1.{NEWEST_MINOR_ON_CGROUP_V1} refuse; pick 1.34.x or older"
            )
        return version

    @property
    def git(self) -> str:
        """The tag of k8s.io/kubernetes, e.g. v1.34.2."""
        return f"v{self.major}.{self.minor}.{self.patch}"

    @property
    def staging(self) -> str:
        """The tag of the staging modules (k8s.io/api, k8s.io/client-go...) released with it."""
        return f"v0.{self.minor}.{self.patch}"

    def __str__(self) -> str:
        return self.git


def kube_version() -> KubeVersion:
    return KubeVersion.parse(os.environ.get(ENV_VERSION, DEFAULT_VERSION))


def cache_root() -> Path:
    """Binaries and Go caches: outside the repository so every checkout and run shares them."""
    return Path(os.environ.get(ENV_CACHE, str(DEFAULT_CACHE))).resolve()


def run_root() -> Path:
    return Path(os.environ.get(ENV_RUN_ROOT, str(DEFAULT_RUN_ROOT))).resolve()


def external_kubeconfig() -> Path | None:
    """The kubeconfig of a cluster someone else runs (kind on a GitHub runner), if one is named."""
    value = os.environ.get(ENV_KUBECONFIG, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise SettingsError(f"{ENV_KUBECONFIG}={value} does not name a readable kubeconfig file")
    return path


def wait_seconds() -> float:
    """How long to wait for another session's cluster to go away before giving up."""
    raw = os.environ.get(ENV_WAIT, "900")
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{ENV_WAIT}={raw!r} is not a number of seconds") from None
