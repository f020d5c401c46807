"""A single-node Kubernetes cluster as plain processes the harness owns.

etcd, containerd (CRI, runc, the CNI bridge), kube-apiserver, kube-controller-manager,
kube-scheduler, kubelet and kube-proxy, each with its log in `<run dir>/logs/`. Everything
listens on 127.0.0.1 and keeps its state under the run dir; the only global traces are the
iptables rules and bridge every node has, removed again by `stop()`, and one /etc/hosts line.

Ready means the apiserver's /readyz is ok, the node is Ready and a probe pod from a local image
becomes Ready. A component that does not come up fails the start with its name and log tail.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.kube import images, teardown
from harness.kube.build import Binaries, Progress, stderr_progress
from harness.kube.kubectl import Kubectl
from harness.kube.pki import Pki, create_pki, write_kubeconfig
from harness.kube.settings import run_root, wait_seconds
from harness.processes import ManagedProcess, free_port, http_ok

NODE_NAME = "genesis-kube-node"
NETWORK_NAME = "genesis-kube"
BRIDGE = "gkube0"
POD_CIDR = "10.222.0.0/24"
SERVICE_CIDR = "10.223.0.0/24"
FIRST_SERVICE_IP = "10.223.0.1"
CNI_BIN_DIR = Path("/usr/lib/cni")
HOSTS_FILE = Path("/etc/hosts")
ROUTE_LOCALNET = Path("/proc/sys/net/ipv4/conf/all/route_localnet")
# The kubelet symlinks container logs here whatever its config says.
CONTAINER_LOG_LINKS = Path("/var/log/containers")
# Host paths the kubelet creates regardless of --root-dir (the device manager's socket dir).
KUBELET_HOST_DIRS = (Path("/var/lib/kubelet"), CONTAINER_LOG_LINKS)
PROBE_POD = "genesis-probe"

APT_PACKAGES = (
    "etcd-server",
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "conntrack",
    "podman",
    "openssl",
)
_REQUIRED_BINARIES = {
    "etcd": "etcd-server",
    "containerd": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "openssl": "openssl",
}


class ClusterError(RuntimeError):
    """The cluster could not start (or stop); the message names the component and its log tail."""


def missing_prerequisites() -> list[str]:
    """Human-readable list of what this machine lacks to run the local cluster."""
    missing = [
        f"{binary} (apt-get install -y {package})"
        for binary, package in _REQUIRED_BINARIES.items()
        if shutil.which(binary) is None
    ]
    if not (CNI_BIN_DIR / "bridge").exists():
        missing.append(f"{CNI_BIN_DIR}/bridge (apt-get install -y containernetworking-plugins)")
    if os.geteuid() != 0:
        missing.append("root (containerd, the kubelet and iptables need it)")
    return missing


def ensure_hosts_entry(hosts: Path = HOSTS_FILE) -> None:
    """Make the node name resolve to 127.0.0.1: the kubelet refuses a loopback --node-ip, and
    the apiserver reaches the kubelet by that name. Appends one line, once."""
    lines = hosts.read_text().splitlines()
    if any(line.split()[:1] == ["127.0.0.1"] and NODE_NAME in line.split()[1:] for line in lines):
        return
    with hosts.open("a") as handle:
        handle.write(f"127.0.0.1 {NODE_NAME}  # genesis test cluster (tests/harness/kube)\n")


@dataclass(frozen=True)
class Layout:
    """Every path of one run, under one directory."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd(self) -> Path:
        return self.root / "etcd"

    @property
    def containerd(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet(self) -> Path:
        return self.root / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def state(self) -> Path:
        return self.root / "state.json"


@dataclass
class Ports:
    etcd_client: int = field(default_factory=free_port)
    etcd_peer: int = field(default_factory=free_port)
    apiserver: int = field(default_factory=free_port)
    controller_manager: int = field(default_factory=free_port)
    scheduler: int = field(default_factory=free_port)
    kubelet: int = field(default_factory=free_port)
    kubelet_healthz: int = field(default_factory=free_port)
    proxy_healthz: int = field(default_factory=free_port)
    proxy_metrics: int = field(default_factory=free_port)


def _https_ok(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0, context=context) as response:
            status: int = response.status
            return 200 <= status < 300
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def _unverified_context() -> ssl.SSLContext:
    # kube-controller-manager and kube-scheduler serve a self-signed certificate on loopback.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def containerd_config(layout: Layout, runc: Path) -> str:
    state = layout.containerd / "state"
    cri = {
        "sandbox_image": images.PAUSE_IMAGE,
        # Network namespaces under our state dir, not /var/run/netns, so teardown finds them.
        "netns_mounts_under_state_dir": True,
        # This sandbox lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below ours.
        "restrict_oom_score_adj": True,
        "disable_apparmor": True,
        "stream_server_address": "127.0.0.1",
        "stream_server_port": "0",
        "enable_cdi": False,
        "containerd": {
            "snapshotter": "overlayfs",
            "default_runtime_name": "runc",
            "runtimes": {
                "runc": {
                    "runtime_type": "io.containerd.runc.v2",
                    "options": {
                        "BinaryName": str(runc),
                        "SystemdCgroup": False,
                        "Root": str(layout.containerd / "runc"),
                    },
                }
            },
        },
        "cni": {
            "bin_dir": str(CNI_BIN_DIR),
            "conf_dir": str(layout.cni_conf),
            "max_conf_num": 1,
        },
    }
    config = {
        "version": 2,
        "root": str(layout.containerd / "root"),
        "state": str(state),
        "grpc": {"address": str(layout.containerd_socket)},
        "ttrpc": {"address": str(layout.containerd / "ttrpc.sock")},
        "debug": {"address": ""},
        "metrics": {"address": ""},
        "disabled_plugins": [
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.tracing.processor.v1.otlp",
        ],
        "plugins": {
            "io.containerd.grpc.v1.cri": cri,
            "io.containerd.internal.v1.opt": {"path": str(layout.containerd / "opt")},
        },
    }
    return _toml(config)


def _toml(data: dict[str, Any], prefix: str = "") -> str:
    """The small TOML subset containerd's config needs: scalars, lists of strings, tables."""

    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int):
            return str(item)
        if isinstance(item, str):
            return json.dumps(item)
        if isinstance(item, list):
            return "[" + ", ".join(value(element) for element in item) + "]"
        raise TypeError(f"no TOML form for {item!r}")

    lines = [f"{key} = {value(item)}" for key, item in data.items() if not isinstance(item, dict)]
    for key, item in data.items():
        if isinstance(item, dict):
            name = (
                f"{prefix}.{json.dumps(key) if '.' in key else key}"
                if prefix
                else (json.dumps(key) if "." in key else key)
            )
            lines += ["", f"[{name}]", _toml(item, name)]
    return "\n".join(line for line in lines if line is not None)


def cni_config(layout: Layout) -> dict[str, Any]:
    return {
        "cniVersion": "0.4.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                # A pod reaching itself through its own Service needs hairpin on its port.
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni_ipam),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(layout: Layout, ports: Ports, pki: Pki) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "127.0.0.1",
        "port": ports.kubelet,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports.kubelet_healthz,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.ca_cert)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        # cgroup v1 in hybrid mode, no systemd: cgroupfs, and no QoS hierarchy to manage.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "podLogsDir": str(layout.pod_logs),
        "volumePluginDir": str(layout.kubelet / "volume-plugins"),
        "resolvConf": "/etc/resolv.conf",
        "serializeImagePulls": False,
        "makeIPTablesUtilChains": False,
        "nodeStatusUpdateFrequency": "2s",
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "5s",
        "fileCheckFrequency": "5s",
        "maxPods": 60,
        "shutdownGracePeriod": "0s",
    }


def kube_proxy_config(layout: Layout, ports: Ports) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{ports.proxy_healthz}",
        "metricsBindAddress": f"127.0.0.1:{ports.proxy_metrics}",
        # NodePorts answer on loopback only: nothing of the test cluster faces the network.
        "nodePortAddresses": ["127.0.0.1/32"],
        "iptables": {"localhostNodePorts": True, "minSyncPeriod": "0s", "syncPeriod": "30s"},
        # Zero means "leave the host's conntrack sysctls alone".
        "conntrack": {"maxPerCore": 0, "min": 0},
    }


class LocalCluster:
    """One cluster in one run dir; `start()` brings it to Ready, `stop()` leaves no trace."""

    def __init__(
        self,
        binaries: Binaries,
        run_dir: Path,
        progress: Progress = stderr_progress,
        *,
        detached: bool = False,
    ) -> None:
        """`detached`: the cluster outlives this process (`python -m harness.kube up`)."""
        self.binaries = binaries
        self.detached = detached
        self.layout = Layout(run_dir.resolve())
        self.progress = progress
        self.ports = Ports()
        self.processes: dict[str, ManagedProcess] = {}
        self.route_localnet_before: str | None = None
        self.created_host_dirs: list[str] = []
        self.timings: dict[str, float] = {}
        self._pki: Pki | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig

    @property
    def containerd_socket(self) -> Path:
        return self.layout.containerd_socket

    @property
    def kubectl(self) -> Kubectl:
        return Kubectl(self.binaries.path("kubectl"), self.kubeconfig)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    # ---- start -------------------------------------------------------------------------

    def start(self) -> LocalCluster:
        missing = missing_prerequisites()
        if missing:
            raise ClusterError("cannot start the local cluster; missing: " + "; ".join(missing))
        started = time.monotonic()
        take_claim(self.layout.root, self.progress, detached=self.detached)
        try:
            self._start()
        except BaseException:
            self.progress("start failed; tearing down what came up")
            self.stop()
            raise
        self.timings["start"] = round(time.monotonic() - started, 1)
        self.progress(f"cluster ready in {self.timings['start']:.1f}s ({self.layout.root})")
        return self

    def is_running(self) -> bool:
        return any(
            process.proc is not None and process.proc.poll() is None
            for process in self.processes.values()
        )

    def _start(self) -> None:
        layout = self.layout
        # Fresh ports on every start: a restart must not race the old sockets' TIME_WAIT.
        self.ports = Ports()
        self.processes = {}
        self._prepare_run_dir()
        ensure_hosts_entry()
        self.route_localnet_before = ROUTE_LOCALNET.read_text().strip()
        self.created_host_dirs = [str(path) for path in KUBELET_HOST_DIRS if not path.exists()]
        pki = create_pki(layout.pki, service_ip=FIRST_SERVICE_IP, node_name=NODE_NAME)
        self._pki = pki
        write_kubeconfig(pki, self.server, layout.kubeconfig)
        self._write_configs(pki)
        self._save_state()

        etcd = self._launch("etcd", self._etcd_argv())
        containerd = self._launch(
            "containerd", ["containerd", "--config", str(layout.config / "containerd.toml")]
        )
        self._save_state()
        etcd.wait_ready(lambda: http_ok(f"http://127.0.0.1:{self.ports.etcd_client}/health"), 20)
        apiserver = self._launch("kube-apiserver", self._apiserver_argv(pki))
        containerd.wait_ready(self._containerd_answers, 20)
        self._import_agent_images()
        # Everything else retries until the apiserver answers, so start it all now.
        kubelet = self._launch("kubelet", self._kubelet_argv())
        proxy = self._launch("kube-proxy", self._proxy_argv())
        controller_manager = self._launch("kube-controller-manager", self._kcm_argv(pki))
        scheduler = self._launch("kube-scheduler", self._scheduler_argv())
        self._save_state()

        verified = ssl.create_default_context(cafile=str(pki.ca_cert))
        apiserver.wait_ready(lambda: _https_ok(f"{self.server}/readyz", verified), 60)
        self._mark("apiserver ready")
        insecure = _unverified_context()
        controller_manager.wait_ready(
            lambda: _https_ok(
                f"https://127.0.0.1:{self.ports.controller_manager}/healthz", insecure
            ),
            30,
        )
        scheduler.wait_ready(
            lambda: _https_ok(f"https://127.0.0.1:{self.ports.scheduler}/healthz", insecure), 30
        )
        kubelet.wait_ready(
            lambda: http_ok(f"http://127.0.0.1:{self.ports.kubelet_healthz}/healthz"), 30
        )
        proxy.wait_ready(
            lambda: http_ok(f"http://127.0.0.1:{self.ports.proxy_healthz}/healthz"), 30
        )
        self._wait_for("node Ready", self._node_ready, 60, blame="kubelet")
        self._mark("node ready")
        self._run_probe_pod()
        self._mark("probe pod ready")

    def _mark(self, event: str) -> None:
        self.progress(event)

    def _prepare_run_dir(self) -> None:
        root = self.layout.root
        if root.exists():
            # A previous run in the same directory: clear its traces but keep its logs.
            teardown.unmount_all(root)
            for child in root.iterdir():
                if child.name != "logs":
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        for directory in (self.layout.logs, self.layout.config, self.layout.cni_conf):
            directory.mkdir(parents=True, exist_ok=True)
        for log in self.layout.logs.glob("*.log"):
            log.unlink()

    def _write_configs(self, pki: Pki) -> None:
        layout = self.layout
        (layout.config / "containerd.toml").write_text(
            containerd_config(layout, Path(shutil.which("runc") or "/usr/sbin/runc"))
        )
        (layout.cni_conf / f"10-{NETWORK_NAME}.conflist").write_text(
            json.dumps(cni_config(layout), indent=2)
        )
        (layout.config / "kubelet.yaml").write_text(
            yaml.safe_dump(kubelet_config(layout, self.ports, pki), sort_keys=False)
        )
        (layout.config / "kube-proxy.yaml").write_text(
            yaml.safe_dump(kube_proxy_config(layout, self.ports), sort_keys=False)
        )

    def _launch(self, name: str, argv: list[str]) -> ManagedProcess:
        if name.startswith("kube"):
            argv = [str(self.binaries.bin_dir / argv[0]), *argv[1:]]
        process = ManagedProcess(name, argv, log_dir=self.layout.logs, cwd=self.layout.root)
        process.start()
        self.processes[name] = process
        return process

    def _etcd_argv(self) -> list[str]:
        client = f"http://127.0.0.1:{self.ports.etcd_client}"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        return [
            "etcd",
            "--name=genesis",
            f"--data-dir={self.layout.etcd}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=genesis={peer}",
            "--initial-cluster-state=new",
            "--log-level=warn",
            "--logger=zap",
        ]

    def _apiserver_argv(self, pki: Pki) -> list[str]:
        return [
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{self.ports.etcd_client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports.apiserver}",
            # Endpoints may not point at loopback; pods cannot reach 127.0.0.1 of the host anyway.
            "--endpoint-reconciler-type=none",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--client-ca-file={pki.ca_cert}",
            f"--tls-cert-file={pki.apiserver_cert}",
            f"--tls-private-key-file={pki.apiserver_key}",
            # Without a client cert towards the kubelet, logs/exec/port-forward are "Unauthorized".
            f"--kubelet-client-certificate={pki.admin_cert}",
            f"--kubelet-client-key={pki.admin_key}",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--profiling=false",
            f"--cert-dir={self.layout.pki / 'apiserver'}",
            "--v=1",
        ]

    def _kcm_argv(self, pki: Pki) -> list[str]:
        kubeconfig = str(self.kubeconfig)
        return [
            "kube-controller-manager",
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports.controller_manager}",
            f"--cert-dir={self.layout.pki / 'kube-controller-manager'}",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            "--profiling=false",
            "--v=1",
        ]

    def _scheduler_argv(self) -> list[str]:
        kubeconfig = str(self.kubeconfig)
        return [
            "kube-scheduler",
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports.scheduler}",
            f"--cert-dir={self.layout.pki / 'kube-scheduler'}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ]

    def _kubelet_argv(self) -> list[str]:
        return [
            "kubelet",
            f"--config={self.layout.config / 'kubelet.yaml'}",
            f"--kubeconfig={self.kubeconfig}",
            # Resolves to 127.0.0.1 through /etc/hosts; a loopback --node-ip is refused.
            f"--hostname-override={NODE_NAME}",
            f"--root-dir={self.layout.kubelet}",
            f"--cert-dir={self.layout.kubelet / 'pki'}",
            "--v=1",
        ]

    def _proxy_argv(self) -> list[str]:
        # --v=2: each rules sync and how long it took, for failures that look like a late one.
        return ["kube-proxy", f"--config={self.layout.config / 'kube-proxy.yaml'}", "--v=2"]

    def _containerd_answers(self) -> bool:
        if not self.containerd_socket.exists():
            return False
        result = subprocess.run(
            ["ctr", "--address", str(self.containerd_socket), "version"],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _import_agent_images(self) -> None:
        archive = self.layout.root / "agent-images.tar"
        images.write_agent_archive(self.binaries.agent, archive)
        try:
            images.ctr_import(self.containerd_socket, archive)
        except images.ImageError as error:
            raise ClusterError(f"containerd: {error}\n{self._tail('containerd')}") from None
        archive.unlink()

    # ---- API helpers (urllib: each kubectl start costs a few hundred ms of CPU) --------

    def _api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self._pki is not None
        context = ssl.create_default_context(cafile=str(self._pki.ca_cert))
        context.load_cert_chain(str(self._pki.admin_cert), str(self._pki.admin_key))
        request = urllib.request.Request(
            f"{self.server}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return json.loads(response.read() or b"{}")

    def _api_or_none(self, path: str) -> Any:
        try:
            return self._api("GET", path)
        except (urllib.error.URLError, OSError, json.JSONDecodeError):
            return None

    def _node_ready(self) -> bool:
        node = self._api_or_none(f"/api/v1/nodes/{NODE_NAME}")
        return node is not None and _condition(node, "Ready")

    def _run_probe_pod(self) -> None:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": PROBE_POD, "namespace": "default"},
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 0,
                "containers": [
                    {
                        "name": "probe",
                        "image": images.PROBE_IMAGE,
                        "imagePullPolicy": "Never",
                        "readinessProbe": {
                            "httpGet": {"path": "/healthz", "port": 8080},
                            "periodSeconds": 1,
                        },
                    }
                ],
            },
        }

        def created() -> bool:
            # Admission refuses pods until the controller-manager made the default ServiceAccount.
            try:
                self._api("POST", "/api/v1/namespaces/default/pods", pod)
            except urllib.error.HTTPError as error:
                return error.code == 409
            except (urllib.error.URLError, OSError):
                return False
            return True

        self._wait_for("probe pod accepted", created, 30, blame="kube-controller-manager")
        path = f"/api/v1/namespaces/default/pods/{PROBE_POD}"
        self._wait_for(
            "probe pod Ready",
            lambda: _condition(self._api_or_none(path) or {}, "Ready"),
            60,
            blame="kubelet",
            extra=lambda: json.dumps((self._api_or_none(path) or {}).get("status"), indent=1),
        )
        with contextlib.suppress(urllib.error.URLError, OSError):
            self._api("DELETE", path)

    def _wait_for(
        self,
        what: str,
        check: Callable[[], bool],
        timeout: float,
        *,
        blame: str,
        extra: Callable[[], str] | None = None,
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.proc is not None and process.proc.poll() is not None:
                    raise ClusterError(
                        f"{name} exited with code {process.proc.returncode} while waiting for"
                        f" {what}; last log lines:\n{process.log_tail()}"
                    )
            if check():
                return
            time.sleep(0.2)
        details = f"\n{extra()}" if extra else ""
        raise ClusterError(
            f"{what}: not reached after {timeout:.0f}s ({blame} is the likely culprit);"
            f" last {blame} log lines:\n{self._tail(blame)}\n"
            f"last containerd log lines:\n{self._tail('containerd')}{details}"
        )

    def _tail(self, name: str, lines: int = 30) -> str:
        process = self.processes.get(name)
        if process is None:
            return "(not started)"
        return process.log_tail(lines)

    # ---- state and stop -----------------------------------------------------------------

    def _save_state(self) -> None:
        state = {
            "version": self.binaries.version.git,
            "bin_dir": str(self.binaries.bin_dir),
            "pids": {name: process.pid for name, process in self.processes.items()},
            "ports": self.ports.__dict__,
            "containerd_socket": str(self.containerd_socket),
            "kubeconfig": str(self.kubeconfig),
            "route_localnet_before": self.route_localnet_before,
            "created_host_dirs": self.created_host_dirs,
        }
        self.layout.state.write_text(json.dumps(state, indent=2) + "\n")

    def stop(self, grace: float = 5.0) -> teardown.Leftovers:
        """Stop everything this run started and remove its host-wide traces."""
        started = time.monotonic()
        state = read_state(self.layout.root)
        state["pids"] = {
            **state.get("pids", {}),
            **{name: process.pid for name, process in self.processes.items()},
        }
        leftovers = stop_run(self.layout.root, state, grace)
        for process in self.processes.values():
            if process.proc is not None:
                with contextlib.suppress(Exception):
                    process.proc.wait(timeout=1)
        self.processes.clear()
        release_claim(self.layout.root)
        self.timings["stop"] = round(time.monotonic() - started, 1)
        self.progress(f"cluster stopped in {self.timings['stop']:.1f}s: {leftovers}")
        return leftovers


def _condition(obj: dict[str, Any], kind: str) -> bool:
    conditions = obj.get("status", {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def read_state(run_dir: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(Layout(run_dir).state.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return state


def stop_run(run_dir: Path, state: dict[str, Any], grace: float = 5.0) -> teardown.Leftovers:
    """Teardown from the run's recorded state alone, so `down` works from another process."""
    layout = Layout(run_dir.resolve())
    pids: dict[str, int] = state.get("pids", {})
    # Node agents first, so nothing restarts containers while they are being killed.
    agents = [pids[name] for name in ("kubelet", "kube-proxy") if name in pids]
    teardown.stop_pids(agents, grace)
    control_plane = [
        pids[name]
        for name in ("kube-controller-manager", "kube-scheduler", "kube-apiserver")
        if name in pids
    ]
    teardown.stop_pids(control_plane, grace)
    teardown.kill_containers(layout.containerd_socket)
    teardown.stop_pids([pids[name] for name in ("containerd", "etcd") if name in pids], grace)
    teardown.kill_containers(layout.containerd_socket)
    containers = teardown.container_ids(layout.containerd / "state")
    teardown.unmount_all(layout.root)
    teardown.remove_container_cgroups(containers)
    teardown.clean_iptables(NETWORK_NAME)
    teardown.delete_link(BRIDGE)
    route_localnet_before = state.get("route_localnet_before")
    if route_localnet_before is not None:
        with contextlib.suppress(OSError):
            ROUTE_LOCALNET.write_text(route_localnet_before)
    _remove_log_links(layout.pod_logs)
    teardown.remove_created_dirs(Path(path) for path in state.get("created_host_dirs", []))
    for heavy in ("containerd", "etcd", "kubelet", "cni"):
        shutil.rmtree(layout.root / heavy, ignore_errors=True)
    return leftovers(layout, pids)


def _remove_log_links(pod_logs: Path) -> None:
    if not CONTAINER_LOG_LINKS.is_dir():
        return
    for link in CONTAINER_LOG_LINKS.iterdir():
        with contextlib.suppress(OSError):
            if link.is_symlink() and str(os.readlink(link)).startswith(str(pod_logs)):
                link.unlink()


def leftovers(layout: Layout, pids: dict[str, int]) -> teardown.Leftovers:
    found = teardown.Leftovers()
    found.processes = [f"{name}[{pid}]" for name, pid in pids.items() if teardown.alive(pid)]
    found.processes += [f"shim[{pid}]" for pid in teardown.shim_pids(layout.containerd_socket)]
    found.mounts = teardown.mounts_under(layout.root)
    found.iptables = teardown.iptables_leftovers(NETWORK_NAME)
    found.links = [BRIDGE] if teardown.link_exists(BRIDGE) else []
    return found


# ---- one cluster per machine -----------------------------------------------------------
# kube-proxy rewrites the host's KUBE-* chains wholesale, so two clusters on one host would
# break each other's Services. A claim file names the running one; others wait for it.


def _claim_file() -> Path:
    return run_root() / "active.json"


@contextlib.contextmanager
def _claim_lock() -> Iterator[None]:
    run_root().mkdir(parents=True, exist_ok=True)
    with (run_root() / "claim.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def active_run() -> Path | None:
    """The run dir of a live local cluster on this machine, if any.

    A cluster started by `up` (detached) lives while its components do; one started by a test
    session lives while that session does, so a killed session's orphans are taken over.
    """
    try:
        claim_data = json.loads(_claim_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    run_dir = Path(claim_data["run_dir"])
    if claim_data.get("detached"):
        pids = read_state(run_dir).get("pids", {}).values()
        return run_dir if any(teardown.alive(pid) for pid in pids) else None
    return run_dir if teardown.alive(int(claim_data.get("owner", 0))) else None


def detached_run() -> Path | None:
    """The run dir of a live cluster started by `python -m harness.kube up`, if any."""
    with _claim_lock():
        holder = active_run()
        if holder is None:
            return None
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            if json.loads(_claim_file().read_text()).get("detached"):
                return holder
    return None


def take_claim(run_dir: Path, progress: Progress, *, detached: bool) -> None:
    """Take the machine's one cluster slot for `run_dir`, waiting while another run holds it."""
    deadline = time.monotonic() + wait_seconds()
    announced = False
    while True:
        with _claim_lock():
            holder = active_run()
            if holder is None or holder == run_dir:
                _take_over_stale(run_dir)
                claim_data = {"run_dir": str(run_dir), "owner": os.getpid(), "detached": detached}
                _claim_file().write_text(json.dumps(claim_data) + "\n")
                return
            owner = json.loads(_claim_file().read_text()).get("owner")
        if owner == os.getpid():
            raise ClusterError(f"this process already runs the local cluster in {holder}")
        if time.monotonic() > deadline:
            raise ClusterError(
                f"another local cluster is running in {holder}; stop it with"
                f" `python -m harness.kube down --run-dir {holder}` or reuse it with"
                f" GENESIS_TEST_KUBECONFIG={holder}/kubeconfig"
            )
        if not announced:
            progress(f"waiting for the local cluster in {holder} to stop (one per machine)")
            announced = True
        time.sleep(1.0)


def _take_over_stale(run_dir: Path) -> None:
    """A crashed run may have left rules, mounts or shims: clear them before starting anew."""
    try:
        previous = Path(json.loads(_claim_file().read_text())["run_dir"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return
    if previous != run_dir and previous.exists():
        stop_run(previous, read_state(previous), grace=1.0)


def release_claim(run_dir: Path) -> None:
    with _claim_lock(), contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
        if Path(json.loads(_claim_file().read_text())["run_dir"]) == run_dir.resolve():
            _claim_file().unlink()
