"""What each strategy and toggle renders (real Helm through helm-python-sdk, no cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import genesis
from chart.chart_support import (
    CASES,
    CHART,
    ROOT,
    TEST_KEY_LINE,
    find,
    notes,
    one,
    pod_specs,
    render,
)

SERVER = {
    "app.kubernetes.io/name": "genesis",
    "app.kubernetes.io/instance": "rel",
    "app.kubernetes.io/component": "server",
}


def test_chart_metadata() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2"
    assert meta["appVersion"] == genesis.__version__


def test_rolling_is_one_deployment_behind_one_service() -> None:
    objects = render()
    deployment = one(objects, "Deployment", "rel-genesis")
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
    }
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["metadata"]["labels"]["track"] == "stable"
    service = one(objects, "Service", "rel-genesis")
    assert service["spec"]["selector"] == SERVER
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    assert len(find(objects, "Deployment")) == 1


def test_bluegreen_runs_both_colours_and_the_service_selects_the_active_one() -> None:
    objects = render({"strategy": "bluegreen", "blueGreen": {"green": {"tag": "0.2.0"}}})
    blue, green = (
        one(objects, "Deployment", "rel-genesis-blue"),
        one(objects, "Deployment", "rel-genesis-green"),
    )
    images = [d["spec"]["template"]["spec"]["containers"][0]["image"] for d in (blue, green)]
    assert images == [
        "ghcr.io/genesis-delivery/genesis:0.1.0",
        "ghcr.io/genesis-delivery/genesis:0.2.0",
    ]
    assert one(objects, "Service", "rel-genesis")["spec"]["selector"] == {**SERVER, "track": "blue"}
    assert one(objects, "Service", "rel-genesis-preview")["spec"]["selector"] == {
        **SERVER,
        "track": "green",
    }
    switched = render({"strategy": "bluegreen", "blueGreen": {"activeColor": "green"}})
    assert one(switched, "Service", "rel-genesis")["spec"]["selector"]["track"] == "green"
    assert "blueGreen.activeColor=blue" in notes(
        {"strategy": "bluegreen", "blueGreen": {"activeColor": "green"}}
    )


def test_canary_by_replica_ratio_shares_the_main_service() -> None:
    objects = render(
        {"strategy": "canary", "replicaCount": 3, "canary": {"replicas": 1, "tag": "0.2.0"}}
    )
    canary = one(objects, "Deployment", "rel-genesis-canary")
    assert canary["spec"]["replicas"] == 1
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")
    assert one(objects, "Deployment", "rel-genesis")["spec"]["replicas"] == 3
    # No track in the selector: both Deployments serve, 1 request in 4 reaches the canary.
    assert one(objects, "Service", "rel-genesis")["spec"]["selector"] == SERVER
    assert one(objects, "Service", "rel-genesis-canary")["spec"]["selector"]["track"] == "canary"
    assert "about 1 in 4 requests" in notes({"strategy": "canary", "replicaCount": 3})


def test_canary_by_ingress_nginx_weight() -> None:
    objects = render(CASES["canary-nginx"])
    main, canary = (
        one(objects, "Ingress", "rel-genesis"),
        one(objects, "Ingress", "rel-genesis-canary"),
    )
    assert "annotations" not in main["metadata"]
    assert canary["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "20",
    }
    backend = canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "rel-genesis-canary", "port": {"name": "http"}}
    assert one(objects, "Service", "rel-genesis")["spec"]["selector"]["track"] == "stable"


def test_canary_by_gateway_api_weights() -> None:
    route = one(render(CASES["canary-gateway"]), "HTTPRoute", "rel-genesis")
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in refs] == [
        ("rel-genesis", 75),
        ("rel-genesis-canary", 25),
    ]
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gw"}]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_pod_is_hardened(case: str) -> None:
    for name, spec in pod_specs(render(CASES[case])):
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["enableServiceLinks"] is (name == "rel-genesis-test"), name
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == 10001, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            sc = container["securityContext"]
            mounts = {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]}
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert container["resources"]["limits"]["memory"], name
            writable = {path for path, read_only in mounts.items() if not read_only}
            assert writable == {"/tmp"}, name


@pytest.mark.parametrize("case", sorted(CASES))
def test_labels_follow_helm_best_practices(case: str) -> None:
    for obj in render(CASES[case]):
        labels = obj["metadata"]["labels"]
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
        ):
            assert key in labels, f"{obj['kind']}/{obj['metadata']['name']} lacks {key}"
    for deployment in find(render(CASES[case]), "Deployment"):
        track = deployment["metadata"]["labels"]["track"]
        assert deployment["spec"]["selector"]["matchLabels"]["track"] == track
        assert deployment["spec"]["template"]["metadata"]["labels"]["track"] == track
        env = {
            e["name"]: e.get("value")
            for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["GENESIS_TRACK"] == track


def test_shutdown_outlasts_the_apps_grace() -> None:
    spec = one(render(), "Deployment", "rel-genesis")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    app_grace = float(env["GENESIS_DRAIN_SECONDS"]) + float(env["GENESIS_GRACE_SECONDS"])
    assert spec["terminationGracePeriodSeconds"] > 5 + app_grace
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    assert spec["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]["track"] == "stable"


def test_too_short_a_termination_grace_fails_with_a_reason() -> None:
    with pytest.raises(Exception, match=r"must exceed shutdown\.preStopSeconds"):
        render({"shutdown": {"terminationGracePeriodSeconds": 30}})
    spec = one(
        render({"shutdown": {"terminationGracePeriodSeconds": 90}}), "Deployment", "rel-genesis"
    )
    assert spec["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 90


def test_everything_on() -> None:
    objects = render(CASES["everything-on"])
    hpa = one(objects, "HorizontalPodAutoscaler", "rel-genesis")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "rel-genesis"
    assert "replicas" not in one(objects, "Deployment", "rel-genesis")["spec"]
    worker = one(objects, "Deployment", "rel-genesis-worker")
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["worker"]
    # Only /metrics listens in the worker, and the metrics Service selects it with the server.
    assert container["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    metrics_selector = one(objects, "Service", "rel-genesis-metrics")["spec"]["selector"]
    worker_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert all(worker_labels.get(key) == value for key, value in metrics_selector.items())
    assert "readinessProbe" not in container
    secret = one(objects, "Secret", "rel-genesis")
    assert secret["stringData"] == {"GENESIS_OPENAI_API_KEY": "sk-test"}
    env_from = one(objects, "Deployment", "rel-genesis")["spec"]["template"]["spec"]["containers"][
        0
    ]["envFrom"]
    assert env_from == [
        {"configMapRef": {"name": "rel-genesis"}},
        {"secretRef": {"name": "rel-genesis"}},
    ]
    monitor = one(objects, "ServiceMonitor", "rel-genesis")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    # The job the rules, dashboards and gate select: the Service's name label, "genesis".
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    metrics = one(objects, "Service", "rel-genesis-metrics")
    assert metrics["metadata"]["labels"]["app.kubernetes.io/name"] == "genesis"
    assert all(
        monitor["spec"]["selector"]["matchLabels"][k] == v
        for k, v in metrics["metadata"]["labels"].items()
        if k in monitor["spec"]["selector"]["matchLabels"]
    )
    policy = one(objects, "NetworkPolicy", "rel-genesis")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"][0]["ports"][0]["port"] == 53
    assert one(objects, "Service", "rel-genesis")["spec"]["ports"][0]["nodePort"] == 30080
    assert one(objects, "Ingress", "rel-genesis")["spec"]["tls"][0]["secretName"] == "genesis-tls"


def test_everything_off() -> None:
    objects = render(CASES["everything-off"])
    kinds = {obj["kind"] for obj in objects}
    assert kinds == {"ConfigMap", "Deployment", "Service", "Secret"}
    spec = one(objects, "Deployment", "rel-genesis")["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "default"
    assert "topologySpreadConstraints" not in spec
    assert spec["containers"][0]["image"] == "ghcr.io/genesis-delivery/genesis@sha256:" + "a" * 64
    assert spec["containers"][0]["envFrom"][1] == {"secretRef": {"name": "genesis-env"}}


def test_monitoring_objects_wait_for_their_crds() -> None:
    # Offline rendering sees no monitoring.coreos.com API: nothing is rendered for it.
    assert not find(render(), "ServiceMonitor")
    assert not find(render(), "PrometheusRule")
    objects = render({"monitoring": {"assumeCRDs": True}})
    assert find(objects, "ServiceMonitor")
    assert find(objects, "PrometheusRule")


def test_prometheus_rule_carries_the_observability_rules() -> None:
    rule = one(render({"monitoring": {"assumeCRDs": True}}), "PrometheusRule", "rel-genesis")
    source = ROOT / "src/genesis/observability/monitoring/prometheus/rules"
    expected = [
        g
        for path in sorted(source.glob("*.yml"))
        for g in yaml.safe_load(path.read_text())["groups"]
    ]
    assert rule["spec"]["groups"] == expected


def test_dashboards_configmap_carries_every_dashboard() -> None:
    configmap = one(render(), "ConfigMap", "rel-genesis-dashboards")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    source = ROOT / "src/genesis/observability/monitoring/dashboards"
    expected = {path.name: json.loads(path.read_text()) for path in source.glob("*.json")}
    assert {name: json.loads(text) for name, text in configmap["data"].items()} == expected


def test_the_chart_copies_of_monitoring_assets_are_current() -> None:
    from genesis.pipeline import chart

    assert chart.stale_copies(ROOT) == [], "run: python -m genesis.pipeline.chart sync"


def test_sync_repairs_stale_copies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from genesis.pipeline import chart

    for copy in chart.COPIES:
        shutil.copytree(ROOT / copy.source, tmp_path / copy.source)
        shutil.copytree(ROOT / copy.target, tmp_path / copy.target)
    dashboards = tmp_path / chart.CHART / "files/dashboards"
    (dashboards / "genesis-slo.json").write_text("{}")
    (dashboards / "retired.json").write_text("{}")
    (tmp_path / chart.CHART / "files/rules/genesis-slo.rules.json").unlink()
    monkeypatch.chdir(tmp_path)
    assert chart.main(["check"]) == 1
    assert "stale: charts/genesis/files/dashboards/genesis-slo.json" in capsys.readouterr().err
    assert chart.main(["sync"]) == 0
    assert chart.main(["check"]) == 0
    assert not (dashboards / "retired.json").exists()
    assert chart.main([]) == 2


def test_api_keys_are_a_mounted_file_of_hashes() -> None:
    objects = render()
    secret = one(objects, "Secret", "rel-genesis-api-keys")
    assert secret["stringData"]["api-keys"].split() == [TEST_KEY_LINE]
    container = one(objects, "Deployment", "rel-genesis")["spec"]["template"]["spec"]["containers"][
        0
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GENESIS_API_KEYS_FILE"] == "/etc/genesis/api-keys/api-keys"
    own = render({"apiKeys": {"lines": [], "existingSecret": "my-keys"}})
    assert not find(own, "Secret", "rel-genesis-api-keys")
    volumes = one(own, "Deployment", "rel-genesis")["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "api-keys",
        "secret": {"secretName": "my-keys", "defaultMode": 0o440},
    } in volumes
    open_service = render(
        {"apiKeys": {"lines": []}, "config": {"GENESIS_ENV": "staging", "GENESIS_AUTH": "off"}}
    )
    assert not find(open_service, "Secret", "rel-genesis-api-keys")


def test_helm_test_hook_checks_readyz_and_a_completion() -> None:
    pod = one(render({"tests": {"apiKeySecret": {"name": "smoke-key"}}}), "Pod", "rel-genesis-test")
    env = pod["spec"]["containers"][0]["env"]
    assert env[0]["valueFrom"]["secretKeyRef"] == {"name": "smoke-key", "key": "api-key"}
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    assert "REL_GENESIS_SERVICE_HOST" in script
    assert "/v1/chat/completions" in script
