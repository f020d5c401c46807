"""The Quart extension: `Metrics(app, track=...)` instruments an app in one line."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry
from quart import Quart

from genesis.observability._genai import GenAIMetrics
from genesis.observability._http import RedMiddleware, capture_route
from genesis.observability._instruments import Instruments, instruments_for
from genesis.observability._service import ServiceMetrics

# The deployment tracks the delivery pipeline knows; dashboards and the gate split by them.
TRACKS = ("stable", "canary", "blue", "green")
_LABEL_VALUE = re.compile(r"^[\w.+\-]{1,128}$")


class Metrics:
    """HTTP RED, GenAI and service metrics for a Quart app.

    ```
    metrics = Metrics(app, track="canary", version="1.4.0", revision="3f2c1a9")
    ```
    or, with an app factory, `metrics = Metrics(track=...)` then `metrics.init_app(app)`.
    `/metrics` is not added to the app: serve it on its own port with `start_metrics_server`.
    """

    def __init__(
        self,
        app: Quart | None = None,
        *,
        track: str = "stable",
        version: str = "unknown",
        revision: str = "unknown",
        registry: CollectorRegistry | None = None,
    ) -> None:
        if track not in TRACKS:
            raise ValueError(f"track must be one of {', '.join(TRACKS)}; got {track!r}")
        for name, value in (("version", version), ("revision", revision)):
            if not _LABEL_VALUE.match(value):
                raise ValueError(f"{name} must be 1-128 letters, digits or . _ + -; got {value!r}")
        self.track = track
        self.version = version
        self.revision = revision
        self.instruments: Instruments = instruments_for(registry)
        self.genai = GenAIMetrics(self.instruments, track)
        self.service = ServiceMetrics(self.instruments, track)
        self.instruments.build_info.labels(version=version, revision=revision, track=track).set(1)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        if "genesis.observability" in app.extensions:
            raise RuntimeError(f"app {app.name!r} is already instrumented by a Metrics instance")
        app.extensions["genesis.observability"] = self
        # First in line, so the route is known even when a later hook answers the request.
        app.before_request_funcs.setdefault(None, []).insert(0, capture_route)
        app.asgi_app = RedMiddleware(app.asgi_app, self.instruments, self.track)  # type: ignore[method-assign, assignment]
