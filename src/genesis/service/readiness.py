"""Readiness with Kubernetes semantics: not ready while starting, while draining, or while
a required dependency is down. Liveness is separate and never depends on dependencies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

State = Literal["starting", "ready", "draining"]
Check = Callable[[], Awaitable[None]]


@dataclass
class ReadinessReport:
    ready: bool
    state: State
    checks: dict[str, str]


def _ignore(_: bool) -> None:
    return None


@dataclass
class Readiness:
    """The lifecycle state plus named dependency checks, each bounded by `timeout`.

    `observe` hears every verdict (the `genesis_ready` gauge): each report, a drain, and a
    start without checks, which is ready at once (with checks, the first report decides).
    `watch()` reports on a clock as well, so the verdict stays current where nothing probes
    /readyz (compose, a bare process).
    """

    timeout: float = 2.0
    state: State = "starting"
    checks: dict[str, Check] = field(default_factory=dict)
    observe: Callable[[bool], None] = _ignore

    def add_check(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def mark_ready(self) -> None:
        # A drain is final: a late start-up hook must not make a draining instance ready again.
        if self.state == "starting":
            self.state = "ready"
            # With checks, the first report is the first verdict: no 0 before it is known.
            if not self.checks:
                self.observe(True)

    def begin_drain(self) -> None:
        self.state = "draining"
        self.observe(False)

    async def _run(self, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), self.timeout)
        except TimeoutError:
            return f"timed out after {self.timeout:g}s"
        except Exception as error:
            return f"failed: {error}"
        return "ok"

    async def watch(self, every_seconds: float) -> None:
        """Report every `every_seconds` until cancelled (the app's shutdown does that)."""
        while True:
            await self.report()
            await asyncio.sleep(every_seconds)

    async def report(self) -> ReadinessReport:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[name]) for name in names))
        checks = dict(zip(names, results, strict=True))
        ready = self.state == "ready" and all(result == "ok" for result in results)
        self.observe(ready)
        return ReadinessReport(ready=ready, state=self.state, checks=checks)
