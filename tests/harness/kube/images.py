"""Images for the test cluster: built locally, never pulled.

The pause and probe images are one static binary (genesis-kube-agent) in an otherwise empty
image, written here as a `docker save` archive so the cluster needs no image tooling of its own.
Images a test builds with podman reach the cluster through `podman save` + `ctr images import`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PAUSE_IMAGE = "localhost/genesis-kube/pause:v1"
PROBE_IMAGE = "localhost/genesis-kube/probe:v1"
CONTAINERS_CONF = Path(__file__).with_name("containers.conf")
CRI_NAMESPACE = "k8s.io"


class ImageError(RuntimeError):
    """An image could not be built, saved or imported; the message says which step failed."""


@dataclass(frozen=True)
class AgentImage:
    ref: str
    entrypoint: Sequence[str]


AGENT_IMAGES = (
    AgentImage(PAUSE_IMAGE, ("/agent", "pause")),
    AgentImage(PROBE_IMAGE, ("/agent", "serve")),
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _single_file_layer(binary: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("agent")
        info.size = binary.stat().st_size
        info.mode = 0o755
        with binary.open("rb") as handle:
            tar.addfile(info, handle)
    return buffer.getvalue()


def write_agent_archive(
    binary: Path, target: Path, agent_images: Sequence[AgentImage] = AGENT_IMAGES
) -> Path:
    """A `docker save`-format archive of `agent_images`: one shared layer with /agent each."""
    layer = _single_file_layer(binary)
    layer_digest = _sha256(layer)
    layer_name = f"{layer_digest}/layer.tar"
    files: dict[str, bytes] = {layer_name: layer}
    manifest = []
    for image in agent_images:
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Entrypoint": list(image.entrypoint), "WorkingDir": "/"},
                "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
            },
            sort_keys=True,
        ).encode()
        config_name = f"{_sha256(config)}.json"
        files[config_name] = config
        manifest.append({"Config": config_name, "RepoTags": [image.ref], "Layers": [layer_name]})
    files["manifest.json"] = json.dumps(manifest).encode()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return target


def ctr_import(socket: Path, archive: Path) -> None:
    """Import an image archive into the CRI namespace of the containerd at `socket`, unpacked."""
    ctr = shutil.which("ctr")
    if ctr is None:
        raise ImageError("ctr not found: install the Debian package 'containerd'")
    result = subprocess.run(
        [
            ctr,
            "--address",
            str(socket),
            "--namespace",
            CRI_NAMESPACE,
            "images",
            "import",
            str(archive),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ImageError(f"ctr images import {archive.name} failed: {result.stderr.strip()}")


def podman_env() -> dict[str, str]:
    """podman needs runc, cgroupfs and low ulimits here; CONTAINERS_CONF keeps that local."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("podman")
    if binary is None:
        raise ImageError("podman not found: install the Debian package 'podman'")
    result = subprocess.run(
        [binary, *args], env=podman_env(), capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise ImageError(f"podman {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result


def podman_save(ref: str, target: Path) -> Path:
    """`podman save` of a local image, in the docker-archive format ctr imports with its name."""
    if podman("image", "exists", ref, check=False).returncode != 0:
        raise ImageError(f"podman has no image {ref!r}: build or import it first (podman images)")
    target.unlink(missing_ok=True)
    podman("save", "--format", "docker-archive", "-o", str(target), ref)
    return target
