"""genesis' multi-process merge renders what prometheus-client's MultiProcessCollector does.

Real worker processes write a real PROMETHEUS_MULTIPROC_DIR (obs_multiprocess_worker.py); every
scrape is compared byte for byte with `generate_latest` over `MultiProcessCollector`, and
sample for sample after parsing both, across new children, changed values, a dead worker and
files the fast merge leaves to the library.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from unittest import mock

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

from genesis.observability import _multiprocess
from genesis.observability._multiprocess import MultiProcessFiles
from genesis.observability._text_format import render_text

WORKER = Path(__file__).parent / "obs_multiprocess_worker.py"


class Worker:
    """One worker process; `step("base", 3)` returns once its values are in the files."""

    def __init__(self, directory: Path) -> None:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.pid = self.process.pid

    def step(self, name: str, seed: int) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{name} {seed}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "done"

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[Path, list[Worker]]]:
    directory = tmp_path / "prom"
    directory.mkdir()
    started = [Worker(directory), Worker(directory)]
    try:
        yield directory, started
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.stop()


def _registries(directory: Path) -> tuple[CollectorRegistry, CollectorRegistry]:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    ours.register(MultiProcessFiles(str(directory)))
    MultiProcessCollector(theirs, path=str(directory))  # type: ignore[no-untyped-call]
    return ours, theirs


def _samples(text: bytes) -> list[tuple[str, str, str, tuple[tuple[str, str], ...], str]]:
    """Every sample with its family, as parsed; values as text, so NaN compares equal."""
    return sorted(
        (
            family.name,
            family.type,
            sample.name,
            tuple(sorted(sample.labels.items())),
            repr(sample.value),
        )
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    )


def _assert_same(ours: CollectorRegistry, theirs: CollectorRegistry) -> bytes:
    # The fast merge must not have handed these scrapes to the library.
    with mock.patch.object(MultiProcessCollector, "merge", side_effect=AssertionError("slow")):
        rendered = render_text(ours)
    expected = generate_latest(theirs)
    assert _samples(rendered) == _samples(expected)
    assert rendered == expected
    # collect() is the library's own merge, for OpenMetrics and filtered scrapes.
    assert generate_latest(ours) == expected
    return rendered


def test_every_kind_and_mode_matches_across_scrapes(workers: tuple[Path, list[Worker]]) -> None:
    directory, (first, second) = workers
    ours, theirs = _registries(directory)
    first.step("base", 2)
    second.step("base", 5)
    text = _assert_same(ours, theirs)
    assert b'mp_gauge_all{pid="%d",room="lab"} -1.0\n' % first.pid in text
    assert b'mp_latency_seconds_bucket{le="+Inf",route="/a"} 2.0\n' in text

    # New children in both workers' existing files, and new files' worth of values.
    first.step("more", 7)
    _assert_same(ours, theirs)
    second.step("odd", 3)
    second.step("more", 8)
    text = _assert_same(ours, theirs)
    for special in (b" NaN\n", b" +Inf\n", b" -Inf\n", b" 1.2345678e+07\n", b" -2.0\n"):
        assert special in text

    # Only values change: cached keys, fresh values.
    for seed in (1, 2):
        first.step("nudge", seed)
        second.step("nudge", seed)
        _assert_same(ours, theirs)


def test_a_dead_workers_live_gauges_go(workers: tuple[Path, list[Worker]]) -> None:
    directory, (first, second) = workers
    ours, theirs = _registries(directory)
    first.step("base", 2)
    second.step("base", 5)
    _assert_same(ours, theirs)
    second.stop()
    mark_process_dead(second.pid, str(directory))  # type: ignore[no-untyped-call]
    text = _assert_same(ours, theirs)
    # The dead worker's counters and non-live gauges stay; its live gauges are gone.
    assert b'mp_gauge_all{pid="%d"' % second.pid in text
    assert b'mp_gauge_liveall{pid="%d"' % second.pid not in text
    # livesum drops every pid label, the user's too, as the library does.
    assert b'mp_gauge_livesum{room="lab"} -1.0\n' in text

    # A new worker may get the dead one's pid: simulate it with a fresh live file of that name.
    _write(
        directory / f"gauge_liveall_{second.pid}.db",
        [("mp_gauge_liveall", "mp_gauge_liveall", {"room": "reborn", "pid": "p"}, 42.0, 0.0)],
    )
    text = _assert_same(ours, theirs)
    assert b'room="reborn"} 42.0\n' in text


def _write(path: Path, entries: list[tuple[str, str, dict[str, str], float, float]]) -> None:
    """Entries written by prometheus-client's own file writer, as a worker would."""
    values: Any = MmapedDict(str(path))  # type: ignore[no-untyped-call]
    for metric, name, labels, value, timestamp in entries:
        values.write_value(
            mmap_key(metric, name, list(labels), list(labels.values()), "Help."), value, timestamp
        )
    values.close()


@pytest.mark.parametrize(
    "files",
    [
        # One family as a counter in one file and a gauge in another.
        {
            "counter_1.db": [("mixed", "mixed_total", {"a": "1"}, 1.0, 0.0)],
            "gauge_all_2.db": [("mixed", "mixed", {"a": "1"}, 2.0, 0.0)],
        },
        # One gauge family under two modes.
        {
            "gauge_max_1.db": [("g", "g", {}, 1.0, 0.0)],
            "gauge_min_2.db": [("g", "g", {}, 2.0, 0.0)],
        },
        # A sample the text format moves to a family of its own.
        {"counter_1.db": [("c", "c_created", {}, 5.0, 0.0), ("c", "c_total", {}, 1.0, 0.0)]},
        # Bucket bounds that float keys group unusually.
        {"histogram_1.db": [("h", "h_bucket", {"le": "NaN"}, 1.0, 0.0)]},
        {
            "histogram_1.db": [("h", "h_bucket", {"le": "0.0"}, 1.0, 0.0)],
            "histogram_2.db": [("h", "h_bucket", {"le": "-0.0"}, 2.0, 0.0)],
        },
    ],
    ids=["types", "modes", "created", "nan-bound", "signed-zero-bound"],
)
def test_content_the_fast_merge_does_not_mirror_goes_to_the_library(
    tmp_path: Path,
    files: dict[str, list[tuple[str, str, dict[str, str], float, float]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, entries in files.items():
        _write(tmp_path / name, entries)
    ours, theirs = _registries(tmp_path)
    library_merges: list[int] = []
    merge = MultiProcessCollector.merge

    def counted(*args: object, **kwargs: object) -> object:
        library_merges.append(1)
        return cast(Any, merge)(*args, **kwargs)

    monkeypatch.setattr(MultiProcessCollector, "merge", staticmethod(counted))
    assert render_text(ours) == generate_latest(theirs)
    assert library_merges, "the fast merge should have handed this content to the library"


def test_mostrecent_takes_the_newest_write(tmp_path: Path) -> None:
    key = ("m", "m", {"room": "x"})
    _write(tmp_path / "gauge_mostrecent_1.db", [(*key, 1.0, 100.0)])
    _write(tmp_path / "gauge_mostrecent_2.db", [(*key, 2.0, 300.0)])
    _write(
        tmp_path / "gauge_mostrecent_3.db",
        [(*key, 3.0, 200.0), ("m", "m", {"room": "y"}, 4.0, 0.0)],
    )
    ours, theirs = _registries(tmp_path)
    text = _assert_same(ours, theirs)
    assert b'm{room="x"} 2.0\n' in text
    assert b'room="y"' not in text  # never written with a timestamp


def test_buckets_of_workers_with_different_bounds_are_sorted(tmp_path: Path) -> None:
    # Two versions of a worker, with different buckets: bounds arrive out of order.
    _write(
        tmp_path / "histogram_1.db",
        [
            ("h", "h_sum", {"r": "a"}, 3.0, 0.0),
            ("h", "h_bucket", {"r": "a", "le": "1.0"}, 2.0, 0.0),
            ("h", "h_bucket", {"r": "a", "le": "+Inf"}, 1.0, 0.0),
        ],
    )
    _write(
        tmp_path / "histogram_2.db",
        [
            ("h", "h_bucket", {"r": "a", "le": "0.5"}, 4.0, 0.0),
            ("h", "h_bucket", {"r": "a", "le": "1"}, 1.0, 0.0),
            ("h", "h_bucket", {"r": "b", "le": "2.5"}, 1.0, 0.0),
        ],
    )
    text = _assert_same(*_registries(tmp_path))
    assert b'h_bucket{le="0.5",r="a"} 4.0\nh_bucket{le="1.0",r="a"} 7.0\n' in text
    assert b'h_count{r="b"} 1.0\n' in text


def test_a_missing_non_live_file_fails_as_the_library_does(tmp_path: Path) -> None:
    _write(tmp_path / "counter_1.db", [("c", "c_total", {}, 1.0, 0.0)])
    collector = MultiProcessFiles(str(tmp_path))
    os.remove(tmp_path / "counter_1.db")
    # The file vanished between the glob and the read: the fast merge raises, like the library.
    with pytest.raises(FileNotFoundError):
        collector._merge([str(tmp_path / "counter_1.db")])
    # A live gauge's file may vanish (mark_process_dead), and is skipped.
    assert collector._merge([str(tmp_path / "gauge_livesum_9.db")]) == {}


def test_the_key_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [("c", "c_total", {"n": str(n)}, float(n), 0.0) for n in range(20)]
    _write(tmp_path / "counter_1.db", entries)
    monkeypatch.setattr(_multiprocess, "_MAX_KEYS", 5)
    collector = MultiProcessFiles(str(tmp_path))
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    ours.register(collector)
    MultiProcessCollector(theirs, path=str(tmp_path))  # type: ignore[no-untyped-call]
    _assert_same(ours, theirs)
    for _ in range(2):
        before = collector._keys
        _assert_same(ours, theirs)
        # Over the cap, a scrape starts from empty caches and parses its keys again.
        assert collector._keys is not before
        assert len(collector._keys) == 20
