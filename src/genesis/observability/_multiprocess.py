"""Merging the workers' multi-process files on every scrape, with what does not change kept.

prometheus-client's `MultiProcessCollector` re-reads every worker's `.db` file on every scrape
and, for every entry, decodes and `json.loads` its key, builds a `Sample`, filters its labels
and re-formats its bucket bound; at 10,000 series that is most of a scrape (docs/benchmarks.md).
An entry's key never changes once written (the files only grow; values are overwritten in
place), so `MultiProcessFiles` keeps what it derived from each key, keyed by the key's bytes,
and per scrape only re-reads the values and merges them.

The merge mirrors `MultiProcessCollector.merge(files, accumulate=True)` step for step: files in
the same glob order, families in first-seen order with the first-seen help, counters and
summaries summed, histogram buckets summed per bound then made cumulative with `_count` their
total, gauges by their file's mode (`min`/`max`/`sum`/`mostrecent` and their `live` twins
without the `pid` label; `all`/`liveall` per pid; `live*` files of dead workers gone once
`mark_process_dead` removed them), so the rendered text is what `generate_latest` writes for
`MultiProcessCollector`. Anything that merge would treat unusually (a family split over types
or gauge modes, names the text format moves, odd bucket bounds, unparsable keys) makes the
scrape go through `MultiProcessCollector` itself. `collect()` always does: OpenMetrics and
filtered scrapes get the library's own merge.
"""

from __future__ import annotations

import glob
import math
import os
import threading
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from genesis.observability import _client_internals as internals
from genesis.observability._text_format import (
    TextCollector,
    family_header,
    format_value,
    render_metric,
    render_prefix,
)

Labels = tuple[tuple[str, str], ...]

# The gauge modes whose merge drops the pid label (MultiProcessCollector._accumulate_metrics).
_WITHOUT_PID = frozenset(
    ("min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent", "livemostrecent")
)
_MIN = frozenset(("min", "livemin"))
_MAX = frozenset(("max", "livemax"))
_SUM = frozenset(("sum", "livesum"))
_MOST_RECENT = frozenset(("mostrecent", "livemostrecent"))
_TYPES = frozenset(("counter", "gauge", "histogram", "summary"))
# Keys are bounded by the instrumentation's label values; the cap guards against a worker
# that mints series freely (everything is derived again after a reset).
_MAX_KEYS = 500_000


class _NotMirroredError(Exception):
    """Content the fast merge does not mirror; this scrape goes through MultiProcessCollector."""


class _Series:
    """One merged sample's identity, (name, labels), interned so dicts hash it by identity."""

    __slots__ = ("labels", "name", "prefix")

    def __init__(self, name: str, labels: Labels) -> None:
        self.name = name
        self.labels = labels
        # dict(labels): with a user label named "pid", a gauge's own pid label wins, as in
        # the Sample MultiProcessCollector builds.
        self.prefix = render_prefix(name, dict(labels).items())


class _Group:
    """A label set that samples are grouped by, interned; caches the series made from it."""

    __slots__ = ("buckets", "counts", "labels")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.buckets: dict[tuple[str, float], _Series] = {}
        self.counts: dict[str, _Series] = {}


class _Key:
    """What one entry's key says, parsed once."""

    __slots__ = (
        "bucket",
        "bucket_group",
        "group",
        "help",
        "metric_name",
        "name",
        "no_pid",
        "series",
        "with_pid",
    )

    def __init__(self, metric_name: str, name: str, help_text: str) -> None:
        self.metric_name = metric_name
        self.name = name
        self.help = help_text
        self.group: _Group
        self.series: _Series
        # Histograms: the `le` bound and the labels without it; None for sums.
        self.bucket: float | None = None
        self.bucket_group: _Group
        # Gauges: the (group, series) without any pid label, and with the file's pid appended.
        self.no_pid: tuple[_Group, _Series]
        self.with_pid: dict[str, tuple[_Group, _Series]] = {}


class _Family:
    """One family being merged in a scrape."""

    __slots__ = ("buckets", "help", "mode", "name", "samples", "timestamps", "typ")

    def __init__(self, name: str, help_text: str, typ: str, mode: str) -> None:
        self.name = name
        self.help = help_text
        self.typ = typ
        self.mode = mode
        self.samples: dict[_Group, dict[_Series, float]] = {}
        self.buckets: dict[_Group, dict[float, float]] = {}
        self.timestamps: dict[_Group, dict[str, float]] = {}


class MultiProcessFiles(TextCollector):
    """The workers' files in `path`, merged as `MultiProcessCollector` merges them, faster."""

    def __init__(self, path: str) -> None:
        self._library = MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]
        self._path = path
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._keys: dict[bytes, _Key] = {}
        self._groups: dict[Labels, _Group] = {}
        self._series: dict[tuple[str, Labels], _Series] = {}
        self._headers: dict[tuple[str, str, str], str] = {}

    def collect(self) -> Iterable[Metric]:
        collected: Iterable[Metric] = self._library.collect()  # type: ignore[no-untyped-call]
        return collected

    def render_into(self, output: list[str]) -> None:
        files = glob.glob(os.path.join(self._path, "*.db"))
        with self._lock:
            if len(self._keys) > _MAX_KEYS:
                self._reset()
            try:
                families = self._merge(files)
            except _NotMirroredError:
                families = None
            if families is not None:
                self._render(families, output)
                return
        merged = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        for metric in merged:
            render_metric(metric, output)

    # Interning: equal label sets and series are one object each, so that the per-scrape
    # dicts hash by identity and a series met through two keys (e.g. two workers' help texts)
    # merges into one sample, as MultiProcessCollector's tuple-keyed dicts do.
    def _group(self, labels: Labels) -> _Group:
        group = self._groups.get(labels)
        if group is None:
            group = self._groups[labels] = _Group(labels)
        return group

    def _one_series(self, name: str, labels: Labels) -> _Series:
        series = self._series.get((name, labels))
        if series is None:
            series = self._series[(name, labels)] = _Series(name, labels)
        return series

    def _parse(self, raw: bytes) -> _Key:
        try:
            metric_name, name, labels, help_text = internals.parse_key(raw)
            label_key: Labels = tuple(sorted(labels.items()))
            key = _Key(metric_name, name, help_text)
            key.group = self._group(label_key)
            key.series = self._one_series(name, label_key)
            # MultiProcessCollector takes the first `le` label of the sorted labels.
            le = next((value for label, value in label_key if label == "le"), None)
            if le is not None:
                key.bucket = float(le)
                without_le = tuple(pair for pair in label_key if pair[0] != "le")
                key.bucket_group = self._group(without_le)
            no_pid = tuple(pair for pair in label_key if pair[0] != "pid")
            key.no_pid = (self._group(no_pid), self._one_series(name, no_pid))
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as error:
            raise _NotMirroredError from error
        bucket = key.bucket
        if bucket is not None and (
            math.isnan(bucket) or (bucket == 0 and math.copysign(1.0, bucket) < 0)
        ):
            # NaN never equals itself and -0.0 equals 0.0: the library's per-sample float keys
            # would group these differently from a parsed-once bound. (Checked whatever the
            # file's type: the parsed key is kept for files of any type.)
            raise _NotMirroredError
        if name in {metric_name + suffix for suffix in ("_created", "_gsum", "_gcount")}:
            # generate_latest would move these lines into a family of their own.
            raise _NotMirroredError
        self._keys[raw] = key
        return key

    def _pid_form(self, key: _Key, pid: str) -> tuple[_Group, _Series]:
        found = key.with_pid.get(pid)
        if found is None:
            labels = (*key.group.labels, ("pid", pid))
            found = key.with_pid[pid] = (self._group(labels), self._one_series(key.name, labels))
        return found

    def _merge(self, files: list[str]) -> dict[str, _Family]:
        families: dict[str, _Family] = {}
        keys = self._keys
        for path in files:
            try:
                typ, mode, pid = internals.parse_file_name(os.path.basename(path))
            except IndexError as error:
                raise _NotMirroredError from error
            if typ not in _TYPES:
                raise _NotMirroredError
            try:
                data = internals.read_values_file(path)
            except FileNotFoundError:
                if typ == "gauge" and mode.startswith("live"):
                    # mark_process_dead removed a dead worker's live gauges after the glob.
                    continue
                raise
            for raw, value, timestamp in internals.iter_entries(data):
                key = keys.get(raw)
                if key is None:
                    key = self._parse(raw)
                family = families.get(key.metric_name)
                if family is None:
                    try:
                        # As the library's merge: a Metric validates the family's name and type.
                        Metric(key.metric_name, key.help, typ)
                    except ValueError as error:
                        raise _NotMirroredError from error
                    family = families[key.metric_name] = _Family(
                        key.metric_name, key.help, typ, mode
                    )
                elif family.typ != typ or family.mode != mode:
                    raise _NotMirroredError  # one family over several types or gauge modes
                if typ == "gauge":
                    self._add_gauge(family, key, pid, value, timestamp)
                    continue
                if typ == "histogram" and key.bucket is not None:
                    bounds = family.buckets.get(key.bucket_group)
                    if bounds is None:
                        bounds = family.buckets[key.bucket_group] = {}
                    bounds[key.bucket] = bounds.get(key.bucket, 0.0) + value
                    continue
                # Counters, summaries and histogram sums add up across workers.
                group = family.samples.get(key.group)
                if group is None:
                    group = family.samples[key.group] = {}
                group[key.series] = group.get(key.series, 0.0) + value
        for family in families.values():
            if family.buckets:
                self._accumulate_buckets(family)
        return families

    def _add_gauge(
        self, family: _Family, key: _Key, pid: str, value: float, timestamp: float
    ) -> None:
        mode = family.mode
        label_group, series = key.no_pid if mode in _WITHOUT_PID else self._pid_form(key, pid)
        if mode in _MOST_RECENT:
            seen = family.timestamps.setdefault(label_group, {})
            current = seen.get(key.name, 0.0)
            timestamp = float(timestamp or 0)
            if current < timestamp:
                family.samples.setdefault(label_group, {})[series] = value
                seen[key.name] = timestamp
            return
        group = family.samples.setdefault(label_group, {})
        if mode in _MIN:
            if value < group.setdefault(series, value):
                group[series] = value
        elif mode in _MAX:
            if value > group.setdefault(series, value):
                group[series] = value
        elif mode in _SUM:
            group[series] = group.get(series, 0.0) + value
        else:  # all, liveall: one sample per worker
            group[series] = value

    def _accumulate_buckets(self, family: _Family) -> None:
        for label_group, bounds in family.buckets.items():
            group = family.samples.get(label_group)
            if group is None:
                group = family.samples[label_group] = {}
            acc = 0.0
            for bound, value in sorted(bounds.items()):
                acc += value
                group[self._bucket_series(label_group, family.name, bound)] = acc
            count = label_group.counts.get(family.name)
            if count is None:
                count = self._one_series(family.name + "_count", label_group.labels)
                label_group.counts[family.name] = count
            group[count] = acc

    def _bucket_series(self, group: _Group, metric_name: str, bound: float) -> _Series:
        series = group.buckets.get((metric_name, bound))
        if series is None:
            labels = (*group.labels, ("le", format_value(bound)))
            series = self._one_series(metric_name + "_bucket", labels)
            group.buckets[(metric_name, bound)] = series
        return series

    def _render(self, families: dict[str, _Family], output: list[str]) -> None:
        for family in families.values():
            head = self._headers.get((family.name, family.help, family.typ))
            if head is None:
                head = family_header(family.name, family.help, family.typ)
                self._headers[(family.name, family.help, family.typ)] = head
            output.append(head)
            for group in family.samples.values():
                for series, value in group.items():
                    output.append(f"{series.prefix}{format_value(value)}\n")
