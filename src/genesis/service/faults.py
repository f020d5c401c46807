"""Test-only fault injection (`GENESIS_FAULT_ERROR_RATE`, `GENESIS_FAULT_LATENCY_MS`).

Alert, gate and deploy tests and chaos drills need a service that misbehaves on demand.
Settings refuse these in prod; this module only acts on what settings allowed.
"""

from __future__ import annotations

import asyncio
import random

from genesis.service.errors import SERVER_ERROR, APIError


class FaultInjector:
    def __init__(
        self, error_rate: float, latency_ms: int, rng: random.Random | None = None
    ) -> None:
        self.error_rate = error_rate
        self.latency_ms = latency_ms
        # Not for security: a reproducible stream when a test passes a seeded Random.
        self._rng = rng or random.Random()  # noqa: S311

    def should_fail(self) -> bool:
        return self.error_rate > 0 and self._rng.random() < self.error_rate

    async def apply(self) -> None:
        """Delay, then maybe fail, the way a degraded release would."""
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        if self.should_fail():
            raise APIError(
                500,
                "Injected fault (GENESIS_FAULT_ERROR_RATE); this instance runs a fault drill",
                type=SERVER_ERROR,
                code="fault_injected",
            )
