"""The Prometheus text format (version 0.0.4), with each series' rendered name and labels kept.

prometheus-client's `generate_latest` escapes and joins every label of every sample on every
scrape; at 10,000 series that is most of a scrape's cost (docs/benchmarks.md). A series'
`name{labels}` prefix never changes, so it is rendered once and reused: only the value is
formatted per scrape. The output is byte-for-byte what `generate_latest` writes (a test
compares them over every metric type), so any consumer of the text format sees no difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from prometheus_client.openmetrics.exposition import (
    UNDERSCORES,
    escape_label_name,
    escape_metric_name,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

# prometheus-client's own value formatting (Go's float format: "+Inf", "1e+06"), typed.
_format_value = cast(Callable[[float], str], floatToGoString)

# Suffixes that generate_latest moves out of a family into gauges of their own, at its end.
_OPENMETRICS_SUFFIXES = ("_created", "_gsum", "_gcount")
# Label values are client-bounded by the instrumentation (route templates, known methods), so
# the cache stays small; the cap only guards against a collector that mints series freely.
_MAX_CACHED = 200_000

_prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}


def _escape_value(value: str) -> str:
    # The text format's label value escapes: backslash, newline and double quote.
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _render_prefix(sample: Sample) -> str:
    name = escape_metric_name(sample.name, UNDERSCORES)
    if not sample.labels:
        return f"{name} "
    labels = ",".join(
        f'{escape_label_name(k, UNDERSCORES)}="{_escape_value(v)}"'
        for k, v in sorted(sample.labels.items())
    )
    return f"{name}{{{labels}}} "


def _line(sample: Sample) -> str:
    # The hot loop of a scrape: one dict lookup and one float format per sample.
    key = (sample.name, tuple(sample.labels.items()))
    prefix = _prefixes.get(key)
    if prefix is None:
        prefix = _render_prefix(sample)
        if len(_prefixes) >= _MAX_CACHED:
            _prefixes.clear()
        _prefixes[key] = prefix
    if sample.timestamp is None:
        return f"{prefix}{_format_value(sample.value)}\n"
    return f"{prefix}{_format_value(sample.value)} {int(float(sample.timestamp) * 1000):d}\n"


def _header(name: str, documentation: str, kind: str) -> str:
    escaped = escape_metric_name(name, UNDERSCORES)
    doc = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {escaped} {doc}\n# TYPE {escaped} {kind}\n"


# OpenMetrics family types as the 0.0.4 text format names them (suffix added to the name).
_TEXT_TYPES = {
    "counter": ("_total", "counter"),
    "info": ("_info", "gauge"),
    "stateset": ("", "gauge"),
    "gaugehistogram": ("", "histogram"),
    "unknown": ("", "untyped"),
}


def render_text(registry: Collector) -> bytes:
    """What `prometheus_client.generate_latest(registry)` returns, rendered faster."""
    output: list[str] = []
    for metric in registry.collect():
        suffix, kind = _TEXT_TYPES.get(metric.type, ("", metric.type))
        output.append(_header(metric.name + suffix, metric.documentation, kind))
        movable = {metric.name + om_suffix: om_suffix for om_suffix in _OPENMETRICS_SUFFIXES}
        moved: dict[str, list[str]] = {}
        for sample in metric.samples:
            om_suffix = movable.get(sample.name)
            if om_suffix is None:
                output.append(_line(sample))
            else:
                moved.setdefault(om_suffix, []).append(_line(sample))
        for om_suffix, lines in sorted(moved.items()):
            output.append(_header(metric.name + om_suffix, metric.documentation, "gauge"))
            output.extend(lines)
    return "".join(output).encode("utf-8")
