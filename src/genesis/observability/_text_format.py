"""The Prometheus text format (version 0.0.4), rendered without prometheus-client's per-scrape
object churn.

prometheus-client's `generate_latest` asks every collector for `Metric` objects holding one
`Sample` per series, escapes and joins every label of every sample and formats every value,
on every scrape; at 10,000 series that is tens of milliseconds (docs/benchmarks.md). Here:

- a series' `name{labels} ` prefix never changes, so it is rendered once and kept;
- the instruments genesis (and most services) use, `Counter`, `Gauge`, `Histogram` and
  `Summary` exactly, are read straight from their children (`_client_internals.py`), without
  `collect()`'s objects; every other collector (process and platform collectors, users' own,
  subclasses, `Info`, `Enum`) goes through its `collect()` and the generic path, as does
  everything when the internals probe fails;
- values repeat across series and scrapes (counts, creation times), so their Go-style text is
  kept too.

The output is byte-for-byte what `generate_latest` writes, which the tests check over every
metric type, after new children appear and across the fast and the generic paths.
"""

from __future__ import annotations

import logging
import math
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, cast

from prometheus_client import Counter, Gauge, Histogram, Summary
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import (
    UNDERSCORES,
    escape_label_name,
    escape_metric_name,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from genesis.observability import _client_internals as internals

logger = logging.getLogger(__name__)

# prometheus-client's own value formatting (Go's float format: "+Inf", "1e+06"), typed.
_go_string = cast(Callable[[float], str], floatToGoString)

# Suffixes that generate_latest moves out of a family into gauges of their own, at its end.
_OPENMETRICS_SUFFIXES = ("_created", "_gsum", "_gcount")
# Label values are client-bounded by the instrumentation (route templates, known methods), so
# the caches stay small; the caps only guard against a collector that mints series freely.
_MAX_CACHED = 200_000
_MAX_FORMATTED = 100_000

Labels = tuple[tuple[str, str], ...]

_prefixes: dict[tuple[str, Labels], str] = {}
_formatted: dict[float, str] = {}


_SPECIAL_FLOATS = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


def _format_float(value: float) -> str:
    """floatToGoString's steps for an exact float, minus the checks a float does not need."""
    text = repr(value)
    special = _SPECIAL_FLOATS.get(text)
    if special is not None:
        return special
    if value > 0:
        dot = text.find(".")
        # Go switches to exponents sooner than Python (floatToGoString's own rule).
        if dot > 6:
            mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
            return f"{mantissa}e+{dot - 1:02d}"
    return text


def format_value(value: float) -> str:
    """`floatToGoString(value)`, from a cache of the texts already made.

    The cache is keyed by value, so equal values must print alike; the one exception is zero
    (0.0 and -0.0 are equal keys), hence the sign check on a zero hit. NaN never equals a key,
    so it is never stored. Anything but an exact float (ints, subclasses, Decimals) is left to
    floatToGoString itself.
    """
    text = _formatted.get(value)
    if text is not None and (value or math.copysign(1.0, value) > 0):
        return text
    if type(value) is not float:
        return _go_string(value)
    text = _format_float(value)
    if not math.isnan(value) and (value or math.copysign(1.0, value) > 0):
        if len(_formatted) >= _MAX_FORMATTED:
            _formatted.clear()
        _formatted[value] = text
    return text


def _escape_value(value: str) -> str:
    # The text format's label value escapes: backslash, newline and double quote.
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render_prefix(name: str, labels: Iterable[tuple[str, str]]) -> str:
    """`name{labels} ` as generate_latest writes it: labels sorted by name, escaped."""
    escaped = escape_metric_name(name, UNDERSCORES)
    pairs = sorted(labels)
    if not pairs:
        return f"{escaped} "
    text = ",".join(f'{escape_label_name(k, UNDERSCORES)}="{_escape_value(v)}"' for k, v in pairs)
    return f"{escaped}{{{text}}} "


def _sample_line(name: str, labels: dict[str, str], value: float, timestamp: Any) -> str:
    key = (name, tuple(labels.items()))
    prefix = _prefixes.get(key)
    if prefix is None:
        prefix = render_prefix(name, labels.items())
        if len(_prefixes) >= _MAX_CACHED:
            _prefixes.clear()
        _prefixes[key] = prefix
    if timestamp is None:
        return f"{prefix}{format_value(value)}\n"
    return f"{prefix}{format_value(value)} {int(float(timestamp) * 1000):d}\n"


def header(name: str, documentation: str, kind: str) -> str:
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


def family_header(name: str, documentation: str, kind: str) -> str:
    """A family's HELP and TYPE lines, `kind` being the family's (OpenMetrics) type."""
    suffix, text_kind = _TEXT_TYPES.get(kind, ("", kind))
    return header(name + suffix, documentation, text_kind)


def render_metric(metric: Metric, output: list[str]) -> None:
    """One collected family, as generate_latest renders it: the generic path."""
    output.append(family_header(metric.name, metric.documentation, metric.type))
    movable = {metric.name + om_suffix: om_suffix for om_suffix in _OPENMETRICS_SUFFIXES}
    moved: dict[str, list[str]] = {}
    for sample in metric.samples:
        line = _sample_line(sample.name, sample.labels, sample.value, sample.timestamp)
        om_suffix = movable.get(sample.name)
        if om_suffix is None:
            output.append(line)
        else:
            moved.setdefault(om_suffix, []).append(line)
    for om_suffix, lines in sorted(moved.items()):
        output.append(header(metric.name + om_suffix, metric.documentation, "gauge"))
        output.extend(lines)


class TextCollector(ABC):
    """A collector that can also write its families' text format straight into a scrape.

    `collect()` stays the truth for every other consumer (OpenMetrics, `name[]` filters,
    `generate_latest`); `render_into` must append exactly what rendering `collect()` would.
    """

    @abstractmethod
    def collect(self) -> Iterable[Metric]: ...

    @abstractmethod
    def render_into(self, output: list[str]) -> None: ...


class _UnsupportedFamilyError(Exception):
    """This family is not one the fast path reads; render it through collect()."""


class _FamilyCache:
    """Headers and each child's line prefixes for one instrument, kept between scrapes."""

    __slots__ = ("children", "created_header", "header", "info")

    def __init__(self, instrument: object, kind: str) -> None:
        self.info = internals.family(instrument)
        self.header = family_header(self.info.name, self.info.documentation, kind)
        self.created_header = header(self.info.name + "_created", self.info.documentation, "gauge")
        self.children: dict[tuple[str, ...], tuple[str, ...]] = {}

    def prefixes(
        self, labelvalues: tuple[str, ...], make: Callable[[str, Labels], tuple[str, ...]]
    ) -> tuple[str, ...]:
        found = self.children.get(labelvalues)
        if found is None:
            found = make(self.info.name, tuple(zip(self.info.labelnames, labelvalues, strict=True)))
            self.children[labelvalues] = found
        return found

    def forget_removed(self, live: int) -> None:
        # Children removed with remove()/clear() leave entries behind; drop them now and then.
        if len(self.children) > 2 * live + 64:
            self.children.clear()


_families: weakref.WeakKeyDictionary[object, _FamilyCache] = weakref.WeakKeyDictionary()


def _cache_for(instrument: object, kind: str) -> _FamilyCache:
    cache = _families.get(instrument)
    if cache is None:
        cache = _families[instrument] = _FamilyCache(instrument, kind)
    return cache


def _children(instrument: object) -> list[tuple[tuple[str, ...], Any]]:
    kids = internals.children(instrument)
    if kids is None:
        raise _UnsupportedFamilyError("a labelled child registered on its own")
    return kids


def _finish(cache: _FamilyCache, output: list[str], created_lines: list[str], kids: int) -> None:
    """A family's `_created` series, last as generate_latest puts them, and cache upkeep."""
    if created_lines:
        output.append(cache.created_header)
        output.extend(created_lines)
    cache.forget_removed(kids)


def _counter_prefixes(name: str, labels: Labels) -> tuple[str, ...]:
    return render_prefix(name + "_total", labels), render_prefix(name + "_created", labels)


def _render_counter(counter: object, output: list[str]) -> None:
    cache = _cache_for(counter, "counter")
    kids = _children(counter)
    created = internals.created_series_enabled()
    created_lines: list[str] = []
    output.append(cache.header)
    for labelvalues, child in kids:
        total_prefix, created_prefix = cache.prefixes(labelvalues, _counter_prefixes)
        value, created_at = internals.counter_parts(child)
        output.append(f"{total_prefix}{format_value(value.get())}\n")
        if created:
            created_lines.append(f"{created_prefix}{format_value(created_at)}\n")
    _finish(cache, output, created_lines, len(kids))


def _gauge_prefixes(name: str, labels: Labels) -> tuple[str, ...]:
    return (render_prefix(name, labels),)


def _render_gauge(gauge: object, output: list[str]) -> None:
    cache = _cache_for(gauge, "gauge")
    kids = _children(gauge)
    output.append(cache.header)
    for labelvalues, child in kids:
        value = internals.gauge_value(child)
        if value is None:
            raise _UnsupportedFamilyError("a gauge child samples through set_function")
        (prefix,) = cache.prefixes(labelvalues, _gauge_prefixes)
        output.append(f"{prefix}{format_value(value.get())}\n")
    cache.forget_removed(len(kids))


def _histogram_prefixes(bounds: Iterable[float]) -> Callable[[str, Labels], tuple[str, ...]]:
    def make(name: str, labels: Labels) -> tuple[str, ...]:
        buckets = tuple(
            render_prefix(name + "_bucket", (*labels, ("le", _go_string(b)))) for b in bounds
        )
        return (
            *buckets,
            render_prefix(name + "_count", labels),
            render_prefix(name + "_sum", labels),
            render_prefix(name + "_created", labels),
        )

    return make


def _render_histogram(histogram: object, output: list[str]) -> None:
    cache = _cache_for(histogram, "histogram")
    kids = _children(histogram)
    created = internals.created_series_enabled()
    created_lines: list[str] = []
    output.append(cache.header)
    for labelvalues, child in kids:
        bounds, buckets, total, created_at = internals.histogram_parts(child)
        prefixes = cache.children.get(labelvalues)
        if prefixes is None:  # looked up first: no prefix-maker built per child and scrape
            prefixes = cache.prefixes(labelvalues, _histogram_prefixes(bounds))
        if len(prefixes) != len(buckets) + 3:
            raise _UnsupportedFamilyError("a child's buckets differ from its family's")
        # As Histogram._child_samples: cumulative counts, the count, the sum only when no
        # bucket is negative, and the creation time (moved to the end by generate_latest).
        acc = 0.0
        for prefix, bucket in zip(prefixes, buckets, strict=False):
            acc += bucket.get()
            output.append(f"{prefix}{format_value(acc)}\n")
        output.append(f"{prefixes[-3]}{format_value(acc)}\n")
        if bounds[0] >= 0:
            output.append(f"{prefixes[-2]}{format_value(total.get())}\n")
        if created:
            created_lines.append(f"{prefixes[-1]}{format_value(created_at)}\n")
    _finish(cache, output, created_lines, len(kids))


def _summary_prefixes(name: str, labels: Labels) -> tuple[str, ...]:
    return (
        render_prefix(name + "_count", labels),
        render_prefix(name + "_sum", labels),
        render_prefix(name + "_created", labels),
    )


def _render_summary(summary: object, output: list[str]) -> None:
    cache = _cache_for(summary, "summary")
    kids = _children(summary)
    created = internals.created_series_enabled()
    created_lines: list[str] = []
    output.append(cache.header)
    for labelvalues, child in kids:
        count_prefix, sum_prefix, created_prefix = cache.prefixes(labelvalues, _summary_prefixes)
        count, total, created_at = internals.summary_parts(child)
        output.append(f"{count_prefix}{format_value(count.get())}\n")
        output.append(f"{sum_prefix}{format_value(total.get())}\n")
        if created:
            created_lines.append(f"{created_prefix}{format_value(created_at)}\n")
    _finish(cache, output, created_lines, len(kids))


_FAST_RENDERERS: dict[type[Any], Callable[[object, list[str]], None]] = {
    Counter: _render_counter,
    Gauge: _render_gauge,
    Histogram: _render_histogram,
    Summary: _render_summary,
}
assert set(_FAST_RENDERERS) == set(internals.FAST_TYPES)

_warned: set[type[Any]] = set()


def _render_collector(collector: Collector, output: list[str], strict: bool) -> None:
    if isinstance(collector, TextCollector):
        collector.render_into(output)
        return
    fast = _FAST_RENDERERS.get(type(collector))
    if fast is not None:
        mark = len(output)
        try:
            fast(collector, output)
        except _UnsupportedFamilyError:
            del output[mark:]
        except (AttributeError, TypeError, ValueError) as error:
            if strict:  # the probe: a surprise is a finding, not something to work around
                raise
            # The internals are not what the probe saw: say so once, stay correct.
            del output[mark:]
            if type(collector) not in _warned:
                _warned.add(type(collector))
                logger.warning("scrape fast path off for %s: %r", type(collector).__name__, error)
        else:
            return
    for metric in collector.collect():
        render_metric(metric, output)


def _render(registry: Collector, fast: bool, strict: bool = False) -> bytes:
    output: list[str] = []
    contents = internals.registry_contents(registry) if fast else None
    if contents is None:
        for metric in registry.collect():
            render_metric(metric, output)
    else:
        collectors, target_info = contents
        if target_info is not None:
            render_metric(target_info, output)
        for collector in collectors:
            _render_collector(collector, output, strict)
    return "".join(output).encode("utf-8")


_fast_path: bool | None = None


def fast_path_enabled() -> bool:
    """Whether prometheus-client's internals are what the fast paths read (probed once)."""
    global _fast_path  # noqa: PLW0603 - probed once per process, on the first scrape
    if _fast_path is None:
        problem = internals.fast_path_problem(
            lambda registry: _render(registry, fast=True, strict=True)
        )
        if problem is not None:
            logger.warning("scrapes use prometheus-client's collect(): %s", problem)
        _fast_path = problem is None
    return _fast_path


def render_text(registry: Collector) -> bytes:
    """What `prometheus_client.generate_latest(registry)` returns, rendered faster."""
    return _render(registry, fast_path_enabled())
