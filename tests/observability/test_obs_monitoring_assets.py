"""The shipped monitoring assets, checked by the tools that will load them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from genesis.observability import monitoring_dir
from harness.processes import require_binary

MONITORING = monitoring_dir()
PROMETHEUS = MONITORING / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.rules.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.test.yml"))
ALERTMANAGER = MONITORING / "alertmanager" / "alertmanager.yml"


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, timeout=300)


def test_rule_files_pass_promtool_check_rules() -> None:
    promtool = require_binary("promtool", "prometheus")
    assert RULE_FILES, "no rule files shipped"
    result = run([promtool, "check", "rules", *map(str, RULE_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_passes_promtool_check_config() -> None:
    promtool = require_binary("promtool", "prometheus")
    result = run([promtool, "check", "config", str(PROMETHEUS / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda path: path.name)
def test_alert_unit_tests_pass_promtool_test_rules(test_file: Path) -> None:
    promtool = require_binary("promtool", "prometheus")
    result = run([promtool, "test", "rules", test_file.name], cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def alert_names() -> set[str]:
    return {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = alert_names()
    assert len(names) >= 5
    assert names - firing == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested silent"


def test_alertmanager_config_passes_amtool() -> None:
    amtool = require_binary("amtool", "prometheus-alertmanager")
    result = run([amtool, "check-config", str(ALERTMANAGER)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=GenesisAvailabilityBudgetFastBurn"], "page"),
        (["severity=warning", "alertname=GenesisAvailabilityBudgetSlowBurn"], "slack-warning"),
        (["alertname=SomethingElse"], "slack-warning"),
    ],
)
def test_alertmanager_routes_by_severity(labels: list[str], receiver: str) -> None:
    amtool = require_binary("amtool", "prometheus-alertmanager")
    result = run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_alertmanager_secrets_come_from_files() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    for receiver in receivers.values():
        for slack in receiver.get("slack_configs", []):
            assert "api_url" not in slack
            assert slack["api_url_file"].startswith("/etc/alertmanager/secrets/")
        for email in receiver.get("email_configs", []):
            assert "auth_password" not in email
            assert email["auth_password_file"].startswith("/etc/alertmanager/secrets/")
    assert receivers["page"]["email_configs"], "pages must also reach email"
    assert "smtp_auth_password" not in config["global"]


def test_committed_dashboards_match_the_code() -> None:
    pytest.importorskip(
        "grafana_foundation_sdk", reason="pip install grafana-foundation-sdk to check dashboards"
    )
    from genesis.observability import dashboards

    assert dashboards.stale() == [], "run: python -m genesis.observability.dashboards"
    assert dashboards.main(["--check"]) == 0


def test_dashboard_check_reports_a_stale_file(tmp_path: Path) -> None:
    pytest.importorskip(
        "grafana_foundation_sdk", reason="pip install grafana-foundation-sdk to check dashboards"
    )
    from genesis.observability import dashboards

    assert dashboards.main(["--check", f"--dir={tmp_path}"]) == 1
    assert dashboards.main([f"--dir={tmp_path}"]) == 0
    assert dashboards.main(["--check", f"--dir={tmp_path}"]) == 0
    path = tmp_path / "genesis-slo.json"
    path.write_text(path.read_text().replace("genesis / SLO", "edited by hand"))
    assert dashboards.stale(tmp_path) == ["genesis-slo.json"]
