"""values.yaml against its schema and its documentation, and the blue/green switch."""

from __future__ import annotations

import difflib
import re
from typing import Any

import pytest
import yaml

from chart.chart_support import CHART, ROOT, render

# (values, what the error must say): each rejected before anything renders.
BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"strategy": "blue"}, "at '/strategy': value must be one of 'rolling', 'bluegreen', 'canary'"),
    ({"replicas": 3}, "additional properties 'replicas' not allowed"),
    ({"canary": {"weight": 150}}, "at '/canary/weight': maximum: got 150, want 100"),
    ({"canary": {"trafficRouting": "istio"}}, "at '/canary/trafficRouting': value must be one of"),
    (
        {"blueGreen": {"activeColor": "red"}},
        "at '/blueGreen/activeColor': value must be one of 'blue', 'green'",
    ),
    ({"image": {"digest": "abc"}}, "at '/image/digest': 'abc' does not match pattern"),
    ({"image": {"tag": "has space"}}, "at '/image/tag'"),
    ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy': value must be one of"),
    (
        {"securityContext": {"readOnlyRootFilesystem": False}},
        "at '/securityContext/readOnlyRootFilesystem': value must be true",
    ),
    (
        {"securityContext": {"allowPrivilegeEscalation": True}},
        "at '/securityContext/allowPrivilegeEscalation': value must be false",
    ),
    (
        {"podSecurityContext": {"runAsNonRoot": False}},
        "at '/podSecurityContext/runAsNonRoot': value must be true",
    ),
    (
        {"podSecurityContext": {"runAsUser": 0}},
        "at '/podSecurityContext/runAsUser': minimum: got 0, want 1",
    ),
    ({"config": {"OPENAI_API_KEY": "x"}}, "invalid propertyName 'OPENAI_API_KEY'"),
    (
        {"secretEnv": {"GENESIS_OPENAI_API_KEY": 5}},
        "at '/secretEnv/GENESIS_OPENAI_API_KEY': got number, want string",
    ),
    ({"service": {"type": "NodePort", "nodePort": 80}}, "at '/service/nodePort'"),
    ({"shutdown": {"graceSeconds": -1}}, "at '/shutdown/graceSeconds': minimum: got -1, want 0"),
    (
        {"autoscaling": {"targetCPUUtilizationPercentage": 0}},
        "at '/autoscaling/targetCPUUtilizationPercentage': minimum",
    ),
    (
        {"monitoring": {"serviceMonitor": {"interval": "often"}}},
        "at '/monitoring/serviceMonitor/interval'",
    ),
    ({"worker": {"args": []}}, "at '/worker/args': minItems: got 0, want 1"),
    ({"existingSecret": "Not_A_Name"}, "at '/existingSecret'"),
    ({"tmpSizeLimit": "lots"}, "at '/tmpSizeLimit'"),
]

# Values whose problem only shows with other values: the templates fail with a reason.
BAD_COMBINATIONS: list[tuple[dict[str, Any], str]] = [
    ({"config": {"GENESIS_TRACK": "canary"}}, "config.GENESIS_TRACK is set by the chart"),
    ({"podLabels": {"track": "x"}}, "podLabels.track would change the pods' selector labels"),
    ({"strategy": "canary", "canary": {"trafficRouting": "nginx"}}, "set ingress.enabled=true"),
    (
        {"strategy": "canary", "canary": {"trafficRouting": "gatewayAPI"}},
        "set httpRoute.enabled=true",
    ),
    ({"httpRoute": {"enabled": True}}, "needs httpRoute.parentRefs"),
    (
        {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}},
        "must be at least autoscaling.minReplicas",
    ),
    ({"shutdown": {"terminationGracePeriodSeconds": 10}}, "must exceed shutdown.preStopSeconds"),
    ({"apiKeys": {"lines": []}}, "the service needs API keys: set apiKeys.lines"),
    ({"apiKeys": {"lines": ["alice:sk-raw-key"]}}, "at '/apiKeys/lines/0'"),
    ({"config": {"GENESIS_AUTH": "maybe"}}, "at '/config/GENESIS_AUTH'"),
]


@pytest.mark.parametrize(
    ("values", "message"), BAD_VALUES + BAD_COMBINATIONS, ids=lambda v: str(v)[:60]
)
def test_bad_values_are_rejected_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the message is what is checked
        render(values)
    assert message in str(raised.value)


def _keys(values: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        keys.append(path)
        # Maps of free-form entries (config, labels) are documented as a whole.
        if isinstance(value, dict) and value and key not in {"config", "requests", "limits"}:
            keys.extend(_keys(value, f"{path}."))
    return keys


def test_every_value_is_documented() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = set(
        re.findall(r"^\| `([A-Za-z0-9_.]+)` \|", (ROOT / "docs/chart.md").read_text(), re.MULTILINE)
    )
    keys = [k for k in _keys(values) if not k.startswith("probes.") or k.count(".") == 1]
    keys = [
        k
        for k in keys
        if not re.match(
            r"resources\.|worker\.resources\.|podSecurityContext\.seccompProfile\.|securityContext\.capabilities\.",
            k,
        )
    ]
    # Leaves only: a group (`image`, `shutdown`) is documented through its keys.
    keys = [key for key in keys if not any(other.startswith(f"{key}.") for other in keys)]
    missing = [key for key in keys if key not in documented]
    assert missing == [], f"values.yaml keys missing from docs/chart.md's tables: {missing}"
    unknown = sorted(documented - set(_keys(values)))
    assert unknown == [], f"docs/chart.md documents keys values.yaml does not have: {unknown}"


def test_every_value_has_a_schema_entry() -> None:
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_a_bluegreen_switch_changes_only_the_service_selectors() -> None:
    def rendered(color: str) -> dict[str, Any]:
        objects = render({"strategy": "bluegreen", "blueGreen": {"activeColor": color}})
        return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}

    blue, green = rendered("blue"), rendered("green")
    lines = difflib.unified_diff(
        yaml.safe_dump_all(blue.values()).splitlines(),
        yaml.safe_dump_all(green.values()).splitlines(),
        lineterm="",
        n=0,
    )
    print("\n".join(lines))
    assert blue.keys() == green.keys()
    changed = sorted(key for key in blue if blue[key] != green[key])
    assert changed == ["Service/rel-genesis", "Service/rel-genesis-preview"]
    for key in changed:
        before, after = blue[key], green[key]
        assert before["spec"].pop("selector") != after["spec"].pop("selector")
        assert before == after, f"{key} changed beyond its selector"
    assert green["Service/rel-genesis"]["spec"] == blue["Service/rel-genesis"]["spec"]
