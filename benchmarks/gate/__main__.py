"""Run the judge benchmark: `python -m benchmarks.gate [--quick] [--trials N] [--output FILE]`."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
from benchmarks.gate import judges
from benchmarks.gate.model import STEP_SECONDS, WINDOW_SECONDS, Scenario, scenarios, simulate

from genesis.gate import Verdict

JUDGES: dict[str, Callable[..., Verdict]] = {
    "genesis": lambda rng, b, c: judges.genesis(b, c),
    "Flagger-style threshold": judges.flagger,
    "Kayenta-style Mann-Whitney": lambda rng, b, c: judges.kayenta(b, c),
}


def run_scenario(scenario: Scenario, trials: int, seed: int) -> dict[str, Counter[Verdict]]:
    rng = np.random.default_rng(seed)
    tallies: dict[str, Counter[Verdict]] = {name: Counter() for name in JUDGES}
    for _ in range(trials):
        baseline = simulate(rng, scenario.baseline)
        canary = simulate(rng, scenario.canary)
        for name, fn in JUDGES.items():
            tallies[name][fn(rng, baseline, canary)] += 1
    return tallies


def _cell(tally: Counter[Verdict], trials: int, regression: bool) -> str:
    fail = 100.0 * tally[Verdict.FAIL] / trials
    inconclusive = 100.0 * tally[Verdict.INCONCLUSIVE] / trials
    headline = f"**{fail:.2f}%**" if regression else f"{fail:.2f}%"
    return f"{headline} FAIL · {inconclusive:.2f}% INC"


def table(results: list[tuple[Scenario, dict[str, Counter[Verdict]]]], trials: int) -> str:
    header = "| scenario | should | " + " | ".join(JUDGES) + " |"
    rule = "| --- | --- | " + " | ".join("---" for _ in JUDGES) + " |"
    rows = [header, rule]
    for scenario, tallies in results:
        should = "FAIL" if scenario.regression else "not FAIL"
        cells = " | ".join(_cell(tallies[n], trials, scenario.regression) for n in JUDGES)
        rows.append(f"| {scenario.name} | {should} | {cells} |")
    return "\n".join(rows)


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=1000, help="analyses per scenario")
    parser.add_argument("--quick", action="store_true", help="100 trials per scenario")
    parser.add_argument("--seed", type=int, default=20240607)
    parser.add_argument("--output", help="also write the Markdown table to this file")
    parser.add_argument(
        "--only", help="run only scenarios whose name contains this text (e.g. 'A/A')"
    )
    args = parser.parse_args(argv)
    trials = 100 if args.quick else args.trials
    if trials < 1:
        parser.error("--trials must be at least 1")
    if args.only and not any(args.only in s.name for s in scenarios()):
        parser.error(f"no scenario matches {args.only!r}")

    started = time.perf_counter()
    results = []
    for index, scenario in enumerate(scenarios()):
        if args.only and args.only not in scenario.name:
            continue
        results.append((scenario, run_scenario(scenario, trials, args.seed + index)))
        print(f"  {scenario.name}: done", file=sys.stderr)
    elapsed = time.perf_counter() - started
    text = "\n".join(
        [
            table(results, trials),
            "",
            f"{trials} simulated {WINDOW_SECONDS // 60}-minute analyses per scenario "
            f"({STEP_SECONDS}s steps), seed {args.seed}; {elapsed:.0f}s on {machine()}.",
        ]
    )
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
