"""python -m harness.kube build|up|down|status  (run from the tests/ directory).

build   build and cache the Kubernetes binaries (CI runs this before the tests)
up      start a local cluster that outlives the command; prints its kubeconfig
down    stop it (or the cluster in --run-dir) and remove every trace it left
status  say whether a local cluster runs and where
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from harness.kube import teardown
from harness.kube.build import build, stderr_progress, version_dir
from harness.kube.cluster import (
    ClusterError,
    LocalCluster,
    active_run,
    missing_prerequisites,
    read_state,
    release_claim,
    stop_run,
)
from harness.kube.kubectl import Kubectl
from harness.kube.settings import ENV_KUBECONFIG, KubeVersion, kube_version, run_root


def _version(args: argparse.Namespace) -> KubeVersion:
    return KubeVersion.parse(args.version) if args.version else kube_version()


def cmd_build(args: argparse.Namespace) -> int:
    version = _version(args)
    binaries = build(version)
    manifest = json.loads((version_dir(version) / "manifest.json").read_text())
    print(json.dumps({"bin_dir": str(binaries.bin_dir), **manifest}, indent=2))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    missing = missing_prerequisites()
    if missing:
        print("missing: " + "; ".join(missing), file=sys.stderr)
        return 1
    binaries = build(_version(args))
    run_dir = Path(args.run_dir or run_root() / "manual")
    cluster = LocalCluster(binaries, run_dir, detached=True).start()
    print(f"kubeconfig: {cluster.kubeconfig}")
    print(f"logs:       {cluster.layout.logs}")
    print(f"use it:     export KUBECONFIG={cluster.kubeconfig}")
    print(f"in tests:   export {ENV_KUBECONFIG}={cluster.kubeconfig}")
    print(f"stop it:    nox -s cluster -- down --run-dir {run_dir}")
    # Last line by contract: `eval "$(nox -s cluster -- up | tail -1)"` or copy-paste.
    print(f"KUBECONFIG={cluster.kubeconfig}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir) if args.run_dir else active_run()
    if run_dir is None:
        print("no local cluster is running", file=sys.stderr)
        return 0
    leftovers = stop_run(run_dir, read_state(run_dir))
    release_claim(run_dir)
    print(f"stopped the cluster in {run_dir}: {leftovers}")
    return 0 if leftovers.clean else 1


def cmd_status(_: argparse.Namespace) -> int:
    run_dir = active_run()
    if run_dir is None:
        print("no local cluster is running")
        return 1
    state = read_state(run_dir)
    kubeconfig = Path(state.get("kubeconfig", run_dir / "kubeconfig"))
    print(f"local cluster {state.get('version', '?')} running in {run_dir}")
    print("components:")
    for name, pid in state.get("pids", {}).items():
        print(f"  {name:<24} pid {pid:<8} {'running' if teardown.alive(pid) else 'NOT RUNNING'}")
    bin_dir = Path(state.get("bin_dir", ""))
    kubectl = Kubectl(bin_dir / "kubectl", kubeconfig)
    nodes = kubectl.run("get", "nodes", "-o", "wide", check=False, timeout=20)
    print("nodes:")
    print(textwrap.indent((nodes.stdout or nodes.stderr).rstrip(), "  "))
    print(f"KUBECONFIG={kubeconfig}")
    return 0 if nodes.returncode == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.kube", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler, text in (
        ("build", cmd_build, "build and cache the Kubernetes binaries"),
        ("up", cmd_up, "start a local cluster in the background"),
        ("down", cmd_down, "stop a local cluster and clean up after it"),
        ("status", cmd_status, "show the running local cluster"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.set_defaults(handler=handler)
        if name in ("build", "up"):
            sub.add_argument("--version", help="Kubernetes version, e.g. 1.34.2")
        if name in ("up", "down"):
            sub.add_argument("--run-dir", help="directory for state and logs")
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (ClusterError, RuntimeError, ValueError) as error:
        stderr_progress(f"error: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
