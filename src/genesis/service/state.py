"""What one running app holds: settings, provider, readiness and faults, found via `current_app`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from quart import Quart, current_app

from genesis.observability import Metrics
from genesis.service.faults import FaultInjector
from genesis.service.providers import Provider
from genesis.service.readiness import Readiness
from genesis.service.settings import Settings

_KEY = "genesis"


@dataclass
class ServiceState:
    settings: Settings
    provider: Provider
    readiness: Readiness
    faults: FaultInjector | None
    metrics: Metrics
    started_at: int = field(default_factory=lambda: int(time.time()))

    def attach(self, app: Quart) -> None:
        app.extensions[_KEY] = self


def service_state(app: Quart | None = None) -> ServiceState:
    state = (app or current_app).extensions[_KEY]
    assert isinstance(state, ServiceState)
    return state
