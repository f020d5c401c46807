"""Build the Kubernetes commands from the Go module proxy and cache them by version.

No kind, k3s or minikube binary can be downloaded here, but `k8s.io/kubernetes` is served as a
Go module. Its go.mod points ~31 staging modules at local paths, which a consumer cannot use, so a
scratch module replaces each with the released `v0.<minor>.<patch>` module instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.kube.settings import KubeVersion, cache_root, kube_version

COMMANDS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
)
AGENT = "genesis-kube-agent"
AGENT_SOURCE = Path(__file__).with_name("agent") / "main.go"

Progress = Callable[[str], None]

_STAGING_REPLACE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", re.MULTILINE)


def stderr_progress(message: str) -> None:
    print(f"[kube] {message}", file=sys.stderr, flush=True)


class BuildError(RuntimeError):
    """A Go step failed; the message names the step and carries the tail of its output."""


@dataclass(frozen=True)
class Binaries:
    """Paths of one cached build: the six Kubernetes commands and the image agent."""

    version: KubeVersion
    bin_dir: Path
    agent: Path

    def path(self, command: str) -> Path:
        if command not in COMMANDS:
            raise KeyError(f"{command!r} is not one of the built commands {COMMANDS}")
        return self.bin_dir / command


def version_dir(version: KubeVersion) -> Path:
    return cache_root() / version.git


def go_env() -> dict[str, str]:
    """Go caches under the harness cache (not the repo, not $HOME), two compile jobs at most."""
    root = cache_root() / "go"
    flags = os.environ.get("GOFLAGS", "")
    if "-p=" not in flags:
        flags = f"{flags} -p=2".strip()
    if "-buildvcs" not in flags:
        flags = f"{flags} -buildvcs=false"
    return {
        **os.environ,
        "GOCACHE": str(root / "build"),
        "GOMODCACHE": str(root / "mod"),
        "GOFLAGS": flags,
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }


def _run_go(args: list[str], *, cwd: Path, step: str) -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError("the 'go' command is not on PATH; install Go 1.24 or newer to build")
    result = subprocess.run(
        [go, *args], cwd=cwd, env=go_env(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise BuildError(f"{step} failed (go {' '.join(args[:3])} ...):\n{tail}")
    return result.stdout


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise builds of one version across sessions so two never race on the same files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ldflags(version: KubeVersion, build_date: str) -> str:
    """Stamp the real version in, or the cluster says v0.0.0-master and kubeVersion checks fail."""
    values = {
        "gitVersion": version.git,
        "gitMajor": str(version.major),
        "gitMinor": str(version.minor),
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    stamps = [
        f"-X {package}.{name}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for name, value in values.items()
    ]
    return " ".join(["-s", "-w", *stamps])


def staging_modules(kubernetes_go_mod: str) -> list[str]:
    """The modules k8s.io/kubernetes replaces with ./staging paths, in go.mod order."""
    return _STAGING_REPLACE.findall(kubernetes_go_mod)


def scratch_go_mod(version: KubeVersion, staging: list[str]) -> str:
    if not staging:
        raise BuildError(f"k8s.io/kubernetes {version.git}: its go.mod lists no staging modules")
    lines = ["module genesis.local/kubebuild", "", "go 1.24.0", "", "replace ("]
    lines += [f"\t{module} => {module} {version.staging}" for module in staging]
    lines += [")", ""]
    return "\n".join(lines)


def _manifest_path(version: KubeVersion) -> Path:
    return version_dir(version) / "manifest.json"


def cached(version: KubeVersion) -> Binaries | None:
    """The cached build of `version` when it is complete, else None."""
    try:
        manifest = json.loads(_manifest_path(version).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    bin_dir = version_dir(version) / "bin"
    if manifest.get("version") != version.git:
        return None
    if not all(os.access(bin_dir / command, os.X_OK) for command in COMMANDS):
        return None
    agent = _agent_path()
    if not os.access(agent, os.X_OK):
        return None
    return Binaries(version=version, bin_dir=bin_dir, agent=agent)


def _agent_path() -> Path:
    digest = hashlib.sha256(AGENT_SOURCE.read_bytes()).hexdigest()[:12]
    return cache_root() / "agent" / digest / AGENT


def build_agent(progress: Progress = stderr_progress) -> Path:
    """The static image agent; keyed by its source hash so an edit rebuilds it."""
    target = _agent_path()
    if os.access(target, os.X_OK):
        return target
    work = target.parent / "module"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text("module genesis.local/kubeagent\n\ngo 1.24.0\n")
    shutil.copyfile(AGENT_SOURCE, work / "main.go")
    started = time.monotonic()
    partial = target.with_suffix(".partial")
    _run_go(
        ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "."],
        cwd=work,
        step=f"building {AGENT}",
    )
    partial.rename(target)
    progress(f"built {AGENT} in {time.monotonic() - started:.1f}s")
    return target


def build(version: KubeVersion | None = None, progress: Progress = stderr_progress) -> Binaries:
    """Build (or reuse) every command of `version`; safe to call from several sessions at once."""
    version = version or kube_version()
    found = cached(version)
    if found is not None:
        progress(f"reusing Kubernetes {version.git} binaries from {found.bin_dir}")
        return found
    with _locked(cache_root() / f"{version.git}.lock"):
        found = cached(version)
        if found is not None:
            progress(f"reusing Kubernetes {version.git} binaries built by another session")
            return found
        return _build_locked(version, progress)


def _build_locked(version: KubeVersion, progress: Progress) -> Binaries:
    total_started = time.monotonic()
    root = version_dir(version)
    module = root / "module"
    module.mkdir(parents=True, exist_ok=True)
    agent = build_agent(progress)

    progress(f"resolving k8s.io/kubernetes@{version.git} through the Go module proxy")
    started = time.monotonic()
    info = json.loads(
        _run_go(
            ["mod", "download", "-json", f"k8s.io/kubernetes@{version.git}"],
            cwd=module,
            step=f"downloading k8s.io/kubernetes@{version.git}",
        )
    )
    build_date = json.loads(Path(info["Info"]).read_text())["Time"]
    staging = staging_modules(Path(info["GoMod"]).read_text())
    (module / "go.mod").write_text(scratch_go_mod(version, staging))
    (module / "go.sum").unlink(missing_ok=True)
    # `go get` of each command (not of the module alone) is what records every go.sum line.
    _run_go(
        ["get", *(f"k8s.io/kubernetes/cmd/{command}@{version.git}" for command in COMMANDS)],
        cwd=module,
        step="go get of the Kubernetes commands",
    )
    progress(f"resolved {len(staging)} staging modules in {time.monotonic() - started:.1f}s")

    partial = root / "bin.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    flags = ldflags(version, build_date)
    timings: dict[str, float] = {}
    for index, command in enumerate(COMMANDS, start=1):
        progress(f"[{index}/{len(COMMANDS)}] building {command} {version.git} ...")
        started = time.monotonic()
        _run_go(
            [
                "build",
                "-trimpath",
                "-ldflags",
                flags,
                "-o",
                str(partial / command),
                f"k8s.io/kubernetes/cmd/{command}",
            ],
            cwd=module,
            step=f"building {command}",
        )
        timings[command] = round(time.monotonic() - started, 1)
        progress(f"[{index}/{len(COMMANDS)}] built {command} in {timings[command]:.1f}s")

    _check_stamp(partial / "kubectl", version)
    final = root / "bin"
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    total = round(time.monotonic() - total_started, 1)
    manifest = {
        "version": version.git,
        "build_date": build_date,
        "go": _run_go(["env", "GOVERSION"], cwd=module, step="go env").strip(),
        "seconds": {**timings, "total": total},
    }
    _manifest_path(version).write_text(json.dumps(manifest, indent=2) + "\n")
    progress(f"Kubernetes {version.git} built in {total:.1f}s into {final}")
    return Binaries(version=version, bin_dir=final, agent=agent)


def _check_stamp(kubectl: Path, version: KubeVersion) -> None:
    result = subprocess.run(
        [str(kubectl), "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        reported = json.loads(result.stdout)["clientVersion"]["gitVersion"]
    except (json.JSONDecodeError, KeyError):
        raise BuildError(f"kubectl version printed no version: {result.stderr.strip()}") from None
    if reported != version.git:
        raise BuildError(f"kubectl reports {reported}, expected {version.git}: ldflags not applied")
