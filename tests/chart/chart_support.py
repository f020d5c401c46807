"""Rendering the chart with real Helm (helm-python-sdk) and looking at what came out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from genesis.service.keys import key_line

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "genesis"
RELEASE = "rel"
NAMESPACE = "ns"

Manifest = dict[str, Any]

# A key for the tests (never used anywhere else) and its keys-file line.
TEST_API_KEY = "gk-test-0123456789abcdef0123456789abcdef"
TEST_KEY_LINE = key_line("chart-test", TEST_API_KEY)
# Under every rendering: the service refuses to start without API keys (or GENESIS_AUTH=off).
BASE_VALUES: dict[str, Any] = {"apiKeys": {"lines": [TEST_KEY_LINE]}}


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Helm's way: maps merge key by key, anything else is replaced."""
    result = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


# The strategies and the main feature toggles, each rendered, validated and scanned.
CASES: dict[str, dict[str, Any]] = {
    "rolling": {},
    "bluegreen": {"strategy": "bluegreen"},
    "canary-replicas": {"strategy": "canary"},
    "canary-nginx": {
        "strategy": "canary",
        "canary": {"trafficRouting": "nginx", "weight": 20},
        "ingress": {"enabled": True, "className": "nginx"},
    },
    "canary-gateway": {
        "strategy": "canary",
        "canary": {"trafficRouting": "gatewayAPI", "weight": 25},
        "httpRoute": {"enabled": True, "parentRefs": [{"name": "public", "namespace": "gw"}]},
    },
    "everything-on": {
        "worker": {"enabled": True},
        "autoscaling": {
            "enabled": True,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
        },
        "monitoring": {"assumeCRDs": True, "serviceMonitor": {"labels": {"release": "kps"}}},
        "secretEnv": {"GENESIS_OPENAI_API_KEY": "sk-test"},
        "config": {"GENESIS_PROVIDER": "openai", "GENESIS_OPENAI_BASE_URL": "http://vllm:8000/v1"},
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "tls": [{"hosts": ["genesis.example.com"], "secretName": "genesis-tls"}],
        },
        "httpRoute": {
            "enabled": True,
            "parentRefs": [{"name": "public"}],
            "hostnames": ["g.example.com"],
        },
        "networkPolicy": {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]},
        "service": {"type": "NodePort", "nodePort": 30080},
        "extraEnv": [{"name": "GENESIS_LOG_LEVEL", "value": "debug"}],
        "imagePullSecrets": [{"name": "ghcr"}],
        "podAnnotations": {"example.com/team": "llm"},
    },
    "bluegreen-autoscaled": {
        "strategy": "bluegreen",
        "autoscaling": {"enabled": True},
        "blueGreen": {"activeColor": "green", "green": {"tag": "0.2.0"}},
    },
    "everything-off": {
        "networkPolicy": {"enabled": False},
        "podDisruptionBudget": {"enabled": False},
        "serviceAccount": {"create": False},
        "monitoring": {
            "serviceMonitor": {"enabled": False},
            "prometheusRule": {"enabled": False},
            "dashboards": {"enabled": False},
        },
        "tests": {"enabled": False},
        "existingSecret": "genesis-env",
        "topologySpreadConstraints": [],
        "image": {"digest": "sha256:" + "a" * 64},
    },
}


def load_chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render(values: dict[str, Any] | None = None, *, name: str = RELEASE) -> list[Manifest]:
    """Every object the chart renders (the test hook included), NOTES.txt left out."""
    files = load_chart().render(merged(BASE_VALUES, values or {}), name=name, namespace=NAMESPACE)
    objects: list[Manifest] = []
    for path, text in sorted(files.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def notes(values: dict[str, Any] | None = None) -> str:
    files = load_chart().render(
        merged(BASE_VALUES, values or {}), name=RELEASE, namespace=NAMESPACE
    )
    return next(text for path, text in files.items() if path.endswith("NOTES.txt"))


def find(objects: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        obj
        for obj in objects
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name)
    ]


def one(objects: list[Manifest], kind: str, name: str) -> Manifest:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_specs(objects: list[Manifest]) -> list[tuple[str, Manifest]]:
    """(name, pod spec) of every Deployment and bare Pod."""
    specs = [
        (o["metadata"]["name"], o["spec"]["template"]["spec"]) for o in find(objects, "Deployment")
    ]
    specs += [(o["metadata"]["name"], o["spec"]) for o in find(objects, "Pod")]
    return specs
