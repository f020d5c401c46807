"""The shipped compose monitoring stack, run for real with podman-compose.

No image registry is reachable on the build machines, so Prometheus and Alertmanager run from
one local image of Debian's packages (debootstrap + `podman import`, made once and then found by
name) and the genesis service from the image the image tests build. The compose file is the
shipped one, unchanged: only its documented environment variables differ (images, binaries,
loopback ports, secrets, the API keys file). Grafana has neither an image nor a Debian package
here, so it is not started (its provisioning is checked as data by test_obs_compose.py).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from genesis.observability import compose_file, monitoring_dir
from genesis.pipeline.build import ensure_debian_base, image_exists
from genesis.service.keys import key_line, new_key
from harness.kube.images import podman, podman_env
from harness.processes import free_port
from image.genesis_image import BuiltImage, build_test_image

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.container]

COMPOSE = compose_file()
MONITORING = monitoring_dir()
MONITORING_IMAGE = "localhost/genesis-monitoring-test:bookworm"
MONITORING_PACKAGES = ("prometheus", "prometheus-alertmanager", "ca-certificates")
# Debian installs the binaries under these names; the upstream images' are /bin/prometheus and
# /bin/alertmanager, the compose file's defaults.
DEBIAN_PROMETHEUS = "/usr/bin/prometheus"
DEBIAN_ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
# Grafana is left out: it cannot run on these machines.
SERVICES = ("prometheus", "alertmanager", "genesis")
T = TypeVar("T")


def require_compose_tools() -> str:
    if shutil.which("podman") is None:
        pytest.skip("podman not found: install the Debian packages 'podman runc'")
    binary = shutil.which("podman-compose")
    if binary is None:
        pytest.skip("podman-compose is not installed (pip install podman-compose)")
    return binary


@pytest.fixture(scope="session")
def monitoring_image() -> str:
    """Debian's Prometheus and Alertmanager in one image, built once and cached by name."""
    require_compose_tools()
    env = podman_env()
    if not image_exists("podman", MONITORING_IMAGE, env) and shutil.which("debootstrap") is None:
        pytest.skip("debootstrap not found (it makes the monitoring image): install 'debootstrap'")
    return ensure_debian_base(MONITORING_IMAGE, packages=MONITORING_PACKAGES, env=env)


@pytest.fixture(scope="session")
def genesis_image() -> BuiltImage:
    return build_test_image()


def get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


@dataclass
class Stack:
    """A compose project of the shipped file: its name, its environment, its loopback ports."""

    binary: str
    project: str
    env: dict[str, str]
    ports: dict[str, int]

    def compose(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-p", self.project, "-f", str(COMPOSE), "--profile", "service", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def logs(self) -> str:
        parts = []
        for service in SERVICES:
            result = podman("logs", "--tail", "40", self.container(service), check=False)
            parts.append(f"--- {service}\n{result.stdout}{result.stderr}")
        return "\n".join(parts)

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float = 90) -> T:
        """Poll `probe` until it returns something other than None (errors count as None)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(urllib.error.URLError, OSError, ValueError, KeyError):
                found = probe()
                if found is not None:
                    return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s\n{self.logs()}")
            time.sleep(0.5)

    def leftovers(self) -> list[str]:
        """Containers, pods, networks and volumes of this project that still exist."""
        label = f"label=io.podman.compose.project={self.project}"
        found = []
        for kind, args in (
            ("container", ("ps", "--all", "--filter", label, "--format", "{{.Names}}")),
            ("pod", ("pod", "ps", "--filter", f"name=pod_{self.project}", "--format", "{{.Name}}")),
            ("network", ("network", "ls", "--filter", label, "--format", "{{.Name}}")),
            ("volume", ("volume", "ls", "--filter", label, "--format", "{{.Name}}")),
        ):
            names = podman(*args, check=False).stdout.split()
            found += [f"{kind} {name}" for name in names]
        return found

    def remove_leftovers(self) -> None:
        label = f"label=io.podman.compose.project={self.project}"
        for args in (
            ("pod", "rm", "--force", f"pod_{self.project}"),
            ("network", "prune", "--force", "--filter", label),
            ("volume", "prune", "--force", "--filter", label),
        ):
            podman(*args, check=False)


@pytest.fixture
def compose_stack(
    tmp_path: Path, monitoring_image: str, genesis_image: BuiltImage
) -> Iterator[tuple[Stack, str]]:
    """The shipped stack up (without Grafana), and the API key its genesis accepts; always
    taken down with its volumes, whatever the test did."""
    binary = require_compose_tools()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "slack-webhook-url").write_text("https://hooks.slack.invalid/services/T0/B0/X\n")
    (secrets / "smtp-password").write_text("compose-test-password\n")
    key = new_key()
    keys_file = tmp_path / "api-keys"
    keys_file.write_text(key_line("compose-test", key) + "\n")
    # The genesis container runs as UID 10001, Alertmanager's as root: readable by both.
    for path in (keys_file, *secrets.iterdir()):
        path.chmod(0o644)
    ports = {service: free_port() for service in SERVICES}
    env = {
        **podman_env(),
        "GENESIS_PROMETHEUS_IMAGE": monitoring_image,
        "GENESIS_PROMETHEUS_ENTRYPOINT": DEBIAN_PROMETHEUS,
        "GENESIS_ALERTMANAGER_IMAGE": monitoring_image,
        "GENESIS_ALERTMANAGER_ENTRYPOINT": DEBIAN_ALERTMANAGER,
        "GENESIS_IMAGE": genesis_image.ref,
        "GENESIS_ALERTMANAGER_SECRETS": str(secrets),
        "GENESIS_API_KEYS_FILE": str(keys_file),
        "GENESIS_PROMETHEUS_PORT": f"127.0.0.1:{ports['prometheus']}",
        "GENESIS_ALERTMANAGER_PORT": f"127.0.0.1:{ports['alertmanager']}",
        "GENESIS_PORT": f"127.0.0.1:{ports['genesis']}",
    }
    # A project name of its own: a stack someone runs on this machine is never touched.
    stack = Stack(binary, f"genesis-monitoring-test-{ports['genesis']}", env, ports)
    try:
        up = stack.compose("up", "-d", *SERVICES)
        assert up.returncode == 0, f"podman-compose up failed:\n{up.stdout}\n{up.stderr}"
        yield stack, key
    finally:
        down = stack.compose("down", "-v")
        stack.remove_leftovers()
    assert down.returncode == 0, f"podman-compose down -v failed:\n{down.stdout}\n{down.stderr}"
    assert stack.leftovers() == []


def shipped_rule_groups() -> set[str]:
    return {
        group["name"]
        for path in (MONITORING / "prometheus" / "rules").glob("*.rules.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
    }


def test_the_shipped_stack_runs_and_watches_genesis(
    compose_stack: tuple[Stack, str], genesis_image: BuiltImage
) -> None:
    stack, key = compose_stack

    def prometheus(path: str) -> str:
        return stack.url("prometheus", path)

    def alertmanager(path: str) -> str:
        return stack.url("alertmanager", path)

    # Readiness by polling: compose HEALTHCHECKs do not run here.
    stack.wait_for("Prometheus /-/ready", lambda: status_of(prometheus("/-/ready")) == 200 or None)
    stack.wait_for(
        "Alertmanager /-/ready", lambda: status_of(alertmanager("/-/ready")) == 200 or None
    )
    stack.wait_for(
        "genesis /readyz", lambda: status_of(stack.url("genesis", "/readyz")) == 200 or None
    )

    # Secure by default: the API needs one of the keys in the mounted keys file.
    models = stack.url("genesis", "/v1/models")
    assert status_of(models) == 401
    assert status_of(models, {"Authorization": f"Bearer {key}"}) == 200

    # The shipped SLO and recording rules are loaded, and every rule evaluates without error.
    def rules_evaluated() -> dict[str, list[str]] | None:
        groups = get_json(prometheus("/api/v1/rules"))["data"]["groups"]
        health = {group["name"]: [rule["health"] for rule in group["rules"]] for group in groups}
        return health if all(h == "ok" for hs in health.values() for h in hs) else None

    health = stack.wait_for("every rule evaluated", rules_evaluated)
    assert set(health) == shipped_rule_groups()
    alerts = {
        rule["name"]
        for group in get_json(prometheus("/api/v1/rules?type=alert"))["data"]["groups"]
        for rule in group["rules"]
    }
    assert "GenesisTargetDown" in alerts
    assert "GenesisAvailabilityBudgetFastBurn" in alerts

    # It scrapes the genesis service over the compose network (genesis:9464).
    def genesis_up() -> list[dict[str, Any]] | None:
        query = prometheus("/api/v1/query?query=up%7Bjob%3D%22genesis%22%7D")
        result: list[dict[str, Any]] = get_json(query)["data"]["result"]
        return result if result and result[0]["value"][1] == "1" else None

    [up] = stack.wait_for("up{job=genesis} == 1", genesis_up)
    assert up["metric"]["instance"] == "genesis:9464"
    build_info = get_json(prometheus("/api/v1/query?query=genesis_build_info"))["data"]["result"]
    assert [series["metric"]["track"] for series in build_info] == ["stable"]
    assert build_info[0]["metric"]["version"] == genesis_image.result.version

    # Alertmanager runs the shipped config and finds its secrets where the config names them...
    status = get_json(alertmanager("/api/v2/status"))
    config = yaml.safe_load(status["config"]["original"])
    shipped = yaml.safe_load((MONITORING / "alertmanager" / "alertmanager.yml").read_text())
    assert {r["name"] for r in config["receivers"]} == {r["name"] for r in shipped["receivers"]}
    assert {r["name"] for r in config["receivers"]} == {"page", "slack-warning"}
    assert config["route"]["receiver"] == shipped["route"]["receiver"]
    assert status["cluster"]["status"] == "disabled"  # one instance, no gossip
    secret = podman(
        "exec",
        stack.container("alertmanager"),
        "cat",
        "/etc/alertmanager/secrets/slack-webhook-url",
    ).stdout
    assert secret.strip() == "https://hooks.slack.invalid/services/T0/B0/X"

    # ...and routes by severity as the shipped config says (a critical alert is a page).
    alert = [
        {"labels": {"alertname": "ComposeStackProbe", "severity": "critical", "job": "genesis"}}
    ]
    request = urllib.request.Request(
        alertmanager("/api/v2/alerts"),
        data=json.dumps(alert).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200

    def routed() -> list[str] | None:
        found = get_json(alertmanager("/api/v2/alerts?filter=alertname%3D%22ComposeStackProbe%22"))
        return [r["name"] for r in found[0]["receivers"]] if found else None

    assert stack.wait_for("the probe alert routed", routed, timeout=15) == ["page"]

    # Prometheus knows its Alertmanager by the compose service name.
    def active_alertmanagers() -> list[str] | None:
        data = get_json(prometheus("/api/v1/alertmanagers"))["data"]
        urls = [entry["url"] for entry in data["activeAlertmanagers"]]
        return urls or None

    assert stack.wait_for("an active Alertmanager", active_alertmanagers) == [
        "http://alertmanager:9093/api/v2/alerts"
    ]
