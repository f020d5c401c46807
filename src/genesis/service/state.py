"""What one running app holds: settings, provider, readiness, faults, limits and shared state,
found via `current_app`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from quart import Quart, current_app

from genesis.observability import Metrics
from genesis.service.cache import ResponseCache
from genesis.service.faults import FaultInjector
from genesis.service.limits import RequestLimits
from genesis.service.providers import Provider
from genesis.service.ratelimiter import RateLimiter
from genesis.service.readiness import Readiness
from genesis.service.settings import Settings
from genesis.service.stores import Store

_KEY = "genesis"


@dataclass
class ServiceState:
    settings: Settings
    provider: Provider
    readiness: Readiness
    faults: FaultInjector | None
    metrics: Metrics
    request_limits: RequestLimits
    # The shared store (Redis, or in-process memory) when a feature needs one.
    store: Store | None = None
    limiter: RateLimiter | None = None
    cache: ResponseCache | None = None
    started_at: int = field(default_factory=lambda: int(time.time()))

    def attach(self, app: Quart) -> None:
        app.extensions[_KEY] = self


def service_state(app: Quart | None = None) -> ServiceState:
    state = (app or current_app).extensions[_KEY]
    assert isinstance(state, ServiceState)
    return state
