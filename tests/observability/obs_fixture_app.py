"""A small Quart app that is not genesis, instrumented in two lines.

It proves the extension works for any Quart app, and it stands in for `genesis serve` in the
multi-process and alerting tests: GENESIS_FAULT_ERROR_RATE makes it fail that share of requests,
as the real service does.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry
from quart import Quart, Response, abort, request

from genesis.observability import CircuitState, JobOutcome, Metrics


def create_app(
    *,
    track: str = "stable",
    fault_error_rate: float = 0.0,
    registry: CollectorRegistry | None = None,
) -> Quart:
    app = Quart("obs_fixture")
    metrics = Metrics(app, track=track, version="9.9.9", revision="fixture", registry=registry)
    faults = random.Random(1234)  # fault injection, not security

    @app.before_request
    async def inject_fault() -> None:
        if fault_error_rate and faults.random() < fault_error_rate:
            abort(500)

    @app.get("/hello")
    async def hello() -> str:
        return "hello"

    @app.get("/items/<int:item_id>")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/items")
    async def create_item() -> tuple[str, int]:
        return "created", 201

    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("boom")

    @app.get("/stream")
    async def stream() -> Response:
        async def events() -> AsyncIterator[bytes]:
            for n in range(3):
                await asyncio.sleep(0.1)
                yield f"data: {n}\n\n".encode()

        return Response(events(), content_type="text/event-stream")

    @app.get("/chat")
    async def chat() -> dict[str, str]:
        # Exercises every GenAI and service instrument, as the real chat service would.
        failed = request.args.get("fail") == "1"
        async with metrics.genai.operation(
            operation="chat", provider="fixture", model="tiny-1"
        ) as op:
            await asyncio.sleep(0.01)
            op.first_chunk()
            op.usage(input_tokens=12, output_tokens=30)
            if failed:
                op.fail("upstream_timeout")
        service = metrics.service
        if failed:
            service.upstream_retry("fixture")
            service.rate_limited("rpm")
            service.job_finished("batch", JobOutcome.FAILED)
        service.cache_hit("completions")
        service.cache_miss("completions")
        service.circuit_state("fixture", CircuitState.HALF_OPEN if failed else CircuitState.CLOSED)
        service.job_queue("batch", depth=3, oldest_age_seconds=1.5)
        service.job_finished("batch", JobOutcome.SUCCEEDED)
        return {"answer": "hi"}

    return app


def app_from_env() -> Quart:
    return create_app(
        track=os.environ.get("GENESIS_TRACK", "stable"),
        fault_error_rate=float(os.environ.get("GENESIS_FAULT_ERROR_RATE", "0")),
    )


# Hypercorn workers import `obs_fixture_app:app`; importing it has to build the app.
app = app_from_env() if os.environ.get("OBS_FIXTURE_SERVE") == "1" else None
