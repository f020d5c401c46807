"""Chat service overhead: `python -m benchmarks.service [--quick] [--rounds N] [--output FILE]`.

The same bounded loopback load, in one run, against (a) the upstream stub directly, (b) a bare
Quart + httpx proxy under Hypercorn (the framework's ceiling), (c) genesis with everything on,
and (d) the LiteLLM proxy, all in front of the same stub. Each round runs every target once,
in a rotated order; every figure is a median over rounds, and every comparison is the median of
per-round differences or ratios (both sides ran back to back, under the same noise).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.machine import describe_machine
from benchmarks.service import load, targets
from benchmarks.service.stats import median, paired, percentile, rotate

DIRECT, BARE, GENESIS, LITELLM = "direct", "bare", "genesis", "litellm"
LABELS = {
    DIRECT: "(a) upstream stub, direct",
    BARE: "(b) bare Quart + httpx proxy",
    GENESIS: "(c) genesis, everything on",
    LITELLM: "(d) LiteLLM proxy",
}
# The targets.
TARGET_THROUGHPUT_VS_BARE = 0.90
TARGET_THROUGHPUT_VS_LITELLM = 10.0
TARGET_ADDED_P50_MS = 1.5
TARGET_ADDED_P99_MS = 5.0
TARGET_ADDED_TTFT_MS = 2.0


@dataclass
class Rounds:
    """One value per round for each measure of one target."""

    values: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, measure: str, value: float) -> None:
        self.values.setdefault(measure, []).append(value)

    def get(self, measure: str) -> list[float]:
        return self.values.get(measure, [])

    def median(self, measure: str) -> float:
        return median(self.get(measure))


def record_paced(rounds: Rounds, result: load.Paced) -> None:
    rounds.add("p50", percentile(result.latency_ms, 50))
    rounds.add("p99", percentile(result.latency_ms, 99))
    rounds.add("ttft_p50", percentile(result.ttft_ms, 50))
    rounds.add("ttft_p99", percentile(result.ttft_ms, 99))
    rounds.add("stream_p50", percentile(result.stream_ms, 50))
    rounds.add("late_ms", result.late_ms)
    rounds.add("paced_cpu_ms", result.cpu_ms_per_request)
    rounds.errors += result.errors + [f"unfinished: {result.unfinished}"] * bool(result.unfinished)


def record_saturated(rounds: Rounds, result: load.Saturated) -> None:
    rounds.add("throughput", result.throughput)
    rounds.add("cpu_ms", result.cpu_ms_per_request)
    redis = result.extra_cpu.get("redis")
    rounds.add(
        "redis_ms", 1000 * redis / result.answered if redis is not None and result.answered else 0
    )
    rounds.add("client_ms", 1000 * result.client_cpu / max(1, result.answered))
    rounds.errors += result.errors


async def run_rounds(chosen: dict[str, load.Target], args: argparse.Namespace) -> dict[str, Rounds]:
    results = {name: Rounds() for name in chosen}
    print("warm-up", flush=True)
    for target in chosen.values():
        await load.saturate(target, args.concurrency, 300, 10.0)
        await load.paced(target, args.rate, 1.0)
    for index in range(args.rounds):
        order = rotate(list(chosen), index)
        started = time.perf_counter()
        for name in order:
            record_paced(results[name], await load.paced(chosen[name], args.rate, args.paced))
        for name in order:
            record_saturated(
                results[name],
                await load.saturate(chosen[name], args.concurrency, args.count, args.seconds),
            )
        summary = ", ".join(
            f"{name} {results[name].get('throughput')[-1]:,.0f} req/s "
            f"p50 {results[name].get('p50')[-1]:.2f} ms"
            for name in chosen
        )
        print(
            f"round {index + 1}/{args.rounds} ({time.perf_counter() - started:.0f} s, "
            f"load {os.getloadavg()[0]:.1f}): {summary}",
            flush=True,
        )
    return results


def _fmt(value: float, digits: int = 2, signed: bool = False) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"


def _range(values: list[float], digits: int = 2, signed: bool = False) -> str:
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return ""
    return f" ({_fmt(min(kept), digits, signed)} to {_fmt(max(kept), digits, signed)})"


def table(results: dict[str, Rounds]) -> str:
    direct = results[DIRECT]
    lines = [
        "| target | throughput, req/s | CPU per request, ms: saturated · paced | p50, ms "
        "| p99, ms | added p50, ms | added p99, ms | TTFT p50, ms | added TTFT p50, ms "
        "| added TTFT p99, ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, rounds in results.items():
        cpu = _fmt(rounds.median("cpu_ms"), 3)
        if rounds.median("redis_ms") > 0:
            cpu += f" + Redis {_fmt(rounds.median('redis_ms'), 3)}"
        cpu += f" · {_fmt(rounds.median('paced_cpu_ms'), 3)}"
        added = {
            m: median(paired(rounds.get(m), direct.get(m), "delta"))
            for m in ("p50", "p99", "ttft_p50", "ttft_p99")
        }
        dash = "—"
        lines.append(
            f"| {LABELS[name]} | {_fmt(rounds.median('throughput'), 0)} | {cpu} "
            f"| {_fmt(rounds.median('p50'))} | {_fmt(rounds.median('p99'))} "
            f"| {dash if name == DIRECT else _fmt(added['p50'], signed=True)} "
            f"| {dash if name == DIRECT else _fmt(added['p99'], signed=True)} "
            f"| {_fmt(rounds.median('ttft_p50'))} "
            f"| {dash if name == DIRECT else _fmt(added['ttft_p50'], signed=True)} "
            f"| {dash if name == DIRECT else _fmt(added['ttft_p99'], signed=True)} "
            f"| {len(rounds.errors)} |"
        )
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def comparisons(results: dict[str, Rounds]) -> str:
    genesis, direct = results[GENESIS], results[DIRECT]
    lines = ["| comparison (median of per-round values, range) | result | target |"]
    lines.append("| --- | --- | --- |")

    def ratio_rows(other: str, label: str, target: float, unit: str) -> None:
        wall = paired(genesis.get("throughput"), results[other].get("throughput"), "ratio")
        # Requests per CPU second: the other's CPU per request over genesis'.
        cpu = paired(results[other].get("cpu_ms"), genesis.get("cpu_ms"), "ratio")
        for kind, values in (("wall-clock throughput", wall), ("requests per CPU second", cpu)):
            value = median(values)
            shown = f"{value:.0%}" if unit == "%" else f"{value:.1f}x"
            spread = _range(values)
            lines.append(
                f"| genesis / {label}, {kind} | {shown}{spread} "
                f"| ≥ {target:.0%}: {_verdict(value >= target)} |"
                if unit == "%"
                else f"| genesis / {label}, {kind} | {shown}{spread} "
                f"| ≥ {target:.0f}x: {_verdict(value >= target)} |"
            )

    ratio_rows(BARE, "bare Quart proxy", TARGET_THROUGHPUT_VS_BARE, "%")
    if LITELLM in results:
        ratio_rows(LITELLM, "LiteLLM", TARGET_THROUGHPUT_VS_LITELLM, "x")
    for measure, label, target in (
        ("p50", "added p50 over direct", TARGET_ADDED_P50_MS),
        ("p99", "added p99 over direct", TARGET_ADDED_P99_MS),
        ("ttft_p50", "added TTFT p50 over direct", TARGET_ADDED_TTFT_MS),
    ):
        values = paired(genesis.get(measure), direct.get(measure), "delta")
        value = median(values)
        lines.append(
            f"| genesis, {label} | {_fmt(value, signed=True)} ms"
            f"{_range(values, signed=True)} | ≤ {target:g} ms: {_verdict(value <= target)} |"
        )
    bare = paired(results[BARE].get("p50"), direct.get("p50"), "delta")
    lines.append(
        f"| for scale: bare Quart proxy, added p50 | {_fmt(median(bare), signed=True)} ms"
        f"{_range(bare, signed=True)} | |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service")
    parser.add_argument("--quick", action="store_true", help="2 short rounds, about 2 minutes")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--rate", type=float, default=30.0, help="paced load, requests/s")
    parser.add_argument("--paced", type=float, default=None, help="seconds of paced load")
    parser.add_argument("--concurrency", type=int, default=32, help="saturating connections")
    parser.add_argument("--count", type=int, default=None, help="saturating requests, at most")
    parser.add_argument("--seconds", type=float, default=None, help="saturating seconds, at most")
    parser.add_argument("--workers", type=int, default=1, help="bare proxy, genesis and LiteLLM")
    parser.add_argument("--stub", choices=("fast", "harness"), default="fast")
    parser.add_argument("--chunk-latency", type=float, default=0.002, help="stub, seconds")
    parser.add_argument(
        "--litellm-venv",
        type=Path,
        default=Path(os.environ.get("BENCH_LITELLM_VENV", "/tmp/litellm-venv")),
        help="a virtualenv with litellm[proxy] (never the project's)",
    )
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--logs", type=Path, default=None, help="keep process logs here")
    parser.add_argument("--output", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args()
    quick = args.quick
    args.rounds = args.rounds or (2 if quick else 5)
    args.paced = args.paced or (6.0 if quick else 15.0)
    args.count = args.count or (1000 if quick else 3000)
    args.seconds = args.seconds or (4.0 if quick else 10.0)

    logs = args.logs or Path(tempfile.mkdtemp(prefix="bench-service-"))
    logs.mkdir(parents=True, exist_ok=True)
    print(f"machine: {describe_machine()}")
    print(
        f"load: paced {args.rate:g} req/s for {args.paced:g} s (plain and streamed alternating), "
        f"then saturating {args.concurrency} connections for {args.count:,} requests or "
        f"{args.seconds:g} s; {args.rounds} rounds; workers {args.workers}; {args.stub} stub, "
        f"chunk latency {args.chunk_latency * 1000:g} ms; logs in {logs}",
        flush=True,
    )
    processes: list[targets.Process] = []
    notes: list[str] = []
    try:
        stub, upstream = targets.start_stub(args.stub, args.chunk_latency, logs)
        processes.append(stub)
        chosen = {DIRECT: load.Target("stub", upstream, "unused", pids=stub.tree)}
        bare, chosen[BARE] = targets.start_bare(upstream, args.workers, logs)
        processes.append(bare)
        redis, redis_port = targets.start_redis(logs)
        processes.append(redis)
        service, chosen[GENESIS] = targets.start_genesis(
            upstream, redis_port, args.workers, logs, redis
        )
        processes.append(service)
        if not args.no_litellm:
            if not (args.litellm_venv / "bin" / "litellm").exists():
                notes.append(f"LiteLLM not run: no {args.litellm_venv}/bin/litellm")
            else:
                try:
                    litellm_redis, litellm_redis_port = targets.start_redis(logs)
                    litellm_redis.name = "litellm-redis"
                    processes.append(litellm_redis)
                    litellm, chosen[LITELLM] = targets.start_litellm(
                        args.litellm_venv,
                        upstream,
                        litellm_redis_port,
                        args.workers,
                        logs,
                        litellm_redis,
                    )
                    processes.append(litellm)
                except RuntimeError as error:
                    notes.append(f"LiteLLM not run: {error}")
        for note in notes:
            print(note, flush=True)
        results = asyncio.run(run_rounds(chosen, args))
    finally:
        for process in reversed(processes):
            process.stop()

    header = (
        f"{args.rounds} rounds; paced {args.rate:g} req/s for {args.paced:g} s, saturating "
        f"{args.concurrency} connections ({args.count:,} requests or {args.seconds:g} s); "
        f"workers {args.workers}; {args.stub} stub, chunk latency {args.chunk_latency * 1000:g} ms"
    )
    report = "\n\n".join([header, table(results), comparisons(results), *notes])
    print()
    print(report)
    for name, rounds in results.items():
        if rounds.errors:
            print(f"{name}: {len(rounds.errors)} errors, e.g. {rounds.errors[0]}")
    client = ", ".join(f"{n} {r.median('client_ms'):.3f}" for n, r in results.items())
    print(f"load generator CPU per request, ms (saturating): {client}")
    print(f"load average after the run: {os.getloadavg()[0]:.1f}")
    if args.output:
        args.output.write_text(report + "\n", encoding="utf-8")
    return 1 if any(r.errors for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
