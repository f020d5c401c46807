"""End to end on real servers: the fixture app behind its supervisor, a real Prometheus with the
shipped rules, a real Alertmanager with the shipped config, and a webhook receiver for Slack.

Faults on: the availability page reaches "Slack". Faults off: the resolved message arrives.
The SLO windows are compressed 60-fold (5m becomes 5s, 3d becomes 72m) so the test takes about
a minute instead of hours; the rule logic is the shipped one. Every dashboard panel's query is
run against the same Prometheus and must return data.
"""

from __future__ import annotations

import re
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from genesis.observability import monitoring_dir
from harness.alertmanager import AlertmanagerServer
from harness.processes import ManagedProcess, free_port, require_binary
from harness.prometheus import ScrapeJob
from harness.webhook_receiver import Delivery, WebhookReceiver

FIXTURE_SERVER = Path(__file__).parent / "obs_fixture_server.py"
MONITORING = monitoring_dir()
COMPRESSION = 60
ALERT = "GenesisAvailabilityBudgetFastBurn"
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def compress(duration: str) -> str:
    """`5m` -> `5s`: the same window, COMPRESSION times shorter."""
    seconds = int(duration[:-1]) * _SECONDS[duration[-1]]
    return f"{max(1, seconds // COMPRESSION)}s"


def compressed_rules(text: str) -> str:
    text = re.sub(r"\[(\d+[smhd])\]", lambda m: f"[{compress(m.group(1))}]", text)
    return re.sub(r"for: (\d+[smhd])", lambda m: f"for: {compress(m.group(1))}", text)


def test_compress_shortens_windows_and_for_clauses() -> None:
    assert (
        compressed_rules("rate(x[5m]) rate(x[3d])\nfor: 2m")
        == "rate(x[5s]) rate(x[4320s])\nfor: 2s"
    )


def alertmanager_config(tmp_path: Path, slack_url: str) -> str:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "slack-webhook-url").write_text(slack_url)
    (secrets / "smtp-password").write_text("not-a-real-password")
    config = yaml.safe_load((MONITORING / "alertmanager" / "alertmanager.yml").read_text())
    config["templates"] = [str(MONITORING / "alertmanager" / "templates" / "*.tmpl")]
    # Nothing listens there: email delivery fails and is logged, Slack still gets its message.
    config["global"]["smtp_smarthost"] = f"127.0.0.1:{free_port()}"
    config["route"].update(group_wait="1s", group_interval="1s")
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            slack["api_url_file"] = str(secrets / "slack-webhook-url")
        for email in receiver.get("email_configs", []):
            email["auth_password_file"] = str(secrets / "smtp-password")
    return yaml.safe_dump(config)


class FixtureService:
    """One supervisor + worker of the fixture app, restartable on the same ports."""

    def __init__(self, tmp_path: Path, track: str) -> None:
        self.tmp_path = tmp_path
        self.track = track
        self.port, self.metrics_port = free_port(), free_port()
        self.process: ManagedProcess | None = None
        self.starts = 0

    def start(self, fault_error_rate: float) -> None:
        self.starts += 1
        self.process = ManagedProcess(
            f"fixture-{self.track}-{self.starts}",
            [
                sys.executable,
                str(FIXTURE_SERVER),
                f"--port={self.port}",
                f"--metrics-port={self.metrics_port}",
                "--workers=1",
                f"--metrics-dir={self.tmp_path / f'prom-{self.track}'}",
            ],
            log_dir=self.tmp_path,
            env={"GENESIS_TRACK": self.track, "GENESIS_FAULT_ERROR_RATE": str(fault_error_rate)},
        )
        self.process.start().wait_ready(
            lambda: tcp_answers(f"http://127.0.0.1:{self.port}/items/1"), timeout=60
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def tcp_answers(url: str) -> bool:
    """Any HTTP answer counts (faults make some of them 500)."""
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def drive_traffic(ports: list[int], stop: threading.Event) -> None:
    paths = ["/hello", "/items/7", "/chat", "/chat?fail=1", "/hello", "/stream", "/nope"]
    n = 0
    while not stop.is_set():
        for port in ports:
            path = paths[n % len(paths)]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    r.read()
            except OSError:
                pass  # 500s from fault injection and 404s are the point; restarts drop some
        n += 1
        stop.wait(0.01)


def is_slack_message(delivery: Delivery, status: str) -> bool:
    attachments = delivery.body.get("attachments") or [{}]
    title = attachments[0].get("title", "")
    return title.startswith(f"[{status}") and ALERT in title


def panel_queries() -> Iterator[tuple[str, str, str]]:
    for path in sorted((MONITORING / "dashboards").glob("*.json")):
        board = yaml.safe_load(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield path.stem, panel["title"], target["expr"]


def grafana_to_promql(expr: str) -> str:
    for variable, value in {
        "$__rate_interval": "20s",
        "$job": ".*",
        "$track": ".*",
        "$baseline": "stable",
        "$canary": "canary",
    }.items():
        expr = expr.replace(variable, value)
    return expr


@pytest.mark.integration
@pytest.mark.slow
def test_fault_injection_pages_slack_and_resolves(tmp_path: Path, prometheus_server) -> None:  # type: ignore[no-untyped-def]
    require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    stable = FixtureService(tmp_path, "stable")
    canary = FixtureService(tmp_path, "canary")
    stop = threading.Event()
    traffic = threading.Thread(
        target=drive_traffic, args=([stable.port, canary.port], stop), daemon=True
    )
    with WebhookReceiver() as slack:
        alertmanager = AlertmanagerServer(tmp_path, alertmanager_config(tmp_path, slack.url()))
        try:
            alertmanager.start()
            stable.start(fault_error_rate=0.5)
            canary.start(fault_error_rate=0.0)
            rules = {
                path.name: compressed_rules(path.read_text())
                for path in (MONITORING / "prometheus" / "rules").glob("*.rules.yml")
            }
            prometheus = prometheus_server(
                ScrapeJob(
                    "genesis",
                    [f"127.0.0.1:{stable.metrics_port}", f"127.0.0.1:{canary.metrics_port}"],
                ),
                rule_files=rules,
                alertmanagers=[alertmanager.address],
                scrape_interval="1s",
            )
            traffic.start()

            fired = slack.wait_for(lambda d: is_slack_message(d, "FIRING"), timeout=90)
            assert fired.path == "/slack"
            assert fired.body["channel"] == "#genesis-alerts-critical"
            text = fired.body["attachments"][0]["text"]
            assert "burning its availability error budget fast" in text
            assert "Runbook: https://" in text

            # Every dashboard panel answers with data from the real Prometheus.
            empty = [
                (board, title, expr)
                for board, title, expr in panel_queries()
                if not prometheus.samples(grafana_to_promql(expr))
            ]
            assert empty == [], f"panels without data: {empty}"

            stable.stop()
            stable.start(fault_error_rate=0.0)
            resolved = slack.wait_for(lambda d: is_slack_message(d, "RESOLVED"), timeout=120)
            assert resolved.body["attachments"][0]["color"] == "good"
        finally:
            stop.set()
            if traffic.is_alive():
                traffic.join(timeout=10)
            stable.stop()
            canary.stop()
            alertmanager.stop()
