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


@dataclass
class Readiness:
    """The lifecycle state plus named dependency checks, each bounded by `timeout`."""

    timeout: float = 2.0
    state: State = "starting"
    checks: dict[str, Check] = field(default_factory=dict)

    def add_check(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def mark_ready(self) -> None:
        # A drain is final: a late start-up hook must not make a draining instance ready again.
        if self.state == "starting":
            self.state = "ready"

    def begin_drain(self) -> None:
        self.state = "draining"

    async def _run(self, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), self.timeout)
        except TimeoutError:
            return f"timed out after {self.timeout:g}s"
        except Exception as error:
            return f"failed: {error}"
        return "ok"

    async def report(self) -> ReadinessReport:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[name]) for name in names))
        checks = dict(zip(names, results, strict=True))
        ready = self.state == "ready" and all(result == "ok" for result in results)
        return ReadinessReport(ready=ready, state=self.state, checks=checks)
