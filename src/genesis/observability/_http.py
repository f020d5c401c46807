"""HTTP RED metrics as ASGI middleware.

Measuring in ASGI middleware rather than in Quart's before/after request hooks matters for
streamed responses (SSE): `after_request` runs before the body is streamed, while the middleware
sees the last body message, so the duration covers the whole response and the request stays
"in flight" until it is really done.

The route label is the URL rule template (`/v1/jobs/<job_id>`), which keeps cardinality bounded
no matter which paths clients send. Quart matches the rule after the middleware has handed the
request on, so a before-request hook that runs first copies the matched template into the ASGI
scope, where the middleware reads it once the response is over.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from quart import request

from genesis.observability._instruments import Children, Instruments

ROUTE_SCOPE_KEY = "genesis.observability.route"
# Shared label value for requests that matched no URL rule (404s, 405s), so scanners cannot
# create series at will.
UNMATCHED_ROUTE = "<unmatched>"
# nginx's convention for "the client went away before a response started".
CLIENT_CLOSED_STATUS = "499"
# Methods are client-chosen tokens; anything unknown shares one value, as OpenTelemetry does.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
OTHER_METHOD = "_OTHER"


# Plain ASGI shapes: the middleware wraps any ASGI app, not only Quart's.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER_METHOD


async def capture_route() -> None:
    """Before-request hook: remember the matched rule template for the middleware."""
    rule = request.url_rule
    scope: Scope = request.scope  # type: ignore[assignment]
    scope[ROUTE_SCOPE_KEY] = UNMATCHED_ROUTE if rule is None else rule.rule


class RedMiddleware:
    """Counts, times and tracks in-flight HTTP requests of the wrapped ASGI app."""

    def __init__(self, app: ASGIApp, instruments: Instruments, track: str) -> None:
        self._app = app
        self._instruments = instruments
        self._track = track
        self._in_flight = instruments.http_in_flight.labels(track=track)
        self._requests = Children(instruments.http_requests)
        self._durations = Children(instruments.http_duration)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status: str | None = None

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        started = time.perf_counter()
        self._in_flight.inc()
        outcome_if_unanswered = "500"
        try:
            await self._app(scope, receive, send_and_watch)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # Cancellation: the client disconnected or the server is shutting down.
                outcome_if_unanswered = CLIENT_CLOSED_STATUS
            raise
        finally:
            elapsed = time.perf_counter() - started
            method = method_label(scope["method"])
            route = scope.get(ROUTE_SCOPE_KEY, UNMATCHED_ROUTE)
            self._requests(method, route, status or outcome_if_unanswered, self._track).inc()
            self._durations(method, route, self._track).observe(elapsed)
            # Last: a scrape that sees nothing in flight sees every finished request counted.
            self._in_flight.dec()
