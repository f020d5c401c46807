"""The cluster harness's own decisions, without a cluster: versions, go.mod, iptables, images."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.kube.build import (
    COMMANDS,
    build,
    cached,
    ldflags,
    scratch_go_mod,
    staging_modules,
)
from harness.kube.cluster import _toml, ensure_hosts_entry
from harness.kube.images import AGENT_IMAGES, write_agent_archive
from harness.kube.settings import KubeVersion, SettingsError
from harness.kube.teardown import clean_iptables, iptables_cleanup_script, iptables_leftovers

KUBERNETES_GO_MOD = """\
module k8s.io/kubernetes

go 1.24.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/cri-api => ./staging/src/k8s.io/cri-api
)
"""


def test_version_parsing_accepts_tags_and_refuses_cgroup_v2_only_releases() -> None:
    version = KubeVersion.parse("v1.34.2")
    assert version == KubeVersion.parse("1.34.2")
    assert (version.git, version.staging) == ("v1.34.2", "v0.34.2")
    with pytest.raises(SettingsError, match="cgroup v1"):
        KubeVersion.parse("1.35.0")
    with pytest.raises(SettingsError, match="not of the form"):
        KubeVersion.parse("latest")


def test_scratch_module_replaces_every_staging_module_with_its_release() -> None:
    staging = staging_modules(KUBERNETES_GO_MOD)
    assert staging == ["k8s.io/api", "k8s.io/client-go", "k8s.io/cri-api"]
    go_mod = scratch_go_mod(KubeVersion.parse("1.34.2"), staging)
    assert "\tk8s.io/client-go => k8s.io/client-go v0.34.2" in go_mod
    assert go_mod.count("=>") == 3


def test_ldflags_stamp_both_version_packages() -> None:
    flags = ldflags(KubeVersion.parse("1.34.2"), "2025-11-11T19:00:37Z")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.34.2" in flags
        assert f"-X {package}.gitMinor=34" in flags


SAVED = """\
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
:CNI-a1 - [0:0]
:CNI-podman1 - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A POSTROUTING -s 10.222.0.5 -m comment --comment "name: \\"genesis-kube\\" id: \\"a\\"" -j CNI-a1
-A POSTROUTING -s 10.88.0.2/32 -m comment --comment "name: \\"podman\\" id: \\"b\\"" -j CNI-podman1
-A CNI-a1 -d 10.222.0.0/24 -m comment --comment "name: \\"genesis-kube\\" id: \\"a\\"" -j ACCEPT
-A CNI-podman1 -d 10.88.0.0/16 -m comment --comment "name: \\"podman\\" id: \\"b\\"" -j ACCEPT
-A KUBE-POSTROUTING -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
COMMIT
"""


def test_iptables_cleanup_removes_kube_and_our_cni_rules_only() -> None:
    script = iptables_cleanup_script(SAVED, "genesis-kube")
    lines = script.splitlines()
    assert lines[0] == "*nat"
    assert lines[-1] == "COMMIT"
    portals = '-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'
    assert portals in lines
    assert "-X KUBE-SERVICES" in lines
    assert "-X KUBE-POSTROUTING" in lines
    assert "-X CNI-a1" in lines
    assert any(line.startswith("-D POSTROUTING") and "genesis-kube" in line for line in lines)
    # podman's network and the shared hostport chain stay.
    assert "podman" not in script
    assert "CNI-HOSTPORT-DNAT" not in script
    assert iptables_cleanup_script("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", "genesis-kube") == ""


@pytest.mark.integration
def test_cleanup_runs_on_real_iptables_in_a_private_network_namespace() -> None:
    """Load a node-like ruleset into a fresh netns, clean it, and read back what stayed."""
    if shutil.which("iptables-restore") is None:
        pytest.skip("iptables not installed: apt-get install -y iptables")
    netns = f"genesis-kube-test-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(
            ["ip", "netns", "exec", netns, "iptables-restore"], input=SAVED, text=True, check=True
        )
        assert iptables_leftovers("genesis-kube", netns)
        clean_iptables("genesis-kube", netns)
        assert iptables_leftovers("genesis-kube", netns) == []
        kept = subprocess.run(
            ["ip", "netns", "exec", netns, "iptables-save", "-t", "nat"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert '"podman' in kept
        assert ":CNI-podman1" in kept
        assert ":CNI-HOSTPORT-DNAT" in kept
        assert "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in kept
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=False)


def test_toml_writer_quotes_dotted_table_names() -> None:
    text = _toml({"version": 2, "plugins": {"io.containerd.grpc.v1.cri": {"flag": True}}})
    assert 'version = 2\n\n[plugins]\n\n[plugins."io.containerd.grpc.v1.cri"]\nflag = true' in text


def test_hosts_entry_is_added_once(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    ensure_hosts_entry(hosts)
    ensure_hosts_entry(hosts)
    lines = hosts.read_text().splitlines()
    assert lines[0] == "127.0.0.1 localhost"
    assert len(lines) == 2
    assert lines[1].split()[:2] == ["127.0.0.1", "genesis-kube-node"]


def test_agent_archive_is_a_docker_save_archive_with_both_images(tmp_path: Path) -> None:
    binary = tmp_path / "agent"
    binary.write_bytes(b"\x7fELF fake")
    archive = write_agent_archive(binary, tmp_path / "images.tar")
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert [entry["RepoTags"] for entry in manifest] == [[i.ref] for i in AGENT_IMAGES]
        layer = tar.extractfile(manifest[0]["Layers"][0])
        assert layer is not None
        with tarfile.open(fileobj=layer) as inner:
            member = inner.getmember("agent")
            assert member.mode == 0o755
        for entry, image in zip(manifest, AGENT_IMAGES, strict=True):
            config = json.loads(tar.extractfile(entry["Config"]).read())  # type: ignore[union-attr]
            assert config["config"]["Entrypoint"] == list(image.entrypoint)


@pytest.mark.kube
def test_a_warm_cache_is_reused_without_building() -> None:
    version = KubeVersion.parse("1.34.2")
    if cached(version) is None:
        pytest.skip("binaries not built yet: python -m harness.kube build (from tests/)")
    messages: list[str] = []
    binaries = build(version, progress=messages.append)
    assert messages == [f"reusing Kubernetes v1.34.2 binaries from {binaries.bin_dir}"]
    for command in COMMANDS:
        assert binaries.path(command).is_file()
    printed = subprocess.run(
        [str(binaries.path("kubectl")), "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(printed)["clientVersion"]["gitVersion"] == "v1.34.2"
