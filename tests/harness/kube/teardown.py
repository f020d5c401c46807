"""Leave the host as it was: processes, container shims, mounts, iptables rules, the CNI bridge.

What a single-node cluster leaves behind, as seen here: the apiserver may outlive SIGTERM,
containerd shims outlive containerd, the kubelet leaves mounts under its root dir, the kubelet
and kube-proxy leave KUBE-* chains, the bridge plugin leaves masquerade chains and the bridge.
Every step only touches what carries this cluster's names (run dir, socket, bridge, CNI network),
so podman containers and other engineers' processes on the machine are left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# iptables chains only Kubernetes components create on this machine.
_KUBE_CHAIN = re.compile(r"^KUBE-")


@dataclass
class Leftovers:
    """What is still there after a teardown; empty lists mean the host is clean."""

    processes: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    iptables: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.processes or self.mounts or self.iptables or self.links)

    def __str__(self) -> str:
        if self.clean:
            return "nothing left behind"
        parts = [
            f"{label}: {', '.join(items)}"
            for label, items in (
                ("processes", self.processes),
                ("mounts", self.mounts),
                ("iptables", self.iptables),
                ("links", self.links),
            )
            if items
        ]
        return "; ".join(parts)


def alive(pid: int) -> bool:
    """True unless `pid` is gone or a zombie (a zombie holds nothing but its exit status)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_pids(pids: Iterable[int], grace: float) -> list[int]:
    """SIGTERM all of `pids` at once, SIGKILL who is left after `grace`; returns those killed."""
    targets = [pid for pid in pids if alive(pid)]
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for pid in targets:
            _reap(pid)
        if not any(alive(pid) for pid in targets):
            return []
        time.sleep(0.05)
    killed = [pid for pid in targets if alive(pid)]
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(killed, 5.0)
    return killed


def _wait_gone(pids: Sequence[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in pids:
            _reap(pid)
        if not any(alive(pid) for pid in pids):
            return
        time.sleep(0.02)


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every live process."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if fields[0] == "Z":
            continue
        table[int(entry.name)] = (int(fields[1]), cmdline.strip())
    return table


def shim_pids(containerd_socket: Path) -> list[int]:
    """containerd shims serving this cluster's containerd, identified by its socket address."""
    needle = str(containerd_socket)
    return [
        pid
        for pid, (_, cmdline) in _proc_table().items()
        if "containerd-shim" in cmdline and needle in cmdline
    ]


def descendants(roots: Sequence[int]) -> list[int]:
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    stack = list(roots)
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def kill_containers(containerd_socket: Path) -> None:
    """SIGKILL every container and shim of this containerd: they outlive containerd itself."""
    shims = shim_pids(containerd_socket)
    doomed = [*descendants(shims), *shims]
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(doomed, 5.0)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest (and latest) first, as unmounting needs."""
    prefix = str(root.resolve())
    points: list[str] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with spaces and tabs escaped as octal.
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    ordered = list(reversed(points))
    ordered.sort(key=lambda path: path.count("/"), reverse=True)
    return ordered


def unmount_all(root: Path) -> None:
    umount = shutil.which("umount") or "/usr/bin/umount"
    for _ in range(5):
        points = mounts_under(root)
        if not points:
            return
        for point in points:
            result = subprocess.run([umount, point], capture_output=True, check=False)
            if result.returncode != 0:
                # Busy or already gone with its parent: detach it so the directory can go.
                subprocess.run([umount, "-l", point], capture_output=True, check=False)


def _iptables_families() -> list[tuple[str, str]]:
    """(save, restore) command pairs present on this machine, IPv4 and IPv6."""
    pairs = []
    for save, restore in (
        ("iptables-save", "iptables-restore"),
        ("ip6tables-save", "ip6tables-restore"),
    ):
        save_path, restore_path = shutil.which(save), shutil.which(restore)
        if save_path and restore_path:
            pairs.append((save_path, restore_path))
    return pairs


def _ours(rule: str, chain: str, network: str, doomed: set[str]) -> bool:
    target = re.search(r"(?:^|\s)-[jg] (\S+)", rule)
    return (
        chain in doomed
        or (target is not None and target.group(1) in doomed)
        or f'name: \\"{network}\\"' in rule
        or f'name: "{network}"' in rule
    )


def iptables_cleanup_script(saved: str, network: str) -> str:
    """An iptables-restore --noflush script deleting KUBE-* chains and this CNI network's rules.

    A non-KUBE chain is deleted when every rule in it belongs to `network` (the bridge plugin's
    per-container masquerade chains); shared chains such as CNI-HOSTPORT-* only lose our rules.
    """
    script: list[str] = []
    table = ""
    chains: list[str] = []
    rules: list[tuple[str, str]] = []

    def flush_table() -> None:
        if not table:
            return
        doomed = {chain for chain in chains if _KUBE_CHAIN.match(chain)}
        by_chain: dict[str, list[str]] = {}
        for chain, rule in rules:
            by_chain.setdefault(chain, []).append(rule)
        for chain in chains:
            owned = by_chain.get(chain, [])
            if owned and all(_ours(rule, chain, network, set()) for rule in owned):
                doomed.add(chain)
        deletions = [
            f"-D {chain} {rule}"
            for chain, rule in rules
            if chain not in doomed and _ours(rule, chain, network, doomed)
        ]
        if not doomed and not deletions:
            return
        script.append(f"*{table}")
        script.extend(deletions)
        script.extend(f"-F {chain}" for chain in sorted(doomed))
        script.extend(f"-X {chain}" for chain in sorted(doomed))
        script.append("COMMIT")

    for line in saved.splitlines():
        if line.startswith("*"):
            table, chains, rules = line[1:], [], []
        elif line.startswith(":"):
            chains.append(line[1:].split()[0])
        elif line.startswith("-A "):
            chain, _, rule = line[3:].partition(" ")
            rules.append((chain, rule))
        elif line == "COMMIT":
            flush_table()
            table = ""
    return "\n".join(script) + ("\n" if script else "")


def _in_netns(netns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def clean_iptables(network: str, netns: str | None = None) -> None:
    """Apply iptables_cleanup_script to IPv4 and IPv6 (in network namespace `netns` if given)."""
    for save, restore in _iptables_families():
        saved = subprocess.run(
            _in_netns(netns, [save]), capture_output=True, text=True, check=False
        ).stdout
        script = iptables_cleanup_script(saved, network)
        if script:
            subprocess.run(
                _in_netns(netns, [restore, "--noflush"]),
                input=script,
                capture_output=True,
                text=True,
                check=False,
            )


def iptables_leftovers(network: str, netns: str | None = None) -> list[str]:
    found: list[str] = []
    for save, _ in _iptables_families():
        saved = subprocess.run(
            _in_netns(netns, [save]), capture_output=True, text=True, check=False
        ).stdout
        for line in saved.splitlines():
            if line.startswith(":KUBE-") or (line.startswith("-A ") and f'"{network}' in line):
                found.append(f"{Path(save).name}: {' '.join(shlex.split(line)[0:2])}")
    return found


def delete_link(name: str) -> None:
    if link_exists(name):
        subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def container_ids(containerd_state: Path) -> list[str]:
    """Ids of the containers and sandboxes this containerd ran (their cgroups carry the id)."""
    found: set[str] = set()
    for directory in (
        containerd_state / "io.containerd.runtime.v2.task" / "k8s.io",
        containerd_state / "io.containerd.grpc.v1.cri" / "sandboxes",
        containerd_state / "io.containerd.grpc.v1.cri" / "containers",
    ):
        if directory.is_dir():
            found.update(entry.name for entry in directory.iterdir())
    return sorted(found)


def remove_container_cgroups(ids: Iterable[str], parent: str = "k8s.io") -> None:
    """rmdir the cgroups runc made for `ids` under `parent` in every v1 hierarchy.

    Only empty cgroups can be removed, so a cgroup still in use elsewhere is never disturbed.
    """
    root = Path("/sys/fs/cgroup")
    hierarchies = [path for path in root.iterdir() if path.is_dir()] if root.is_dir() else []
    for hierarchy in hierarchies:
        base = hierarchy / parent
        for container in ids:
            with contextlib.suppress(OSError):
                (base / container).rmdir()
        with contextlib.suppress(OSError):
            base.rmdir()


def remove_created_dirs(paths: Iterable[Path]) -> None:
    """Remove host directories that did not exist before this cluster started: the kubelet
    creates /var/lib/kubelet/device-plugins and /var/log/containers whatever its config says."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
