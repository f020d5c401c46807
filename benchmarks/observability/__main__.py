"""Instrumentation cost: `python -m benchmarks.observability [--requests N] [--rounds N] ...`.

1. Throughput with instrumentation on and off, in the same run, rounds interleaved: genesis'
   chat service (offline provider; plain and streamed completions) and a minimal Quart app with
   an empty handler (the worst case). Driven through the ASGI entry in-process, so the loss is
   an upper bound (see throughput.py). Budget: at most 5% loss.
2. A /metrics scrape over HTTP from the real endpoint with 10,000 series, single-process and
   multi-process (two worker processes' files merged, as `genesis serve --workers 2` does):
   plain, gzipped, and with every value changed since the last scrape. Budget: at most 50 ms.

`--only throughput` or `--only scrape` runs one of the two.

The machine is shared and noisy: every figure is a median over rounds, and each on/off ratio
is taken within one round, where both halves ran back to back.
"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks.machine import describe_machine
from benchmarks.observability.scrape import ScrapeResult, measure
from benchmarks.observability.throughput import (
    GENESIS_LOAD,
    MINIMAL_LOAD,
    Comparison,
    compare,
    genesis_app,
    minimal_app,
)

LOSS_BUDGET = 0.05
SCRAPE_BUDGET_MS = 50.0


def _verdict(ok: bool) -> str:
    return "within budget" if ok else "OVER BUDGET"


def report_throughput(result: Comparison) -> None:
    print(f"{result.name}: {len(result.on)} rounds of {result.requests:,} requests per side")
    for clock, label in (("cpu", "per CPU second"), ("wall", "per wall-clock second")):
        ratios = result.ratios(clock)
        loss = result.loss(clock)
        print(
            f"  {label}: off {result.median('off', clock):,.0f} req/s, "
            f"on {result.median('on', clock):,.0f} req/s; loss {loss:.1%} (median of "
            f"per-round ratios; rounds {1 - max(ratios):.1%} to {1 - min(ratios):.1%}), "
            f"{result.cost_us(clock):.1f} us per request; "
            f"{_verdict(loss <= LOSS_BUDGET)} ({LOSS_BUDGET:.0%})"
        )


def report_scrape(result: ScrapeResult) -> None:
    rounds = len(result.http["wall"])
    print(f"/metrics, {result.mode}-process, {result.series:,} series, median of {rounds}:")
    for clock in ("cpu", "wall"):
        http = result.ms("http", clock)
        ours, theirs = result.ms("render", clock), result.ms("render_prometheus_client", clock)
        print(
            f"  {clock:>4}: {http:.1f} ms per scrape over HTTP, "
            f"{ours:.1f} ms to render (prometheus-client's generate_latest: {theirs:.1f} ms, "
            f"{theirs / ours:.2f}x); "
            f"{_verdict(http <= SCRAPE_BUDGET_MS)} ({SCRAPE_BUDGET_MS:.0f} ms)"
        )
        for what, label in (
            ("http_gzip", "gzipped, as Prometheus asks"),
            ("http_changing", "when every value changed since the last scrape"),
        ):
            ms = result.ms(what, clock)
            verdict = _verdict(ms <= SCRAPE_BUDGET_MS)
            print(f"        {ms:.1f} ms per scrape over HTTP {label}; {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.observability")
    parser.add_argument("--requests", type=int, default=3000, help="requests per round and side")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=21)
    parser.add_argument(
        "--only", choices=("throughput", "scrape"), help="run one of the two measurements"
    )
    args = parser.parse_args()

    print(f"machine: {describe_machine()}")
    if args.only != "scrape":
        report_throughput(
            compare("genesis chat service", genesis_app, GENESIS_LOAD, args.requests, args.rounds)
        )
        report_throughput(
            compare("minimal Quart app", minimal_app, MINIMAL_LOAD, args.requests, args.rounds)
        )
    if args.only != "throughput":
        for mode in ("single", "multi"):
            report_scrape(measure(mode, args.series, args.scrapes))
    print(f"load average after the run: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
