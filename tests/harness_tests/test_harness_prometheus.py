"""The Prometheus harness against a real prometheus scraping a real exporter on loopback.

Prometheus 2.42 applies new scrape targets on a fixed 5 s tick, so the scraping tests share
one server per module and pay that wait once.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from harness.plugin import PrometheusFactory
from harness.processes import free_port, require_binary
from harness.prometheus import PrometheusError, PrometheusServer, Sample, ScrapeJob

pytestmark = pytest.mark.integration

RULES = """
groups:
  - name: harness
    rules:
      - record: harness:probe_value:doubled
        expr: harness_probe_value * 2
"""


@dataclass
class Exporter:
    port: int
    gauge: Gauge

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    """A real /metrics endpoint served by prometheus_client from this process."""
    registry = CollectorRegistry()
    gauge = Gauge("harness_probe_value", "Value the tests set and read back.", registry=registry)
    gauge.set(42)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield Exporter(port, gauge)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def scraping(
    exporter: Exporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    binary = require_binary("prometheus", "prometheus")
    server = PrometheusServer(
        tmp_path_factory.mktemp("prometheus"),
        binary=binary,
        jobs=[ScrapeJob("probe", [exporter.target], labels={"track": "canary"})],
        rule_files={"harness.yml": RULES},
    )
    with server:
        server.wait_for_targets_up(timeout=20)
        yield server


def only_value(expected: float) -> Callable[[list[Sample]], bool]:
    def check(samples: list[Sample]) -> bool:
        return len(samples) == 1 and samples[0].value == expected

    return check


def test_scrapes_the_exporter_with_target_labels(scraping: PrometheusServer) -> None:
    (sample,) = scraping.wait_for('harness_probe_value{job="probe"}', only_value(42))

    assert sample.labels["track"] == "canary"
    assert sample.labels["instance"] == scraping.jobs[0].targets[0]


def test_new_values_are_scraped(scraping: PrometheusServer, exporter: Exporter) -> None:
    exporter.gauge.set(7)
    try:
        scraping.wait_for("harness_probe_value", only_value(7))
    finally:
        exporter.gauge.set(42)
    scraping.wait_for("harness_probe_value", only_value(42))


def test_recording_rule_is_evaluated(scraping: PrometheusServer) -> None:
    scraping.wait_for("harness:probe_value:doubled", only_value(84))

    (group,) = scraping.rules()
    assert group["name"] == "harness"
    assert group["rules"][0]["health"] == "ok"


def test_query_range_returns_a_series(scraping: PrometheusServer) -> None:
    scraping.wait_for('up{job="probe"}', only_value(1))
    now = time.time()

    matrix = scraping.query_range('up{job="probe"}', start=now - 30, end=now, step=1)

    assert len(matrix) == 1
    assert matrix[0]["metric"]["job"] == "probe"
    assert matrix[0]["values"]
    assert {value for _, value in matrix[0]["values"]} == {"1"}


def test_bad_promql_fails_fast_with_prometheus_error(scraping: PrometheusServer) -> None:
    started = time.monotonic()
    with pytest.raises(PrometheusError, match="parse error") as caught:
        scraping.wait_for("sum(", timeout=10)

    assert caught.value.error_type == "bad_data"
    assert time.monotonic() - started < 5


def test_wait_for_reports_the_last_answer_on_timeout(scraping: PrometheusServer) -> None:
    with pytest.raises(AssertionError, match="did not satisfy") as caught:
        scraping.wait_for("harness_no_such_metric", timeout=0.5)

    assert "last answer: []" in str(caught.value)


def test_factory_reloads_rules_and_rejects_bad_ones(
    prometheus_server: PrometheusFactory,
) -> None:
    prometheus = prometheus_server(scrape_interval="500ms")
    prometheus.configure(
        rule_files={
            "constant.yml": {
                "groups": [
                    {
                        "name": "c",
                        "rules": [
                            {"record": "harness:c", "expr": "vector(3)"},
                            {"alert": "HarnessAlways", "expr": "vector(1)", "for": "0s"},
                        ],
                    }
                ]
            }
        }
    )
    prometheus.wait_for("harness:c", only_value(3))
    prometheus.wait_for('ALERTS{alertname="HarnessAlways",alertstate="firing"}', only_value(1))
    assert [a["labels"]["alertname"] for a in prometheus.alerts()] == ["HarnessAlways"]

    with pytest.raises(PrometheusError, match="rejected its new config"):
        prometheus.configure(rule_files={"broken.yml": "groups: [{name: b, rules: [{record: x}]}]"})

    # The running server keeps its last good config.
    assert prometheus.rules()[0]["name"] == "c"
    assert prometheus.samples("harness:c")[0].value == 3


def test_scrape_jobs_validate_targets() -> None:
    with pytest.raises(ValueError, match="without a scheme"):
        ScrapeJob("svc", ["http://127.0.0.1:9000"])
    with pytest.raises(ValueError, match="list of host:port"):
        ScrapeJob("svc", "127.0.0.1:9000")


def test_generated_config_passes_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool", "prometheus")
    server = PrometheusServer(
        tmp_path,
        jobs=[
            ScrapeJob("svc", ["127.0.0.1:9000"], labels={"track": "stable"}, scrape_interval="2s")
        ],
        rule_files={"r.yml": RULES},
        alertmanagers=["127.0.0.1:9093"],
    )
    server.configure()  # not running: only writes the files

    check = subprocess.run(
        [promtool, "check", "config", str(server.config_path)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert check.returncode == 0, check.stdout + check.stderr
    assert "1 rules found" in check.stdout
    assert server.config()["alerting"]["alertmanagers"][0]["static_configs"] == [
        {"targets": ["127.0.0.1:9093"]}
    ]
