"""The compose monitoring stack shipped with the package: every file it mounts exists, the
provisioning matches the shipped configs, and podman-compose resolves it.

Grafana cannot run on the build machines (no image registry, no Debian package), so its
provisioning is checked as data against what Grafana's file provisioning reads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from genesis.observability import compose_file, monitoring_dir

COMPOSE = compose_file()
COMPOSE_DIR = COMPOSE.parent
MONITORING = monitoring_dir()
CONTAINERS_CONF = Path(__file__).parents[1] / "harness" / "kube" / "containers.conf"
UPSTREAM_IMAGES = {
    "prometheus": ("GENESIS_PROMETHEUS_IMAGE", "docker.io/prom/prometheus:"),
    "alertmanager": ("GENESIS_ALERTMANAGER_IMAGE", "docker.io/prom/alertmanager:"),
    "grafana": ("GENESIS_GRAFANA_IMAGE", "docker.io/grafana/grafana:"),
}
# The binaries the upstream images run (their ENTRYPOINT); images that keep them elsewhere
# (Debian's packages: /usr/bin/prometheus, /usr/bin/prometheus-alertmanager) name theirs.
UPSTREAM_ENTRYPOINTS = {
    "prometheus": ("GENESIS_PROMETHEUS_ENTRYPOINT", "/bin/prometheus"),
    "alertmanager": ("GENESIS_ALERTMANAGER_ENTRYPOINT", "/bin/alertmanager"),
}
_DEFAULTED = re.compile(r"^\$\{(?P<var>[A-Z_]+):-(?P<default>[^}]+)\}$")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every bind mount; named volumes have no path in their source."""
    mounts = []
    for volume in service.get("volumes", []):
        # A `${VAR:-default}` source holds a colon of its own.
        end = volume.index("}") + 1 if volume.startswith("${") else volume.index(":")
        source, target = volume[:end], volume[end + 1 :].split(":")[0]
        if "/" in source or source.startswith("$"):
            mounts.append((source, target))
    return mounts


def mounted_at(service: dict[str, Any], container_path: str) -> Path:
    """The host path (shipped asset) that a container sees at `container_path`."""
    for source, target in bind_mounts(service):
        if container_path == target or container_path.startswith(target + "/"):
            return (COMPOSE_DIR / source).resolve() / os.path.relpath(container_path, target)
    raise AssertionError(f"nothing is mounted at {container_path}")


def test_compose_file_is_found_through_the_assets_api() -> None:
    assert COMPOSE.is_file()
    assert COMPOSE.is_relative_to(MONITORING)


def test_every_shipped_mount_exists() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for source, target in bind_mounts(service):
            if source.startswith("$"):
                continue  # user-supplied (the Alertmanager secrets); checked below
            path = (COMPOSE_DIR / source).resolve()
            assert path.exists(), f"{name}: {source} (mounted at {target}) does not exist"
            assert path.is_relative_to(MONITORING), f"{name}: {source} is not a shipped asset"


def test_images_are_pinned_upstream_and_configurable() -> None:
    services = compose()["services"]
    for name, (variable, upstream) in UPSTREAM_IMAGES.items():
        match = _DEFAULTED.match(services[name]["image"])
        assert match, f"{name}: image must be ${{{variable}:-...}}"
        assert match["var"] == variable
        assert match["default"].startswith(upstream)
        tag = match["default"].rsplit(":", 1)[1]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: pin a release, not {tag!r}"
    assert _DEFAULTED.match(services["genesis"]["image"])["var"] == "GENESIS_IMAGE"  # type: ignore[index]
    assert services["genesis"]["profiles"] == ["service"]


def test_binaries_are_the_upstream_ones_and_configurable() -> None:
    services = compose()["services"]
    for name, (variable, binary) in UPSTREAM_ENTRYPOINTS.items():
        # One binary, every flag in `command`: an override swaps the program, never the flags.
        [entrypoint] = services[name]["entrypoint"]
        match = _DEFAULTED.match(entrypoint)
        assert match, f"{name}: entrypoint must be [${{{variable}:-...}}]"
        assert (match["var"], match["default"]) == (variable, binary)
        assert all(arg.startswith("--") for arg in services[name]["command"]), name


def test_genesis_requires_api_keys() -> None:
    """Listening on 0.0.0.0 in its container, genesis serve needs a keys file: the service
    mounts one (read-only) and names it, and never turns authentication off."""
    genesis = compose()["services"]["genesis"]
    environment = genesis["environment"]
    assert environment["GENESIS_HOST"] == "0.0.0.0"  # inside its container
    assert "GENESIS_AUTH" not in environment
    [(source, target)] = [(s, t) for s, t in bind_mounts(genesis) if s.startswith("$")]
    match = _DEFAULTED.match(source)
    assert match
    assert match["var"] == "GENESIS_API_KEYS_FILE"
    assert match["default"] == "./secrets/api-keys"
    assert environment["GENESIS_API_KEYS_FILE"] == target
    assert f"{source}:{target}:ro" in genesis["volumes"]
    # The image writes nothing outside /tmp.
    assert genesis["read_only"] is True
    assert genesis["tmpfs"] == ["/tmp"]


def test_prometheus_finds_its_rules_and_alertmanager() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    config_path = mounted_at(prometheus, "/etc/prometheus/prometheus.yml")
    assert config_path == MONITORING / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    for pattern in config["rule_files"]:
        found = list(
            mounted_at(prometheus, f"/etc/prometheus/{pattern}").parent.glob("*.rules.yml")
        )
        assert {p.name for p in found} == {
            p.name for p in (MONITORING / "prometheus" / "rules").glob("*.rules.yml")
        }
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = targets[0].split(":")
    assert host in services
    assert f"--web.listen-address=:{port}" in services[host]["command"]
    genesis_target = next(j for j in config["scrape_configs"] if j["job_name"] == "genesis")
    host, port = genesis_target["static_configs"][0]["targets"][0].split(":")
    assert host in services
    assert services[host]["environment"]["GENESIS_METRICS_PORT"] == port


def test_alertmanager_sees_its_templates_and_secrets() -> None:
    alertmanager = compose()["services"]["alertmanager"]
    config_path = mounted_at(alertmanager, "/etc/alertmanager/alertmanager.yml")
    config = yaml.safe_load(config_path.read_text())
    for pattern in config["templates"]:
        directory = mounted_at(alertmanager, f"/etc/alertmanager/{pattern}").parent
        assert list(directory.glob("*.tmpl"))
    secret_files = {
        value
        for receiver in config["receivers"]
        for kind in ("slack_configs", "email_configs")
        for entry in receiver.get(kind, [])
        for key, value in entry.items()
        if key.endswith("_file")
    }
    secrets_mount = next(t for s, t in bind_mounts(alertmanager) if s.startswith("$"))
    assert secret_files
    assert all(Path(f).parent == Path(secrets_mount) for f in secret_files), secret_files


def test_grafana_provisioning_points_at_the_stack() -> None:
    services = compose()["services"]
    grafana = services["grafana"]
    provisioning = mounted_at(grafana, "/etc/grafana/provisioning")
    [datasource_file] = (provisioning / "datasources").glob("*.yml")
    datasources = yaml.safe_load(datasource_file.read_text())
    assert datasources["apiVersion"] == 1
    [datasource] = datasources["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["isDefault"] is True
    assert datasource["url"] == "http://prometheus:9090"
    assert "--web.listen-address=:9090" in services["prometheus"]["command"]

    [provider_file] = (provisioning / "dashboards").glob("*.yml")
    [provider] = yaml.safe_load(provider_file.read_text())["providers"]
    assert provider["type"] == "file"
    dashboards = mounted_at(grafana, provider["options"]["path"])
    assert dashboards == MONITORING / "dashboards"
    boards = [json.loads(p.read_text()) for p in dashboards.glob("*.json")]
    assert len(boards) == 4
    assert all(board["uid"] and board["title"] for board in boards)
    # The dashboards choose a Prometheus datasource through a variable, which the provisioned
    # default one satisfies.
    for board in boards:
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["query"] == "prometheus"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert mounted_at(grafana, home).is_file()


@pytest.mark.integration
def test_podman_compose_resolves_the_stack(tmp_path: Path) -> None:
    binary = shutil.which("podman-compose")
    if binary is None:
        pytest.skip("podman-compose is not installed (pip install podman-compose)")
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(CONTAINERS_CONF),
        "GENESIS_ALERTMANAGER_SECRETS": str(tmp_path),
        "GENESIS_API_KEYS_FILE": str(tmp_path / "api-keys"),
        "GENESIS_PROMETHEUS_IMAGE": "localhost/test-prometheus:1",
        "GENESIS_ALERTMANAGER_ENTRYPOINT": "/usr/bin/prometheus-alertmanager",
    }
    for variable in ("GENESIS_PROMETHEUS_ENTRYPOINT", "GENESIS_IMAGE"):
        env.pop(variable, None)
    result = subprocess.run(
        [binary, "-f", str(COMPOSE), "--profile", "service", "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    services = resolved["services"]
    assert set(services) == {"prometheus", "alertmanager", "grafana", "genesis"}
    assert services["prometheus"]["image"] == "localhost/test-prometheus:1"
    assert services["alertmanager"]["image"].startswith("docker.io/prom/alertmanager:")
    assert f"{tmp_path}:/etc/alertmanager/secrets:ro" in services["alertmanager"]["volumes"]
    assert services["prometheus"]["entrypoint"] == ["/bin/prometheus"]
    assert services["alertmanager"]["entrypoint"] == ["/usr/bin/prometheus-alertmanager"]
    keys_mount = f"{tmp_path / 'api-keys'}:/etc/genesis/api-keys:ro"
    assert keys_mount in services["genesis"]["volumes"]
    # Published on loopback unless told otherwise: a monitoring UI is not public by accident.
    for name in ("prometheus", "alertmanager", "grafana", "genesis"):
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), name
