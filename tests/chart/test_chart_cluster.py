"""The chart on a real cluster: each strategy installed with the image this session built.

Under a bounded load on 127.0.0.1 (two clients, new connection per request, at most ~60 s),
a rolling upgrade to a new image and a blue/green switch each lose 0 requests: the preStop
delay, the drain and terminationGracePeriodSeconds doing their job. The counts are printed.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import helm_python as helm
import pytest

from chart.chart_support import CHART, TEST_API_KEY, TEST_KEY_LINE
from genesis.service.keys import key_line
from harness.kube.access import KubeCluster
from harness.kube.images import podman
from harness.kube.probes import wait_until_ok
from image.genesis_image import BuiltImage

pytestmark = [pytest.mark.kube, pytest.mark.integration, pytest.mark.slow, pytest.mark.container]

V2_TAG = "test-v2"
KEY_SECRET = "chart-test-api-key"
CHAT = {"model": "genesis-offline-demo", "messages": [{"role": "user", "content": "hello"}]}


def _values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "image": {"repository": "localhost/genesis", "tag": "test", "pullPolicy": "IfNotPresent"},
        "service": {"type": "NodePort"},
        # The chart's own preStop and drain (Helm merges this map into values.yaml's: the time
        # endpoint removal has to reach kube-proxy); a shorter grace, as answers take ms.
        "shutdown": {"graceSeconds": 10},
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"memory": "384Mi"}},
        "apiKeys": {"lines": [TEST_KEY_LINE]},
        "tests": {"apiKeySecret": {"name": KEY_SECRET}},
    }
    for key, value in overrides.items():
        values[key] = value if not isinstance(value, dict) else {**values.get(key, {}), **value}
    return values


@pytest.fixture(scope="module")
def images(
    kube_cluster: KubeCluster, genesis_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The session's image and a second one derived from it (another revision), both loaded."""
    context = tmp_path_factory.mktemp("v2")
    (context / "Containerfile").write_text(
        f"FROM {genesis_image.ref}\n"
        "ENV GENESIS_REVISION=v2\n"
        "LABEL org.opencontainers.image.revision=v2\n"
    )
    v2 = f"localhost/genesis:{V2_TAG}"
    podman(
        "build", "--format", "docker", "-t", v2, "-f", str(context / "Containerfile"), str(context)
    )
    kube_cluster.load_image(genesis_image.ref)
    kube_cluster.load_image(v2)
    return {"v1": genesis_image.ref, "v2": v2}


@pytest.fixture(scope="module")
def helm_config(kube_cluster: KubeCluster, kube_namespace: str) -> Iterator[helm.Config]:
    # The plaintext key the `helm test` hook presents (the release holds only its hash).
    kube_cluster.kubectl(
        "create",
        "secret",
        "generic",
        KEY_SECRET,
        "-n",
        kube_namespace,
        f"--from-literal=api-key={TEST_API_KEY}",
    )
    with helm.Config(kubeconfig_path=kube_cluster.kubeconfig, namespace=kube_namespace) as config:
        yield config


def _post_chat(url: str, timeout: float = 10, key: str = TEST_API_KEY) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=json.dumps(CHAT).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.load(answer)


def _wait_ready(url: str, timeout: float = 60) -> None:
    # From probe ports: a refused probe's stale conntrack entry must not refuse the load later.
    wait_until_ok(f"{url}/readyz", timeout=timeout)


@dataclass
class Load:
    """What the load clients saw: a count per outcome, and when each failure happened."""

    started: float = field(default_factory=time.monotonic)
    outcomes: Counter[str] = field(default_factory=Counter)
    # (seconds into the load, wall-clock time as the cluster's logs print it, what failed)
    failures: list[tuple[float, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def succeeded(self) -> None:
        with self.lock:
            self.outcomes["ok"] += 1

    def failed(self, what: str) -> None:
        with self.lock:
            self.outcomes[what] += 1
            wall = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
            self.failures.append((time.monotonic() - self.started, wall, what))

    def errors(self) -> dict[str, int]:
        return {key: count for key, count in self.outcomes.items() if key != "ok"}

    def report(self) -> str:
        """The failures on the load's clock and the wall clock (UTC), for a failed assertion."""
        return "; ".join(f"{at:.2f}s ({wall}): {what}" for at, wall, what in self.failures[:20])


@contextmanager
def _load(url: str, clients: int = 2, max_seconds: float = 90) -> Iterator[Load]:
    """Chat completions in a loop until the block ends (or max_seconds, whichever is first)."""
    load = Load()
    stop = threading.Event()
    deadline = time.monotonic() + max_seconds

    def client() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                reply = _post_chat(url)
                if reply["choices"][0]["message"]["content"]:
                    load.succeeded()
                else:
                    load.failed("empty")
            except urllib.error.HTTPError as error:
                load.failed(f"error: HTTP {error.code}")
            except (urllib.error.URLError, OSError) as error:
                load.failed(f"error: {error}")
            time.sleep(0.01)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield load
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)


def _assert_nothing_lost(
    load: Load, what: str, kube_cluster: KubeCluster, namespace: str, at_least: int
) -> None:
    if load.errors():
        pytest.fail(
            f"failed requests during {what}: {load.errors()} at {load.report()} "
            f"(ok: {load.outcomes['ok']})\n{kube_cluster.diagnostics(namespace)}"
        )
    assert load.outcomes["ok"] > at_least


def _pods(kube_cluster: KubeCluster, namespace: str, release: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=server"
    pods = kube_cluster.kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"]
    return [pod for pod in pods if "deletionTimestamp" not in pod["metadata"]]


def _endpoint_tracks(kube_cluster: KubeCluster, namespace: str, service: str) -> Counter[str]:
    """The track of every pod behind a Service, from its EndpointSlices."""
    slices = kube_cluster.kubectl.json(
        "get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}"
    )["items"]
    names = {
        endpoint["targetRef"]["name"]
        for item in slices
        for endpoint in item.get("endpoints") or []
        if endpoint.get("conditions", {}).get("ready")
    }
    pods = kube_cluster.kubectl.json("get", "pods", "-n", namespace)["items"]
    return Counter(
        pod["metadata"]["labels"]["track"] for pod in pods if pod["metadata"]["name"] in names
    )


def _await_endpoint_tracks(
    kube_cluster: KubeCluster,
    namespace: str,
    service: str,
    expected: dict[str, int],
    timeout: float = 30,
) -> None:
    """Wait until the Service's ready endpoints are `expected` (track: pods). Pods turn Ready
    before the EndpointSlice controller lists them, so a rollout's end is not yet that."""
    deadline = time.monotonic() + timeout
    while (seen := _endpoint_tracks(kube_cluster, namespace, service)) != Counter(expected):
        assert time.monotonic() < deadline, (
            f"{service} endpoints by track: {dict(seen)}, expected {expected} within {timeout} s"
        )
        time.sleep(0.5)


def test_every_object_of_every_toggle_is_accepted_by_the_api_server(
    helm_config: helm.Config, images: dict[str, str]
) -> None:
    # Server-side dry run: admission and the API server's own validation, nothing created.
    values = _values(
        worker={"enabled": True},
        autoscaling={"enabled": True},
        secretEnv={"GENESIS_OPENAI_API_KEY": "sk-test"},
        networkPolicy={"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]},
        ingress={"enabled": True},
    )
    release = helm_config.install(CHART, "dry", values, dry_run="server")
    kinds = {
        line.split(":", 1)[1].strip()
        for line in release["manifest"].splitlines()
        if line.startswith("kind:")
    }
    assert {
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
        "Secret",
    } <= kinds


def test_rolling_install_serves_and_passes_helm_test(
    kube_cluster: KubeCluster, kube_namespace: str, helm_config: helm.Config, images: dict[str, str]
) -> None:
    # The worker Deployment runs `serve` here: `genesis worker` needs a Redis, which the test
    # cluster does not run; this proves its Deployment (hardened, same image, no ports or
    # probes) starts and stays up. The worker itself: tests/service/test_jobs_workers.py.
    values = _values(worker={"enabled": True, "args": ["serve"]})
    release = helm_config.install(CHART, "rel", values, wait="watcher", timeout=180)
    assert release["status"] == "deployed"
    pods = _pods(kube_cluster, kube_namespace, "rel")
    assert len(pods) == 2
    for pod in pods:
        assert all(status["ready"] for status in pod["status"]["containerStatuses"])
        container = pod["spec"]["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"]["runAsUser"] == 10001
    worker = kube_cluster.kubectl.json(
        "get", "deployment", "rel-genesis-worker", "-n", kube_namespace
    )
    assert worker["status"].get("readyReplicas") == 1
    # Prometheus finds the worker's /metrics with the servers' through the metrics Service.
    _await_endpoint_tracks(kube_cluster, kube_namespace, "rel-genesis-metrics", {"stable": 3})
    url = kube_cluster.service_url("rel-genesis", kube_namespace)
    _wait_ready(url)
    assert _post_chat(url)["choices"][0]["message"]["content"]
    tested = helm_config.test("rel", timeout=120, logs=True)
    print(tested.get("logs", ""))
    assert "no key: 401" in tested.get("logs", "")
    assert "chat completion:" in tested.get("logs", "")
    for kind, name in (
        ("pdb", "rel-genesis"),
        ("networkpolicy", "rel-genesis"),
        ("serviceaccount", "rel-genesis"),
    ):
        kube_cluster.kubectl("get", kind, name, "-n", kube_namespace)


def test_rolling_upgrade_under_load_loses_nothing_and_rollback_restores(
    kube_cluster: KubeCluster, kube_namespace: str, helm_config: helm.Config, images: dict[str, str]
) -> None:
    url = kube_cluster.service_url("rel-genesis", kube_namespace)
    _wait_ready(url)
    with _load(url) as load:
        time.sleep(2)
        upgraded = helm_config.upgrade(
            CHART,
            "rel",
            _values(image={"tag": V2_TAG}, worker={"enabled": True, "args": ["serve"]}),
            wait="watcher",
            timeout=180,
        )
        time.sleep(2)
    print(f"rolling upgrade under load: {dict(load.outcomes)}")
    assert upgraded["revision"] == 2
    _assert_nothing_lost(load, "the upgrade", kube_cluster, kube_namespace, at_least=50)
    images_now = {
        p["spec"]["containers"][0]["image"] for p in _pods(kube_cluster, kube_namespace, "rel")
    }
    assert images_now == {images["v2"]}

    helm_config.rollback("rel", version=1, wait="watcher", timeout=180)
    assert helm_config.status("rel")["revision"] == 3
    deployment = kube_cluster.kubectl.json("get", "deployment", "rel-genesis", "-n", kube_namespace)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == images["v1"]
    kube_cluster.kubectl(
        "rollout",
        "status",
        "deployment/rel-genesis",
        "-n",
        kube_namespace,
        "--timeout=120s",
        timeout=130,
    )
    _wait_ready(url)
    helm_config.uninstall("rel", wait="watcher", timeout=120)


def test_bluegreen_switch_under_load_loses_nothing(
    kube_cluster: KubeCluster, kube_namespace: str, helm_config: helm.Config, images: dict[str, str]
) -> None:
    values = _values(
        strategy="bluegreen",
        replicaCount=1,
        blueGreen={"activeColor": "blue", "green": {"tag": V2_TAG}},
    )
    helm_config.install(CHART, "bg", values, wait="watcher", timeout=180)
    url = kube_cluster.service_url("bg-genesis", kube_namespace)
    preview = kube_cluster.service_url("bg-genesis-preview", kube_namespace)
    _wait_ready(url)
    _wait_ready(preview)
    _await_endpoint_tracks(kube_cluster, kube_namespace, "bg-genesis", {"blue": 1})
    assert _post_chat(preview)["choices"][0]["message"]["content"]
    with _load(url) as load:
        time.sleep(2)
        switched = {**values, "blueGreen": {**values["blueGreen"], "activeColor": "green"}}
        helm_config.upgrade(CHART, "bg", switched, wait="watcher", timeout=120)
        # kube-proxy picks up the new endpoints on its next sync.
        _await_endpoint_tracks(kube_cluster, kube_namespace, "bg-genesis", {"green": 1})
        time.sleep(3)
    print(f"blue/green switch under load: {dict(load.outcomes)}")
    _assert_nothing_lost(load, "the switch", kube_cluster, kube_namespace, at_least=20)
    _await_endpoint_tracks(kube_cluster, kube_namespace, "bg-genesis-preview", {"blue": 1})
    helm_config.test("bg", timeout=120)
    helm_config.uninstall("bg", wait="watcher", timeout=120)


def test_canary_by_replica_ratio(
    kube_cluster: KubeCluster, kube_namespace: str, helm_config: helm.Config, images: dict[str, str]
) -> None:
    values = _values(strategy="canary", replicaCount=2, canary={"replicas": 1, "tag": V2_TAG})
    helm_config.install(CHART, "cn", values, wait="watcher", timeout=180)
    url = kube_cluster.service_url("cn-genesis", kube_namespace)
    _wait_ready(url)
    # One Service over both tracks: the canary's share of the endpoints is its replica share.
    _await_endpoint_tracks(kube_cluster, kube_namespace, "cn-genesis", {"stable": 2, "canary": 1})
    _await_endpoint_tracks(kube_cluster, kube_namespace, "cn-genesis-canary", {"canary": 1})
    answers = [_post_chat(url) for _ in range(20)]
    assert all(answer["choices"][0]["message"]["content"] for answer in answers)
    helm_config.test("cn", timeout=120)
    helm_config.uninstall("cn", wait="watcher", timeout=120)


def _chat_status(url: str, key: str) -> int:
    try:
        _post_chat(url, key=key)
    except urllib.error.HTTPError as error:
        return error.code
    return 200


def test_keys_rotate_in_running_pods_when_their_secret_changes(
    kube_cluster: KubeCluster, kube_namespace: str, helm_config: helm.Config, images: dict[str, str]
) -> None:
    # The team's own Secret (apiKeys.existingSecret): changing it rolls nothing. The kubelet
    # swaps the mounted file and the running service reads it (GENESIS_API_KEYS_RELOAD_SECONDS).
    rotated = "gk-test-rotated-0123456789abcdef0123456789"

    def team_keys(*lines: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "team-keys"},
            "stringData": {"api-keys": "".join(f"{line}\n" for line in lines)},
        }

    kube_cluster.kubectl.apply(team_keys(TEST_KEY_LINE), namespace=kube_namespace)
    values = _values(
        replicaCount=1,
        apiKeys={"lines": [], "existingSecret": "team-keys"},
        config={"GENESIS_API_KEYS_RELOAD_SECONDS": "1"},
    )
    helm_config.install(CHART, "keys", values, wait="watcher", timeout=180)
    url = kube_cluster.service_url("keys-genesis", kube_namespace)
    _wait_ready(url)
    assert _chat_status(url, TEST_API_KEY) == 200
    assert _chat_status(url, rotated) == 401
    [before] = _pods(kube_cluster, kube_namespace, "keys")

    kube_cluster.kubectl.apply(team_keys(key_line("rotated", rotated)), namespace=kube_namespace)
    started = time.monotonic()
    while _chat_status(url, rotated) != 200:
        assert time.monotonic() - started < 120, "the pod never accepted the rotated key"
        time.sleep(1)
    print(f"rotated key accepted {time.monotonic() - started:.1f} s after the Secret changed")
    assert _chat_status(url, TEST_API_KEY) == 401
    [after] = _pods(kube_cluster, kube_namespace, "keys")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["status"]["containerStatuses"][0]["restartCount"] == 0
    helm_config.uninstall("keys", wait="watcher", timeout=120)
