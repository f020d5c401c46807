"""The chat service benchmark imports, and its pure helpers compute what they say.

Only statistics and parsing here: the benchmark's timings are never asserted in a test.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level folder of the checkout
    sys.path.insert(0, str(ROOT))

from benchmarks.service import __main__ as cli  # noqa: E402
from benchmarks.service.load import first_content  # noqa: E402
from benchmarks.service.stats import median, paired, percentile, rotate  # noqa: E402
from benchmarks.service.stub import Answers  # noqa: E402


def test_percentile_interpolates_like_numpy_linear() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 25) == 2.0
    assert percentile([1.0, 2.0], 99) == pytest.approx(1.99)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile(values, 101)


def test_median_skips_rounds_that_measured_nothing() -> None:
    assert median([3.0, math.nan, 1.0, 2.0]) == 2.0
    assert math.isnan(median([math.nan]))


def test_paired_compares_round_by_round() -> None:
    assert paired([3.0, 5.0], [1.0, 2.0], "delta") == [2.0, 3.0]
    assert paired([3.0, 5.0], [1.0, 2.0], "ratio") == [3.0, 2.5]
    assert math.isnan(paired([1.0], [0.0], "ratio")[0])
    with pytest.raises(ValueError, match="differ in length"):
        paired([1.0], [1.0, 2.0], "delta")
    with pytest.raises(ValueError, match="op is"):
        paired([1.0], [1.0], "sum")


def test_rotate_starts_each_round_elsewhere() -> None:
    names = ["a", "b", "c"]
    assert [rotate(names, i)[0] for i in range(4)] == ["a", "b", "c", "a"]
    assert sorted(rotate(names, 2)) == names
    assert rotate([], 3) == []


def test_first_token_is_the_first_event_with_text() -> None:
    frames = Answers().stream("gpt-4o-mini", include_usage=True, prompt_tokens=3)
    role_only = frames[0].split(b"\r\n\r\n", 1)[1]  # head, then the chunk framing
    assert not first_content(role_only.split(b"\r\n", 1)[1])
    assert first_content(b'data: {"choices": [{"delta": {"content": "Hi"}}]}\n\n')
    assert not first_content(b'data: {"choices": [{"delta": {"content": "Hi"}}]}')  # incomplete
    assert not first_content(b"data: [DONE]\n\n")


def test_the_fast_stub_answers_as_the_harness_renders() -> None:
    answers = Answers()
    whole = answers.whole("gpt-4o-mini", 4)
    head, body = whole.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert f"content-length: {len(body)}".encode() in head
    assert b'"object": "chat.completion"' in body
    assert b'"prompt_tokens": 4' in body
    frames = answers.stream("gpt-4o-mini", include_usage=True, prompt_tokens=4)
    assert frames[-1].endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
    assert b'"usage": {"prompt_tokens": 4' in frames[-1]


def test_the_report_reads_medians_of_per_round_comparisons() -> None:
    results = {name: cli.Rounds() for name in (cli.DIRECT, cli.BARE, cli.GENESIS)}
    for name, p50s, throughputs in (
        (cli.DIRECT, [1.0, 2.0, 1.0], [1000.0, 900.0, 1000.0]),
        (cli.BARE, [2.0, 3.0, 2.0], [500.0, 400.0, 500.0]),
        (cli.GENESIS, [2.0, 4.0, 2.5], [460.0, 300.0, 480.0]),
    ):
        for p50, throughput in zip(p50s, throughputs, strict=True):
            for measure in ("p99", "ttft_p50", "ttft_p99", "cpu_ms", "paced_cpu_ms", "redis_ms"):
                results[name].add(measure, 1.0)
            results[name].add("p50", p50)
            results[name].add("throughput", throughput)
    text = cli.comparisons(results)
    # Per-round ratios 0.92, 0.75, 0.96: the median is 92%, not 460/500 of the medians.
    assert (
        "| genesis / bare Quart proxy, wall-clock throughput | 92% (0.75 to 0.96) | ≥ 90%: met |"
        in text
    )
    # Per-round deltas 1.0, 2.0, 1.5.
    assert "| genesis, added p50 over direct | +1.50 ms (+1.00 to +2.00) | ≤ 1.5 ms: met |" in text
    assert "| (c) genesis, everything on |" in cli.table(results)
