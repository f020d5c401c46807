"""The Quart extension against a real Quart app, through its real ASGI entry point."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from quart import Quart

from genesis.observability import UNMATCHED_ROUTE, Metrics
from genesis.observability._http import RedMiddleware
from genesis.observability._instruments import instruments_for
from observability.obs_fixture_app import create_app


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def series(registry: CollectorRegistry, name: str) -> set[tuple[tuple[str, str], ...]]:
    return {
        tuple(sorted(sample.labels.items()))
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name
    }


async def test_red_metrics_use_the_route_template_and_status(registry: CollectorRegistry) -> None:
    client = create_app(registry=registry).test_client()
    for path in ("/hello", "/hello", "/items/1", "/items/2"):
        assert (await client.get(path)).status_code == 200
    assert (await client.post("/items")).status_code == 201
    assert (await client.get("/boom")).status_code == 500
    assert (await client.get("/no/such/path")).status_code == 404
    assert (await client.post("/hello")).status_code == 405

    def requests(method: str, route: str, status: str) -> float:
        return value(
            registry,
            "http_requests_total",
            method=method,
            route=route,
            status=status,
            track="stable",
        )

    assert requests("GET", "/hello", "200") == 2
    assert requests("GET", "/items/<int:item_id>", "200") == 2
    assert requests("POST", "/items", "201") == 1
    assert requests("GET", "/boom", "500") == 1
    assert requests("GET", UNMATCHED_ROUTE, "404") == 1
    assert requests("POST", UNMATCHED_ROUTE, "405") == 1
    assert (
        value(
            registry,
            "http_request_duration_seconds_count",
            method="GET",
            route="/items/<int:item_id>",
            track="stable",
        )
        == 2
    )
    assert value(registry, "http_requests_in_flight", track="stable") == 0


async def test_a_thousand_distinct_paths_create_no_new_series(registry: CollectorRegistry) -> None:
    client = create_app(registry=registry).test_client()
    await client.get("/items/0")
    await client.get("/nothing-here/0")
    before = series(registry, "http_requests_total") | series(
        registry, "http_request_duration_seconds_bucket"
    )
    for n in range(1, 501):
        await client.get(f"/items/{n}")
        await client.get(f"/nothing-here/{n}")
    after = series(registry, "http_requests_total") | series(
        registry, "http_request_duration_seconds_bucket"
    )
    assert after == before
    assert (
        value(
            registry,
            "http_requests_total",
            method="GET",
            route=UNMATCHED_ROUTE,
            status="404",
            track="stable",
        )
        == 501
    )


async def test_unknown_methods_share_one_label(registry: CollectorRegistry) -> None:
    client = create_app(registry=registry).test_client()
    await client.open("/hello", method="BREW")
    await client.open("/hello", method="SPLASH")
    other = list(series(registry, "http_requests_total"))
    assert {dict(labels)["method"] for labels in other} == {"_OTHER"}


async def test_track_is_on_every_red_metric_and_build_info(registry: CollectorRegistry) -> None:
    client = create_app(track="canary", registry=registry).test_client()
    await client.get("/hello")
    for name in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_requests_in_flight",
    ):
        assert {dict(labels)["track"] for labels in series(registry, name)} == {"canary"}, name
    assert (
        value(registry, "genesis_build_info", version="9.9.9", revision="fixture", track="canary")
        == 1
    )


async def test_streamed_response_duration_covers_the_whole_body(
    registry: CollectorRegistry,
) -> None:
    client = create_app(registry=registry).test_client()
    response = await client.get("/stream")
    assert await response.get_data() == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    total = value(
        registry, "http_request_duration_seconds_sum", method="GET", route="/stream", track="stable"
    )
    # Three chunks, 0.1 s apart: a hook-based timer would stop before the first one.
    assert total >= 0.3


async def test_in_flight_counts_a_request_until_its_body_ends(registry: CollectorRegistry) -> None:
    app = create_app(registry=registry)
    seen: list[float] = []

    async def watch() -> None:
        await asyncio.sleep(0.15)
        seen.append(value(registry, "http_requests_in_flight", track="stable"))

    response, _ = await asyncio.gather(app.test_client().get("/stream"), watch())
    assert response.status_code == 200
    assert seen == [1]
    assert value(registry, "http_requests_in_flight", track="stable") == 0


class _Raw:
    """Calls the middleware the way an ASGI server does, for outcomes a client cannot force."""

    def __init__(self, app: Any, registry: CollectorRegistry) -> None:
        self.middleware = RedMiddleware(app, instruments_for(registry), "stable")
        self.sent: list[dict[str, Any]] = []

    async def call(self, scope_type: str = "http") -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            self.sent.append(message)

        await self.middleware({"type": scope_type, "method": "GET", "path": "/x"}, receive, send)


async def test_a_cancelled_request_without_response_counts_as_499(
    registry: CollectorRegistry,
) -> None:
    async def cancelled(scope: Any, receive: Any, send: Any) -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await _Raw(cancelled, registry).call()
    assert (
        value(
            registry,
            "http_requests_total",
            method="GET",
            route=UNMATCHED_ROUTE,
            status="499",
            track="stable",
        )
        == 1
    )


async def test_an_app_crash_without_response_counts_as_500(registry: CollectorRegistry) -> None:
    async def crash(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        await _Raw(crash, registry).call()
    assert (
        value(
            registry,
            "http_requests_total",
            method="GET",
            route=UNMATCHED_ROUTE,
            status="500",
            track="stable",
        )
        == 1
    )


async def test_non_http_scopes_pass_through_unmeasured(registry: CollectorRegistry) -> None:
    calls: list[str] = []

    async def lifespan_app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    await _Raw(lifespan_app, registry).call("lifespan")
    assert calls == ["lifespan"]
    assert series(registry, "http_requests_total") == set()


def test_bad_settings_are_refused_with_a_clear_message(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="track must be one of stable, canary, blue, green"):
        Metrics(track="prod", registry=registry)
    with pytest.raises(ValueError, match="version must be"):
        Metrics(version="1.0 beta", registry=registry)
    with pytest.raises(ValueError, match="revision must be"):
        Metrics(revision="", registry=registry)


async def test_factory_style_init_app_and_double_instrumentation(
    registry: CollectorRegistry,
) -> None:
    metrics = Metrics(track="blue", registry=registry)
    app = Quart("factory")

    @app.get("/")
    async def index() -> str:
        return "ok"

    metrics.init_app(app)
    with pytest.raises(RuntimeError, match="already instrumented"):
        metrics.init_app(app)
    await app.test_client().get("/")
    assert (
        value(registry, "http_requests_total", method="GET", route="/", status="200", track="blue")
        == 1
    )
    # A second app in the same process shares the families instead of failing on registration.
    second = Metrics(Quart("second"), track="green", registry=registry)
    assert second.instruments is metrics.instruments
