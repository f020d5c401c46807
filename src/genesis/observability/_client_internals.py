"""Every read of prometheus-client's private internals, isolated in this one module.

Why: at 10,000 series a scrape through the public API (`registry.collect()`, and in
multi-process mode `MultiProcessCollector`) spends most of its time building a `Metric` and a
`Sample` per series and, across workers, `json.loads`-ing every key of every worker file on
every scrape (docs/benchmarks.md). The scrape renderer (`_text_format.py`) and the multi-process
merge (`_multiprocess.py`) avoid that by reading, through the functions here only:

- a `CollectorRegistry`'s collectors and target info (`_collector_to_names`, `_lock`,
  `_target_info`, `_target_info_metric()`);
- the instruments' children and values (`_metrics`, `_lock`, `_labelnames`, `_name`,
  `_documentation`, `_value`, `_created`, `_buckets`, `_upper_bounds`, `_sum`, `_count`), and
  `prometheus_client.metrics._use_created`;
- the layout of the multi-process `.db` files (`prometheus_client.mmap_dict`'s format) and the
  file naming of `prometheus_client.values` (`<type>[_<mode>]_<pid>.db`).

Guards: `fast_path_problem()` renders probe instruments both ways and reads a probe file
written by prometheus-client's own `MmapedDict`; if anything differs or fails, it names the
problem, genesis logs it once and scrapes through the public API instead (slower, still right).
tests/observability/test_obs_client_internals.py asserts there is no problem, so an upgrade of
prometheus-client that changes these internals fails the tests loudly rather than the scrapes.
"""

from __future__ import annotations

import json
import mmap
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client import metrics as _client_metrics
from prometheus_client import values as _client_values
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.registry import Collector

# The instrument classes whose children the fast path reads; exact types only, since a
# subclass may override how it samples.
FAST_TYPES: tuple[type[Any], ...] = (Counter, Gauge, Histogram, Summary)


class Readable(Protocol):
    """A child's value holder (`MutexValue`, or `MmapedValue` in multi-process mode)."""

    def get(self) -> float: ...


def registry_contents(registry: object) -> tuple[list[Collector], Metric | None] | None:
    """The collectors of `registry` in `collect()`'s order and its target-info family.

    None when `registry` is not a plain `CollectorRegistry` (a subclass or another collector
    may collect differently): the caller then uses `registry.collect()`.
    """
    if type(registry) is not CollectorRegistry:
        return None
    plain = cast(Any, registry)
    # As CollectorRegistry.collect(): copy under the registry's lock.
    with plain._lock:
        collectors: list[Collector] = list(plain._collector_to_names)
        target_info: Metric | None = plain._target_info_metric() if plain._target_info else None
    return collectors, target_info


def created_series_enabled() -> bool:
    """Whether counters, histograms and summaries export `_created` samples now."""
    return bool(_client_metrics._use_created)


class Family(NamedTuple):
    """What a family's text rendering needs besides its children."""

    name: str
    documentation: str
    labelnames: tuple[str, ...]


def family(instrument: object) -> Family:
    plain = cast(Any, instrument)
    return Family(plain._name, plain._documentation, tuple(plain._labelnames))


def children(instrument: object) -> list[tuple[tuple[str, ...], Any]] | None:
    """(label values, child) in the order `collect()` yields them; a label-less instrument is
    its own only child. None for a labelled child registered on its own, which collect()
    samples without its labels."""
    plain = cast(Any, instrument)
    if not plain._labelnames:
        return [((), instrument)]
    if plain._labelvalues:
        return None
    # As _multi_samples(): copy under the family's lock.
    with plain._lock:
        return list(plain._metrics.items())


def counter_parts(child: object) -> tuple[Readable, float]:
    """A counter child's value and its creation time."""
    plain = cast(Any, child)
    return plain._value, plain._created


def gauge_value(child: object) -> Readable | None:
    """A gauge child's value, or None when `set_function` replaced how it samples."""
    plain = cast(Any, child)
    if "_child_samples" in vars(plain):
        return None
    value: Readable = plain._value
    return value


def histogram_parts(child: object) -> tuple[Sequence[float], Sequence[Readable], Readable, float]:
    """A histogram child's upper bounds, per-bucket (not cumulative) counts, sum and creation."""
    plain = cast(Any, child)
    return plain._upper_bounds, plain._buckets, plain._sum, plain._created


def summary_parts(child: object) -> tuple[Readable, Readable, float]:
    """A summary child's count, sum and creation time."""
    plain = cast(Any, child)
    return plain._count, plain._sum, plain._created


# The multi-process files: a 4-byte used length, 4 bytes of padding, then entries of a 4-byte
# key length, the UTF-8 JSON key padded to 8-byte alignment, and two doubles (value, timestamp).
_INT = struct.Struct("i")
_TWO_DOUBLES = struct.Struct("dd")
_FIRST_ENTRY = 8


def read_values_file(path: str) -> bytes:
    """A multi-process file's used bytes, read as `MmapedDict.read_all_values_from_file` does
    (one page, then the rest if the used length says so)."""
    with open(path, "rb") as infile:
        data = infile.read(mmap.PAGESIZE)
        used = int(_INT.unpack_from(data, 0)[0])
        if used > len(data):
            data += infile.read(used - len(data))
    return data


def iter_entries(data: bytes) -> Iterator[tuple[bytes, float, float]]:
    """(key as UTF-8 bytes, value, timestamp) of every entry in `data`."""
    used = int(_INT.unpack_from(data, 0)[0])
    unpack_int, unpack_doubles = _INT.unpack_from, _TWO_DOUBLES.unpack_from
    pos = _FIRST_ENTRY
    while pos < used:
        length = unpack_int(data, pos)[0]
        if length + pos > used:
            raise RuntimeError("Read beyond file size detected, file is corrupted.")
        pos += 4
        key = data[pos : pos + length]
        pos += length + (8 - (length + 4) % 8)
        value, timestamp = unpack_doubles(data, pos)
        yield key, value, timestamp
        pos += 16


def parse_file_name(file_name: str) -> tuple[str, str, str]:
    """(type, gauge mode, pid) from a file's base name, split as MultiProcessCollector does.

    Mode and pid are only meaningful for gauges (`gauge_livesum_123.db`); other types' files
    are `counter_123.db`.
    """
    parts = file_name.split("_")
    if parts[0] == "gauge":
        return parts[0], parts[1], parts[2][:-3]
    return parts[0], "", ""


def parse_key(key: bytes) -> tuple[str, str, dict[str, str], str]:
    """(family name, sample name, labels, help) of an entry's key."""
    metric_name, name, labels, help_text = json.loads(key.decode("utf-8"))
    return metric_name, name, labels, help_text


def _probe_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("probe_events", "Events.", ["kind"], registry=registry).labels('a"\\').inc(3)
    Counter("probe_plain", "Plain.", registry=registry).inc()
    gauge = Gauge("probe_level", "Level.", ["room"], registry=registry)
    gauge.labels("x").set(-2.5)
    gauge.labels("y").set_function(lambda: 7.0)
    histogram = Histogram(
        "probe_seconds", "Seconds.", ["route"], buckets=(0.1, 1.0, 1e7), registry=registry
    )
    histogram.labels("/a").observe(0.5)
    histogram.labels("/a").observe(2e7)
    Summary("probe_sizes", "Sizes.", ["z"], registry=registry).labels("q").observe(1e9)
    return registry


def _probe_single_process(render: Callable[[Collector], bytes]) -> str | None:
    from prometheus_client import generate_latest

    if _client_values.ValueClass is not _client_values.MutexValue:
        # Probe instruments would write files into the multi-process directory; in that mode
        # the fast path reads the files (probed below), not in-process instruments.
        return None
    registry = _probe_registry()
    if render(registry) != generate_latest(registry):
        return "the fast renderer's output differs from generate_latest on the probe families"
    return None


def _probe_files() -> str | None:
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "counter_1.db")
        written = MmapedDict(path)  # type: ignore[no-untyped-call]
        try:
            expected = []
            keys = ('["a", "a_total", {"l": "v"}, "h"]', '["ü", "ü", {}, "' + "x" * 300 + '"]')
            for n, key in enumerate(keys):
                written.write_value(key, n + 0.5, 1700000000.0 + n)  # type: ignore[no-untyped-call]
                expected.append((key, n + 0.5, 1700000000.0 + n))
        finally:
            written.close()  # type: ignore[no-untyped-call]
        library = [
            entry[:3]
            for entry in MmapedDict.read_all_values_from_file(path)  # type: ignore[no-untyped-call]
        ]
        ours = [(key.decode(), v, t) for key, v, t in iter_entries(read_values_file(path))]
        if not library == ours == expected:
            return "the multi-process file layout differs from prometheus_client.mmap_dict's"
    if parse_file_name("gauge_livesum_123.db") != ("gauge", "livesum", "123"):
        return "the multi-process file names changed"
    return None


def fast_path_problem(render: Callable[[Collector], bytes]) -> str | None:
    """Why the fast paths cannot be trusted with this prometheus-client, or None if they can.

    `render` is the fast text renderer, compared byte for byte with `generate_latest`.
    """
    try:
        return _probe_single_process(render) or _probe_files()
    except Exception as error:  # any failure means the internals are not what we read
        return f"probing prometheus-client's internals failed: {error!r}"
