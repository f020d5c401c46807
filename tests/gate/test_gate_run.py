"""GateRun on a real Prometheus with no targets: constant queries, so every answer is known."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator

import pytest

from genesis.gate.measurement import Phase
from genesis.gate.plan import Mode
from genesis.gate.prometheus import PrometheusClient
from genesis.gate.run import GateRun, GateSetupError
from genesis.gate.spec import parse
from harness.processes import require_binary
from harness.prometheus import PrometheusServer

pytestmark = pytest.mark.integration

SPEC = parse(
    textwrap.dedent(
        """\
        window: 4s
        step: 1s
        interval: 1s
        count: 2
        metrics:
          - name: constant
            query: vector(1)
            successCondition: result[0] == 1
          - name: broken
            query: sum(vector(1)
            successCondition: result[0] == 1
          - name: flat
            compare:
              query: vector(0.5)
              total: vector(100)
              minSamples: 3
        """
    )
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusClient]:
    binary = require_binary("prometheus", "prometheus")
    with (
        PrometheusServer(tmp_path_factory.mktemp("prom-run"), binary=binary) as server,
        PrometheusClient(server.url) as prometheus,
    ):
        yield prometheus


def test_retro_measures_compares_and_turns_query_errors_into_error_measurements(
    client: PrometheusClient,
) -> None:
    now = time.time()
    result = GateRun(SPEC, client).retro(now - 10, now)
    assert result.mode is Mode.RETRO
    checks = {c.name: c for c in result.checks}
    assert checks["constant"].phase is Phase.SUCCESSFUL
    assert checks["broken"].phase is Phase.INCONCLUSIVE  # no measurement succeeded
    [first, _] = result.timelines["broken"]
    assert first.measurement.phase is Phase.ERROR
    assert "parse error" in first.measurement.message
    [flat] = result.judgment.metrics
    assert flat.classification.value == "PASS"
    assert flat.canary is not None
    assert flat.canary.count == 11  # 10 s at 1 s steps, both ends included
    assert result.verdict.value == "INCONCLUSIVE"
    assert result.comparison is not None
    assert result.comparison.verdict.value == "PASS"
    document = result.to_dict()
    assert document["comparison_window"]["end"].endswith("Z")
    assert document["measurements"]["constant"][0]["value"] == [1.0]


def test_live_follows_the_schedule(client: PrometheusClient) -> None:
    started = time.time()
    result = GateRun(SPEC, client).live()
    assert result.mode is Mode.LIVE
    # Two checks a second apart, then the 4 s window: the run cannot end earlier than that.
    assert result.finished - started >= 4
    assert {c.name: c.phase for c in result.checks} == {
        "constant": Phase.SUCCESSFUL,
        "broken": Phase.INCONCLUSIVE,
    }
    [flat] = result.judgment.metrics
    assert flat.classification.value == "PASS"
    assert "compared canary against stable" in result.to_markdown()


def test_setup_errors_come_before_any_query(client: PrometheusClient) -> None:
    with pytest.raises(GateSetupError, match="no variable 'x'"):
        GateRun(SPEC, client, variables={"x": "1"})
    with pytest.raises(GateSetupError, match="must differ"):
        GateRun(SPEC, client, canary_track="stable")
