"""Grafana dashboards as code, built with grafana-foundation-sdk.

The JSON under monitoring/dashboards/ is generated from this module and committed, so Grafana
(compose provisioning, the Helm chart's ConfigMap) needs no Python; a test keeps the two in sync.

    python -m genesis.observability.dashboards          # rewrite the JSON
    python -m genesis.observability.dashboards --check  # exit 1 when the JSON is stale

This module needs the `grafana-foundation-sdk` package (a development dependency); importing
`genesis.observability` does not.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableOption, VariableRefresh

from genesis.observability.assets import monitoring_dir

DASHBOARDS_DIR = monitoring_dir() / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# Filters every panel applies; the dashboards' variables fill them in.
SELECTED = 'job=~"$job", track=~"$track"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """One panel: its kind decides the builder; `queries` are what the e2e test runs."""

    title: str
    description: str
    queries: Sequence[Query]
    unit: str = "short"
    kind: str = "timeseries"  # timeseries | stat | table
    width: int = 12


def _targets(spec: PanelSpec) -> Iterator[prometheus.Dataquery]:
    for ref, query in zip("ABCDEFGH", spec.queries, strict=False):
        target = prometheus.Dataquery().expr(query.expr).ref_id(ref).datasource(DATASOURCE)
        if query.legend:
            target = target.legend_format(query.legend)
        if spec.kind == "table":
            target = target.instant()
        yield target


def _panel(spec: PanelSpec) -> timeseries.Panel | stat.Panel | table.Panel:
    builder: timeseries.Panel | stat.Panel | table.Panel
    if spec.kind == "timeseries":
        builder = timeseries.Panel()
    elif spec.kind == "stat":
        builder = stat.Panel()
    elif spec.kind == "table":
        builder = table.Panel()
    else:
        raise ValueError(f"unknown panel kind {spec.kind!r}")
    builder = (
        builder.title(spec.title)
        .description(spec.description)
        .datasource(DATASOURCE)
        .unit(spec.unit)
        .span(spec.width)
        .height(8)
    )
    for target in _targets(spec):
        builder = builder.with_target(target)
    return builder


def _all_option() -> VariableOption:
    return VariableOption(selected=True, text="All", value="$__all")


def _label_variable(name: str, label: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(f"label_values(genesis_build_info, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .all_value(".*")
        .multi(True)
        .current(_all_option())
    )


def _track_choice(name: str, default: str) -> dashboard.CustomVariable:
    return (
        dashboard.CustomVariable(name)
        .label(f"{name.capitalize()} track")
        .values("stable,canary,blue,green")
        .current(VariableOption(selected=True, text=default, value=default))
    )


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    rows: Sequence[tuple[str, Sequence[PanelSpec]]]
    # Deploy comparison picks two tracks instead of filtering by any.
    compares_tracks: bool = False

    def build(self) -> dict[str, object]:
        builder = (
            dashboard.Dashboard(self.title)
            .uid(self.uid)
            .description(self.description)
            .tags(["genesis"])
            .time("now-6h", "now")
            .refresh("30s")
            .timezone("browser")
            .editable()
        )
        builder = builder.with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        ).with_variable(_label_variable("job", "Job"))
        if self.compares_tracks:
            builder = builder.with_variable(_track_choice("baseline", "stable")).with_variable(
                _track_choice("canary", "canary")
            )
        else:
            builder = builder.with_variable(_label_variable("track", "Track"))
        for row_title, panels in self.rows:
            builder = builder.with_row(dashboard.Row(row_title))
            for spec in panels:
                builder = builder.with_panel(_panel(spec))
        encoded: dict[str, object] = json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))
        return encoded

    def panels(self) -> Iterator[PanelSpec]:
        for _, panels in self.rows:
            yield from panels


RATE = "$__rate_interval"
SERVER_ERRORS = 'status=~"5.."'
CACHE_HIT = 'result="hit"'


def rate(metric: str, extra: str = "", base: str = SELECTED) -> str:
    """`rate(metric{filters}[$__rate_interval])` with the dashboard's filters and `extra`."""
    filters = f"{base}, {extra}" if extra else base
    return f"rate({metric}{{{filters}}}[{RATE}])"


def ratio(metric: str, part: str, by: str = "", base: str = SELECTED, fn: str = "rate") -> str:
    """Share of `metric` matching `part`; 0 rather than no data when nothing matches."""
    group = f"sum by ({by}) " if by else "sum "
    if fn == "rate":
        matching, total = rate(metric, part, base), rate(metric, base=base)
    else:
        matching = f"{fn}({metric}{{{base}, {part}}}[30d])"
        total = f"{fn}({metric}{{{base}}}[30d])"
    return f"({group}({matching}) or 0 * {group}({total})) / {group}({total})"


def _quantile(q: str, metric: str, by: str = "track") -> str:
    return (
        f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{SELECTED}}}[{RATE}])))"
    )


SERVICE_OVERVIEW = DashboardSpec(
    uid="genesis-service-overview",
    title="genesis / Service overview",
    description="Rate, errors and duration (RED) of HTTP requests, split by deployment track.",
    rows=[
        (
            "Traffic",
            [
                PanelSpec(
                    "Requests per second by track",
                    "All HTTP requests answered, per deployment track.",
                    [
                        Query(
                            f"sum by (track) ({rate('http_requests_total')})",
                            "{{track}}",
                        )
                    ],
                    unit="reqps",
                ),
                PanelSpec(
                    "Error ratio by track",
                    "Share of requests answered with a 5xx status.",
                    [Query(ratio("http_requests_total", SERVER_ERRORS, by="track"), "{{track}}")],
                    unit="percentunit",
                ),
                PanelSpec(
                    "Requests per second by route and status",
                    "Routes are URL rule templates; <unmatched> collects paths that matched none.",
                    [
                        Query(
                            f"sum by (route, status) ({rate('http_requests_total')})",
                            "{{route}} {{status}}",
                        )
                    ],
                    unit="reqps",
                ),
                PanelSpec(
                    "Requests in flight by track",
                    "Requests being served right now, until the last byte of a streamed body.",
                    [Query(f"sum by (track) (http_requests_in_flight{{{SELECTED}}})", "{{track}}")],
                ),
            ],
        ),
        (
            "Duration",
            [
                PanelSpec(
                    "Request duration p50 / p95 / p99 by track",
                    "Until the last byte of the response body, streamed answers included.",
                    [
                        Query(_quantile("0.5", "http_request_duration_seconds"), "p50 {{track}}"),
                        Query(_quantile("0.95", "http_request_duration_seconds"), "p95 {{track}}"),
                        Query(_quantile("0.99", "http_request_duration_seconds"), "p99 {{track}}"),
                    ],
                    unit="s",
                ),
                PanelSpec(
                    "Request duration p95 by route",
                    "The slowest routes first.",
                    [
                        Query(
                            _quantile("0.95", "http_request_duration_seconds", by="route"),
                            "{{route}}",
                        )
                    ],
                    unit="s",
                ),
                PanelSpec(
                    "Running builds",
                    "genesis_build_info of every scraped process: version, revision and track.",
                    [Query(f"genesis_build_info{{{SELECTED}}}")],
                    kind="table",
                    width=24,
                ),
            ],
        ),
    ],
)

LLM = DashboardSpec(
    uid="genesis-llm",
    title="genesis / LLM",
    description="GenAI client metrics (OpenTelemetry GenAI conventions) and the service's"
    " protections: tokens, time to first chunk, upstream errors, retries, cache, limits, jobs.",
    rows=[
        (
            "Provider calls",
            [
                PanelSpec(
                    "Tokens per second by type and model",
                    "gen_ai_client_token_usage: input and output tokens the providers reported.",
                    [
                        Query(
                            "sum by (gen_ai_token_type, gen_ai_request_model)"
                            f" (rate(gen_ai_client_token_usage_sum{{{SELECTED}}}[{RATE}]))",
                            "{{gen_ai_token_type}} {{gen_ai_request_model}}",
                        )
                    ],
                    unit="short",
                ),
                PanelSpec(
                    "Time to first chunk p50 / p95 by track",
                    "From issuing a streaming request to the first chunk received.",
                    [
                        Query(
                            _quantile("0.5", "gen_ai_client_operation_time_to_first_chunk_seconds"),
                            "p50 {{track}}",
                        ),
                        Query(
                            _quantile(
                                "0.95", "gen_ai_client_operation_time_to_first_chunk_seconds"
                            ),
                            "p95 {{track}}",
                        ),
                    ],
                    unit="s",
                ),
                PanelSpec(
                    "Operation duration p95 by provider",
                    "Whole provider calls, streamed ones until their last chunk.",
                    [
                        Query(
                            _quantile(
                                "0.95",
                                "gen_ai_client_operation_duration_seconds",
                                by="gen_ai_provider_name",
                            ),
                            "{{gen_ai_provider_name}}",
                        )
                    ],
                    unit="s",
                ),
                PanelSpec(
                    "Upstream errors per second by error type",
                    "Provider calls that failed, by error_type (exception class or reason).",
                    [
                        Query(
                            "sum by (gen_ai_provider_name, error_type) ("
                            + rate(
                                "gen_ai_client_operation_duration_seconds_count", 'error_type!=""'
                            )
                            + ")",
                            "{{gen_ai_provider_name}} {{error_type}}",
                        )
                    ],
                    unit="reqps",
                ),
                PanelSpec(
                    "Upstream retries per second",
                    "Retries of provider calls; a rise often precedes upstream errors.",
                    [
                        Query(
                            f"sum by (provider) ({rate('genesis_upstream_retries_total')})",
                            "{{provider}}",
                        )
                    ],
                    unit="reqps",
                ),
                PanelSpec(
                    "Circuit breaker state",
                    "0 closed, 1 half-open, 2 open.",
                    [
                        Query(
                            f"max by (circuit) (genesis_circuit_breaker_state{{{SELECTED}}})",
                            "{{circuit}}",
                        )
                    ],
                ),
            ],
        ),
        (
            "Cache, limits and jobs",
            [
                PanelSpec(
                    "Cache hit ratio",
                    "Hits among all lookups, per cache.",
                    [
                        Query(
                            ratio("genesis_cache_lookups_total", CACHE_HIT, by="cache"), "{{cache}}"
                        )
                    ],
                    unit="percentunit",
                ),
                PanelSpec(
                    "Rate-limit rejections per second",
                    "Requests refused by a limit (requests or tokens per minute).",
                    [
                        Query(
                            f"sum by (limit) ({rate('genesis_rate_limit_rejections_total')})",
                            "{{limit}}",
                        )
                    ],
                    unit="reqps",
                ),
                PanelSpec(
                    "Job queue depth and oldest job age",
                    "Jobs waiting, and how long the oldest has waited.",
                    [
                        Query(
                            f"max by (queue) (genesis_job_queue_depth{{{SELECTED}}})",
                            "depth {{queue}}",
                        ),
                        Query(
                            f"max by (queue) (genesis_job_oldest_age_seconds{{{SELECTED}}})",
                            "oldest age (s) {{queue}}",
                        ),
                    ],
                ),
                PanelSpec(
                    "Jobs finished per second by outcome",
                    "succeeded, failed, cancelled or expired.",
                    [
                        Query(
                            f"sum by (outcome) ({rate('genesis_jobs_finished_total')})",
                            "{{outcome}}",
                        )
                    ],
                    unit="ops",
                ),
            ],
        ),
    ],
)

JOB = 'job=~"$job"'
# _track_compare puts $baseline or $canary in place of TRACK.
TRACK = "__TRACK__"
ONE_TRACK = f'job=~"$job", track="{TRACK}"'
BURN_RATE_HELP = "1 spends the budget in exactly 30 days; the page fires above 14.4 (1h) or 6 (6h)."


def _track_compare(title: str, description: str, expr_for: str, unit: str) -> PanelSpec:
    """One panel with the baseline and the canary track side by side."""
    return PanelSpec(
        title,
        description,
        [
            Query(expr_for.replace(TRACK, "$baseline"), "baseline ($baseline)"),
            Query(expr_for.replace(TRACK, "$canary"), "canary ($canary)"),
        ],
        unit=unit,
    )


DEPLOY_COMPARISON = DashboardSpec(
    uid="genesis-deploy-comparison",
    title="genesis / Deploy comparison",
    description="The canary track against the stable baseline: what the metric gate judges.",
    compares_tracks=True,
    rows=[
        (
            "Canary against baseline",
            [
                _track_compare(
                    "Error ratio",
                    "5xx share per track; the gate fails a canary that is clearly worse.",
                    ratio("http_requests_total", SERVER_ERRORS, base=ONE_TRACK),
                    "percentunit",
                ),
                _track_compare(
                    "Request duration p95",
                    "Per track, until the last byte.",
                    "histogram_quantile(0.95, sum by (le) ("
                    + rate("http_request_duration_seconds_bucket", base=ONE_TRACK)
                    + "))",
                    "s",
                ),
                _track_compare(
                    "Traffic share",
                    "Share of all requests each track serves.",
                    f"sum({rate('http_requests_total', base=ONE_TRACK)})"
                    f" / scalar(sum({rate('http_requests_total', base=JOB)}))",
                    "percentunit",
                ),
                _track_compare(
                    "Time to first chunk p95",
                    "Per track: a model or prompt change shows here first.",
                    "histogram_quantile(0.95, sum by (le) ("
                    + rate(
                        "gen_ai_client_operation_time_to_first_chunk_seconds_bucket", base=ONE_TRACK
                    )
                    + "))",
                    "s",
                ),
                PanelSpec(
                    "Builds per track",
                    "Which version and revision each track runs.",
                    [Query(f'genesis_build_info{{{JOB}, track=~"$baseline|$canary"}}')],
                    kind="table",
                    width=24,
                ),
            ],
        )
    ],
)

SLO = DashboardSpec(
    uid="genesis-slo",
    title="genesis / SLO and error budget",
    description="Availability (99.9%) and latency (99% within 2.5 s) objectives over 30 days,"
    " their burn rates and remaining error budget; the alerts use the same recording rules.",
    rows=[
        (
            "Availability: 99.9% of requests without a 5xx",
            [
                PanelSpec(
                    "Availability error budget left (30 days)",
                    "1 means untouched, 0 spent, below 0 overspent.",
                    [
                        Query(
                            "1 - "
                            + ratio("http_requests_total", SERVER_ERRORS, "job", JOB, "increase")
                            + " / 0.001",
                            "{{job}}",
                        )
                    ],
                    unit="percentunit",
                    kind="stat",
                ),
                PanelSpec(
                    "Availability burn rate",
                    BURN_RATE_HELP,
                    [
                        Query(f"job:slo_errors_per_request:ratio_rate{w}{{{JOB}}} / 0.001", w)
                        for w in ("5m", "1h", "6h", "1d", "3d")
                    ],
                ),
            ],
        ),
        (
            "Latency: 99% of requests within 2.5 s",
            [
                PanelSpec(
                    "Latency error budget left (30 days)",
                    "1 means untouched, 0 spent, below 0 overspent.",
                    [
                        Query(
                            "1 - (1 - sum by (job) (increase(http_request_duration_seconds_bucket"
                            f'{{{JOB}, le="2.5"}}[30d])) / sum by (job) (increase('
                            f"http_request_duration_seconds_count{{{JOB}}}[30d]))) / 0.01",
                            "{{job}}",
                        )
                    ],
                    unit="percentunit",
                    kind="stat",
                ),
                PanelSpec(
                    "Latency burn rate",
                    BURN_RATE_HELP,
                    [
                        Query(f"job:slo_slow_requests:ratio_rate{w}{{{JOB}}} / 0.01", w)
                        for w in ("5m", "1h", "6h", "1d", "3d")
                    ],
                ),
                PanelSpec(
                    "SLO alerts firing",
                    "The multiwindow, multi-burn-rate alerts currently firing.",
                    [Query('ALERTS{alertname=~"Genesis.*", alertstate="firing"}')],
                    kind="table",
                    width=24,
                ),
            ],
        ),
    ],
)

DASHBOARDS: tuple[DashboardSpec, ...] = (SERVICE_OVERVIEW, LLM, DEPLOY_COMPARISON, SLO)


def render(spec: DashboardSpec) -> str:
    return json.dumps(spec.build(), indent=2, sort_keys=True) + "\n"


def stale(directory: Path = DASHBOARDS_DIR) -> list[str]:
    """Names of dashboard files whose content differs from what the code generates."""
    return [
        f"{spec.uid}.json"
        for spec in DASHBOARDS
        if not (directory / f"{spec.uid}.json").is_file()
        or (directory / f"{spec.uid}.json").read_text() != render(spec)
    ]


def write(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in DASHBOARDS:
        path = directory / f"{spec.uid}.json"
        path.write_text(render(spec))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when the JSON is out of date")
    parser.add_argument("--dir", type=Path, default=DASHBOARDS_DIR, help="dashboards folder")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.dir)
        if outdated:
            print(
                f"out of date: {', '.join(outdated)};"
                " run python -m genesis.observability.dashboards",
                file=sys.stderr,
            )
            return 1
        return 0
    for path in write(args.dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
